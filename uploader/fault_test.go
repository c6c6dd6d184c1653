package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// scenario is a committed file "keep" plus queued changes: "keep" edited
// and a new 2 MiB file "new" in a new directory.
type scenario struct {
	keep, new, small             uint64
	keepData, newData, smallData []byte // small: a file whose chunk goes in a pack
}

func setupScenario(f *fixture) *scenario {
	s := &scenario{keepData: randBytes(10, 1<<20)}
	s.keep = f.create(index.RootIno, "keep", modeReg|0o644)
	f.write(s.keep, 0, s.keepData)
	f.round()
	d := f.create(index.RootIno, "dir", modeDir|0o755)
	s.new = f.create(d, "new", modeReg|0o644)
	s.newData = randBytes(11, 2<<20)
	f.write(s.new, 0, s.newData)
	s.small, s.smallData = f.create(d, "small", modeReg|0o644), randBytes(12, 3000)
	f.write(s.small, 0, s.smallData)
	edit := []byte("edited in place")
	f.write(s.keep, 1000, edit)
	copy(s.keepData[1000:], edit)
	return s
}

// converged checks the local data, clears faults, and runs rounds until
// the queue is empty and the remote tree holds the scenario's data.
func (s *scenario) converged(t *testing.T, f *fixture) {
	t.Helper()
	if !bytes.Equal(f.read(s.keep), s.keepData) || !bytes.Equal(f.read(s.new), s.newData) || !bytes.Equal(f.read(s.small), s.smallData) {
		t.Fatal("local data changed by a failed round")
	}
	f.store.Clear()
	f.hooked.setHook(nil)
	f.round()
	if n := f.queued(); n != 0 {
		t.Fatalf("%d entries queued after the fault cleared", n)
	}
	ns := loadRemote(t, f.mem)
	wantFile(t, ns, "/keep", s.keepData)
	wantFile(t, ns, "/dir/new", s.newData)
	wantFile(t, ns, "/dir/small", s.smallData)
}

func TestFailureAtEachStepRollsBack(t *testing.T) {
	for _, c := range []struct {
		name     string
		rule     fault.Rule
		headMove bool // the head swap happened, its reply was lost
	}{
		{"chunk put", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.ChunksPrefix, Err: fault.ErrInjected}, false},
		{"chunk put lost reply", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.ChunksPrefix, Err: fault.ErrInjected, AfterCall: true}, false},
		{"chunk stat", fault.Rule{Ops: fault.OpStat, Prefix: chunkstore.ChunksPrefix, Err: fault.ErrInjected}, false},
		{"pack put", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.PacksPrefix, Err: fault.ErrInjected}, false},
		{"pack put lost reply", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.PacksPrefix, Err: fault.ErrInjected, AfterCall: true}, false},
		{"tree put", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.TreesPrefix, Err: fault.ErrInjected}, false},
		{"commit put", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.CommitsPrefix, Err: fault.ErrInjected}, false},
		{"head get", fault.Rule{Ops: fault.OpGet, Prefix: chunkstore.HeadKey, Err: fault.ErrInjected}, false},
		{"head put", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.HeadKey, Err: fault.ErrInjected}, false},
		{"head put lost reply", fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.HeadKey, Err: fault.ErrInjected, AfterCall: true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			s := setupScenario(f)
			h0 := f.head()
			f.store.Add(c.rule)
			if _, err := f.up.Round(f.ctx, true); !errors.Is(err, fault.ErrInjected) {
				t.Fatalf("round with %s failing: %v", c.name, err)
			}
			if moved := f.head() != h0; moved != c.headMove {
				t.Fatalf("head moved = %t, want %t", moved, c.headMove)
			}
			f.checkReachable()
			if f.queued() == 0 {
				t.Fatal("queue emptied by a failed round")
			}
			it, err := f.db.Dirty(f.ctx, s.new)
			if err != nil || it.Attempts != 1 || it.LastError == "" || it.NextTry.IsZero() {
				t.Fatalf("queue entry after failure = %+v, %v", it, err)
			}
			orphans, err := f.db.OrphanCandidates(f.ctx)
			if err != nil || (c.name != "head get" && len(orphans) == 0) {
				t.Fatalf("orphan candidates %v, %v", orphans, err)
			}
			if c.rule.Prefix == chunkstore.PacksPrefix && !slices.ContainsFunc(orphans, func(o index.OrphanCandidate) bool {
				return strings.HasPrefix(o.Key, chunkstore.PacksPrefix)
			}) {
				t.Fatalf("the pack of the failed round is no orphan candidate: %v", orphans)
			}
			h1 := f.head()
			s.converged(t, f)
			if c.headMove {
				// The commit whose reply was lost is adopted as it is: it
				// already holds everything, so no new commit is needed.
				cm, err := bucket.ReadCommit(f.ctx, f.mem, f.head())
				if err != nil || f.head() != h1 || len(cm.Parents) != 1 || cm.Parents[0] != h0 {
					t.Fatalf("head after a lost head reply: %+v, %v", cm, err)
				}
				base, err := f.db.Meta(f.ctx, index.MetaBaseCommit)
				if err != nil || !bytes.Equal(base, h1[:]) {
					t.Fatalf("base commit %x, %v; want %s", base, err, h1)
				}
			}
		})
	}
}

// TestUploadFailureStopsCutting: once a chunk upload fails, the round
// stops cutting the file (at most the upload concurrency, plus the upload
// whose slot the failure freed, plus the chunk that found the failure, are
// cut) and fails with the upload's error.
func TestUploadFailureStopsCutting(t *testing.T) {
	f := newFixture(t)
	x := f.create(index.RootIno, "big", modeReg|0o644)
	data := randBytes(30, 40<<20)
	f.write(x, 0, data)
	f.store.Add(fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.ChunksPrefix, Err: fault.ErrInjected})
	if _, err := f.up.Round(f.ctx, true); !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("round with chunk puts failing: %v, want the injected error", err)
	}
	if d := f.up.cache.Usage().DirtyChunks; d != 0 {
		t.Errorf("%d chunks cut but not uploaded stay in the cache", d)
	}
	orphans, err := f.db.OrphanCandidates(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cut := 0 // every chunk cut is an orphan candidate of the failed round
	for _, o := range orphans {
		if strings.HasPrefix(o.Key, chunkstore.ChunksPrefix) {
			cut++
		}
	}
	f.store.Clear()
	r := f.round()
	total := r.Chunks.Uploaded + r.Chunks.Present
	if limit := cache.DefaultUploadConcurrency + 2; cut > limit || total <= limit {
		t.Fatalf("the failed round cut %d of the file's %d chunks, want at most %d", cut, total, limit)
	}
	wantFile(t, loadRemote(t, f.mem), "/big", data)
}

func TestFileModifiedDuringUpload(t *testing.T) {
	f := newFixture(t)
	x := f.create(index.RootIno, "x", modeReg|0o644)
	first := randBytes(20, 3<<20)
	f.write(x, 0, first)
	second := append(bytes.Clone(first), []byte("appended while uploading")...)
	var once sync.Once
	// The first tree put comes after the file was cut and its chunks put
	// (chunks are put while the file is still being cut, so a write then
	// may be read by the same round).
	f.hooked.setHook(func(op, key string, after bool) error {
		if op == "put" && !after && strings.HasPrefix(key, chunkstore.TreesPrefix) {
			once.Do(func() { f.write(x, int64(len(first)), second[len(first):]) })
		}
		return nil
	})
	r := f.round()
	if r.Changed != 1 || f.queued() != 1 {
		t.Fatalf("round %+v, %d queued: want the changed file still queued", r, f.queued())
	}
	wantFile(t, loadRemote(t, f.mem), "/x", first)
	f.hooked.setHook(nil)
	f.round()
	if f.queued() != 0 || !bytes.Equal(f.read(x), second) {
		t.Fatal("second round did not settle the file")
	}
	wantFile(t, loadRemote(t, f.mem), "/x", second)
}

var errCrash = errors.New("simulated crash")

// TestCrashPoints abandons a round at every store call (before it is made,
// and after it was made but before its reply), reopens the index as after
// kill -9, and checks the next round converges with nothing lost.
func TestCrashPoints(t *testing.T) {
	points := 0
	for n := 1; ; n++ {
		for _, after := range []bool{false, true} {
			name := fmt.Sprintf("call%d-after%t", n, after)
			reached := false
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				s := setupScenario(f)
				ctx, cancel := context.WithCancel(f.ctx)
				defer cancel()
				calls := 0
				var mu = make(chan struct{}, 1)
				mu <- struct{}{}
				f.hooked.setHook(func(op, key string, a bool) error {
					<-mu
					defer func() { mu <- struct{}{} }()
					if a != after {
						return nil
					}
					calls++
					if calls == n {
						reached = true
						cancel()
						return errCrash
					}
					return nil
				})
				_, err := f.up.Round(ctx, true)
				if !reached {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				if err == nil {
					t.Fatalf("round succeeded through a crash at call %d", n)
				}
				f.hooked.setHook(nil)
				f.reopen()
				f.checkReachable()
				s.converged(t, f)
			})
			if reached {
				points++
			}
			if !reached && after {
				t.Logf("%d crash points tested", points)
				if points < 10 {
					t.Fatalf("only %d crash points", points)
				}
				return
			}
		}
	}
}
