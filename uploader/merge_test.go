package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/index"
)

// newPullingFixture is newFixture for a machine with a Puller.
func newPullingFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: t.Context(), dir: t.TempDir(), pulls: true}
	g := newFixture(t)
	f.mem, f.store, f.hooked = g.mem, g.store, g.hooked
	f.open()
	return f
}

// twoMachines commits one file name holding content from a and returns a,
// a second machine b that has loaded it, and its inode on each.
func twoMachines(t *testing.T, name, content string) (a, b *fixture, ax, bx uint64) {
	t.Helper()
	a = newPullingFixture(t)
	ax = a.create(index.RootIno, name, modeReg|0o644)
	a.write(ax, 0, []byte(content))
	a.round()
	b = a.peer("laptop")
	return a, b, ax, b.lookup(name).Ino
}

// TestRoundMergesAnotherDevicesCommit: two machines commit disjoint
// changes from one base; the second one's round finds head moved, pulls
// the first one's commit, and commits both on top of it; the first then
// pulls the second's.
func TestRoundMergesAnotherDevicesCommit(t *testing.T) {
	a, b, _, _ := twoMachines(t, "base", "base")
	a.write(a.create(index.RootIno, "from-a", modeReg|0o644), 0, []byte("A"))
	a.round()
	b.write(b.create(index.RootIno, "from-b", modeReg|0o644), 0, []byte("B"))
	r := b.round()
	if r.Commit.IsZero() || b.queued() != 0 {
		t.Fatalf("b's round %+v, %d still queued: want a commit of the merge", r, b.queued())
	}
	ns := loadRemote(t, a.mem)
	wantFile(t, ns, "/base", []byte("base"))
	wantFile(t, ns, "/from-a", []byte("A"))
	wantFile(t, ns, "/from-b", []byte("B"))
	if got := b.read(b.lookup("from-a").Ino); string(got) != "A" {
		t.Fatalf("b reads from-a as %q", got)
	}
	hc := a.headCommit()
	if len(hc.Parents) != 1 || hc.Generation != 3 {
		t.Fatalf("merged commit: parents %v generation %d, want one parent and generation 3", hc.Parents, hc.Generation)
	}
	// a pulls b's commit.
	moved, err := a.puller.Pull(a.ctx)
	if err != nil || !moved {
		t.Fatalf("a's pull: %v, %v", moved, err)
	}
	if got := a.read(a.lookup("from-b").Ino); string(got) != "B" {
		t.Fatalf("a reads from-b as %q", got)
	}
	if a.queued() != 0 {
		t.Fatalf("a has %d queued after pulling a commit it made no change to", a.queued())
	}
}

// TestRoundMergeConflictCopy: both machines change one file; the one that
// commits second keeps the first's version under the name and its own as
// a conflict copy beside it, and both versions are in the bucket.
func TestRoundMergeConflictCopy(t *testing.T) {
	a, b, x, bx := twoMachines(t, "report.txt", "v1")
	a.write(x, 0, []byte("A2"))
	a.round()
	b.write(bx, 0, []byte("B2"))
	b.round()
	ns := loadRemote(t, a.mem)
	wantFile(t, ns, "/report.txt", []byte("A2"))
	var copies []string
	for p, rf := range ns {
		if strings.HasPrefix(p, "/report (conflict laptop ") && strings.HasSuffix(p, ").txt") {
			copies = append(copies, p)
			if !bytes.Equal(rf.data, []byte("B2")) {
				t.Fatalf("%s holds %q, want b's B2", p, rf.data)
			}
		}
	}
	if len(copies) != 1 || len(ns) != 2 {
		t.Fatalf("remote tree %v: want report.txt and one conflict copy", keys(ns))
	}
	st, err := b.puller.Status(b.ctx)
	if err != nil || st.ConflictCount != 1 || st.Conflicts[0].CopyPath != copies[0] {
		t.Fatalf("b's pull status %+v, %v", st, err)
	}
}

// TestLostSwapMerges: another device commits between this round's check of
// head and its head swap; the refused swap pulls and the round commits on
// top of the other commit.
func TestLostSwapMerges(t *testing.T) {
	a, b, _, _ := twoMachines(t, "base", "base")
	b.write(b.create(index.RootIno, "from-b", modeReg|0o644), 0, []byte("B"))
	raced := false
	b.hooked.setHook(func(op, key string, after bool) error {
		if op == "put" && key == chunkstore.HeadKey && !after && !raced {
			raced = true
			b.hooked.setHook(nil)
			a.write(a.create(index.RootIno, "from-a", modeReg|0o644), 0, []byte("A"))
			a.round()
		}
		return nil
	})
	b.round()
	if !raced {
		t.Fatal("b's round never swapped head")
	}
	ns := loadRemote(t, a.mem)
	wantFile(t, ns, "/from-a", []byte("A"))
	wantFile(t, ns, "/from-b", []byte("B"))
	if b.queued() != 0 {
		t.Fatalf("%d still queued on b", b.queued())
	}
}

// TestPendingCommitBuiltOn: this machine's head swap succeeded but its
// reply was lost (or the daemon died before recording it), and another
// device has committed on top since: the round first records its own
// commit, so the merge of the other's sees its edit as committed, not as a
// conflicting edit of the same file (no conflict copy).
func TestPendingCommitBuiltOn(t *testing.T) {
	a, b, _, bx := twoMachines(t, "x.txt", "v1")
	b.write(bx, 0, []byte("from b"))
	b.store.Add(fault.Rule{Ops: fault.OpPut, Prefix: chunkstore.HeadKey, Err: fault.ErrInjected, AfterCall: true, Times: 1})
	if _, err := b.up.Round(b.ctx, true); !errors.Is(err, fault.ErrInjected) {
		t.Fatalf("b's round with the head reply lost: %v", err)
	}
	b.store.Clear()
	a.write(a.create(index.RootIno, "y.txt", modeReg|0o644), 0, []byte("from a"))
	a.round()
	b.round()
	ns := loadRemote(t, a.mem)
	wantFile(t, ns, "/x.txt", []byte("from b"))
	wantFile(t, ns, "/y.txt", []byte("from a"))
	if len(ns) != 2 {
		t.Fatalf("remote tree %v: want x.txt and y.txt only (no conflict copy)", keys(ns))
	}
	st, err := b.puller.Status(b.ctx)
	if err != nil || st.ConflictCount != 0 {
		t.Fatalf("b's conflicts: %+v, %v", st, err)
	}
}

// failingPuller fails every poll and counts them.
type failingPuller struct{ polls int }

func (p *failingPuller) Changed(context.Context) (bool, error) {
	p.polls++
	return false, fmt.Errorf("head: %w", chunkstore.ErrUnreachable)
}
func (p *failingPuller) Pull(context.Context) (bool, error)      { return false, nil }
func (p *failingPuller) NoteHead(string)                         {}
func (p *failingPuller) Acknowledge(context.Context, bool) error { return nil }

// TestPollBackoff: while polls fail, the next ones wait twice as long each
// time, up to a minute; one that works resets the wait.
func TestPollBackoff(t *testing.T) {
	f := newFixture(t)
	p := &failingPuller{}
	now := time.Unix(1000, 0)
	f.up.opts.Puller, f.up.opts.PullInterval = p, time.Second
	f.up.opts.Now = func() time.Time { return now }
	var at []time.Duration
	start := now
	for range 120 * 4 { // two minutes in quarter seconds
		before := p.polls
		f.up.poll(f.ctx)
		if p.polls > before {
			at = append(at, now.Sub(start))
		}
		now = now.Add(250 * time.Millisecond)
	}
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second, 31 * time.Second,
		63 * time.Second, 123 * time.Second}
	if len(at) < 7 || !slices.Equal(at[:7], want[:7]) {
		t.Fatalf("polls at %v, want %v", at, want[:7])
	}
}
