package uploader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

func TestRoundCommitsNamespace(t *testing.T) {
	f := newFixture(t)
	a := f.create(index.RootIno, "a", modeDir|0o755)
	b := f.create(a, "b", modeDir|0o700)
	f.create(index.RootIno, "empty-dir", modeDir|0o755)
	big := randBytes(1, 3<<20+12345)
	small := []byte("hello, cloudfs\n")
	f1 := f.create(a, "big.bin", modeReg|0o644)
	f.write(f1, 0, big)
	f2 := f.create(b, "small.txt", modeReg|0o600)
	f.write(f2, 0, small)
	f.create(a, "link", modeLnk|0o777)
	f.create(b, "pipe", modeFifo|0o644)
	f.create(index.RootIno, "zero", modeReg|0o644)
	if err := f.db.SetXattr(f.ctx, f2, "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	r := f.round()
	if r.Commit.IsZero() || r.Chunked != 2 || r.Chunks.Uploaded == 0 {
		t.Fatalf("round = %+v, want a commit of 2 chunked files", r)
	}
	if n := f.queued(); n != 0 {
		t.Fatalf("%d entries still queued", n)
	}
	if got := f.head(); got != r.Commit {
		t.Fatalf("head %s, round committed %s", got, r.Commit)
	}
	// The uploaded files now read through extents and the cache.
	if !bytes.Equal(f.read(f1), big) || !bytes.Equal(f.read(f2), small) {
		t.Fatal("content changed by the upload")
	}
	// The staged bytes stay for local reads, but are clean: nothing is
	// left for the uploader to read.
	snap, err := f.db.FileSnapshot(f.ctx, f1)
	if err != nil || len(snap.Staging.Ranges) != 0 {
		t.Fatalf("uploader's view after upload = %+v, %v; want nothing staged", snap.Staging, err)
	}
	if cs, err := f.db.CleanStagings(f.ctx, time.Now().Add(time.Hour), 100); err != nil || len(cs) < 2 {
		t.Fatalf("clean staging files after upload: %+v, %v; want both files'", cs, err)
	}

	ns := loadRemote(t, f.mem)
	wantFile(t, ns, "/a/big.bin", big)
	wantFile(t, ns, "/a/b/small.txt", small)
	wantFile(t, ns, "/zero", []byte{})
	if ns["/a/b/small.txt"].xattrs["user.k"] != "v" || ns["/a/b/small.txt"].mode != modeReg|0o600 {
		t.Fatalf("small.txt = %+v", ns["/a/b/small.txt"])
	}
	if ns["/a/link"].target != "target/link" || ns["/a/b/pipe"].mode != modeFifo|0o644 || ns["/a/b"].mode != modeDir|0o700 {
		t.Fatalf("link %+v pipe %+v b %+v", ns["/a/link"], ns["/a/b/pipe"], ns["/a/b"])
	}
	if _, ok := ns["/empty-dir"]; !ok || len(ns) != 8 {
		t.Fatalf("remote namespace has %d entries: %v", len(ns), keys(ns))
	}

	// Nothing queued: a round does nothing.
	if r := f.round(); r.Items != 0 {
		t.Fatalf("idle round = %+v", r)
	}
}

func keys(m map[string]remoteFile) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRenameUnlinkAndSecondCommit(t *testing.T) {
	f := newFixture(t)
	a := f.create(index.RootIno, "a", modeDir|0o755)
	b := f.create(index.RootIno, "b", modeDir|0o755)
	x := f.create(a, "x", modeReg|0o644)
	f.write(x, 0, []byte("x content"))
	y := f.create(b, "y", modeReg|0o644)
	f.write(y, 0, []byte("y content"))
	first := f.round().Commit

	if _, err := f.db.Rename(f.ctx, a, "x", b, "x2", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Unlink(f.ctx, b, "y"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.Forget(f.ctx, y); err != nil {
		t.Fatal(err)
	}
	r := f.round()
	c, err := bucket.ReadCommit(f.ctx, f.mem, r.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Parents) != 1 || c.Parents[0] != first || c.Generation != 2 {
		t.Fatalf("second commit %+v, want parent %s generation 2", c, first)
	}
	ns := loadRemote(t, f.mem)
	wantFile(t, ns, "/b/x2", []byte("x content"))
	if _, ok := ns["/b/y"]; ok || len(ns) != 3 {
		t.Fatalf("namespace %v", keys(ns))
	}
}

func TestUnchangedSubtreesAreNotRewritten(t *testing.T) {
	f := newFixture(t)
	for _, d := range []string{"d1", "d2", "d3"} {
		ino := f.create(index.RootIno, d, modeDir|0o755)
		for _, n := range []string{"f1", "f2"} {
			fi := f.create(ino, n, modeReg|0o644)
			f.write(fi, 0, []byte(d+n))
		}
	}
	f.round()
	d2, err := f.db.Lookup(f.ctx, index.RootIno, "d2")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.db.Lookup(f.ctx, d2.Ino, "f1")
	if err != nil {
		t.Fatal(err)
	}
	f.write(fi.Ino, 0, []byte("changed"))
	r := f.round()
	if r.Objects != 2 || r.Chunked != 1 {
		t.Fatalf("round %+v: want 2 trees written (root, d2) and one file chunked", r)
	}
	wantFile(t, loadRemote(t, f.mem), "/d2/f1", []byte("changed"))
}

func TestIdenticalFilesStoredOnce(t *testing.T) {
	f := newFixture(t)
	data := randBytes(2, 5<<20)
	for _, n := range []string{"one", "two"} {
		f.write(f.create(index.RootIno, n, modeReg|0o644), 0, data)
	}
	r := f.round()
	n, total := chunkBytes(t, f.mem)
	if r.Chunks.Uploaded != n || total > int64(len(data))+int64(len(data))/50 {
		t.Fatalf("two identical 5 MiB files: %d chunks (%d uploaded), %d bytes stored", n, r.Chunks.Uploaded, total)
	}
	// A third copy uploads nothing.
	f.write(f.create(index.RootIno, "three", modeReg|0o644), 0, data)
	r = f.round()
	if r.Chunks.Uploaded != 0 || r.Chunks.Present == 0 {
		t.Fatalf("third copy: %+v, want all chunks present", r.Chunks)
	}
	if n2, _ := chunkBytes(t, f.mem); n2 != n {
		t.Fatalf("chunks %d -> %d", n, n2)
	}
}

// TestPreCommitCheckSkipsChunksPut: a chunk the round put is not asked
// for again before the commit; one it found already present is.
func TestPreCommitCheckSkipsChunksPut(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	stats := map[string]int{}
	f.hooked.setHook(func(op, key string, after bool) error {
		if op == "stat" && !after && strings.HasPrefix(key, chunkstore.ChunksPrefix) {
			mu.Lock()
			stats[key]++
			mu.Unlock()
		}
		return nil
	})
	data := randBytes(3, 3<<20)
	f.write(f.create(index.RootIno, "one", modeReg|0o644), 0, data)
	r := f.round()
	if r.Chunks.Uploaded < 2 || len(stats) != r.Chunks.Uploaded {
		t.Fatalf("round %+v stat %d chunks, want each uploaded one", r.Chunks, len(stats))
	}
	for k, n := range stats {
		if n != 1 {
			t.Errorf("%s: %d stats, want 1 (before its put)", k, n)
		}
	}
	clear(stats)
	f.write(f.create(index.RootIno, "two", modeReg|0o644), 0, data)
	r = f.round()
	if r.Chunks.Uploaded != 0 || len(stats) != r.Chunks.Present {
		t.Fatalf("copy: %+v, stat %d chunks", r.Chunks, len(stats))
	}
	for k, n := range stats {
		if n != 2 {
			t.Errorf("%s: %d stats, want 2 (before the put, and before the commit)", k, n)
		}
	}
	f.checkReachable()
}

func TestLostHeadRaceKeepsQueued(t *testing.T) {
	f := newFixture(t)
	x := f.create(index.RootIno, "x", modeReg|0o644)
	f.write(x, 0, []byte("one"))
	f.round()
	// Another device moves head.
	other := chunkstore.Hash([]byte("someone else's commit"))
	if _, err := f.mem.Put(f.ctx, chunkstore.HeadKey, []byte(other.String()), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	f.write(x, 0, []byte("two"))
	_, err := f.up.Round(f.ctx, true)
	if !errors.Is(err, ErrHeadMoved) {
		t.Fatalf("round after a foreign commit: %v, want ErrHeadMoved", err)
	}
	if f.head() != other || f.queued() == 0 {
		t.Fatal("head overwritten or queue emptied")
	}
	seen, err := f.db.Meta(f.ctx, index.MetaRemoteHead)
	if err != nil || !bytes.Equal(seen, other[:]) {
		t.Fatalf("remote head recorded = %x, %v", seen, err)
	}
	st, err := f.up.Status(f.ctx)
	if err != nil || len(st.Failed) == 0 || st.Failed[0].Path != "/x" {
		t.Fatalf("status %+v, %v: want /x failed", st, err)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Fatal(err)
	}
}

func TestRunSyncNowAndWaitCommitted(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() { done <- f.up.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	x := f.create(index.RootIno, "x", modeReg|0o644)
	f.write(x, 0, []byte("sync me"))
	deadline, stop := context.WithTimeout(f.ctx, 20*time.Second)
	defer stop()
	for {
		err := f.up.SyncNow(deadline)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrNotRunning) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.queued() != 0 {
		t.Fatal("SyncNow returned with entries queued")
	}
	wantFile(t, loadRemote(t, f.mem), "/x", []byte("sync me"))

	y := f.create(index.RootIno, "y", modeReg|0o644)
	f.write(y, 0, []byte("wait for me"))
	if err := f.up.WaitCommitted(deadline, y); err != nil {
		t.Fatal(err)
	}
	wantFile(t, loadRemote(t, f.mem), "/y", []byte("wait for me"))

	// A permanent failure is reported by SyncNow and WaitCommitted.
	f.store.FailPrefix(fault.OpPut, chunkstore.ChunksPrefix, &chunkstore.Permanent{Err: errors.New("403 forbidden")})
	f.store.FailPrefix(fault.OpPut, chunkstore.PacksPrefix, &chunkstore.Permanent{Err: errors.New("403 forbidden")})
	z := f.create(index.RootIno, "z", modeReg|0o644)
	f.write(z, 0, []byte("never"))
	if err := f.up.SyncNow(deadline); err == nil {
		t.Fatal("SyncNow succeeded against a store refusing puts")
	}
	if err := f.up.WaitCommitted(deadline, z); err == nil {
		t.Fatal("WaitCommitted succeeded against a store refusing puts")
	}
	st, err := f.up.Status(f.ctx)
	if err != nil || len(st.Failed) == 0 || !st.Failed[0].Permanent {
		t.Fatalf("status %+v, %v", st, err)
	}
	f.store.Clear()
	if err := f.up.SyncNow(deadline); err != nil {
		t.Fatalf("SyncNow after the fault cleared: %v", err)
	}
	wantFile(t, loadRemote(t, f.mem), "/z", []byte("never"))
}

func TestVanishedStagingFailsOnlyThatFile(t *testing.T) {
	f := newFixture(t)
	good := f.create(index.RootIno, "good", modeReg|0o644)
	f.write(good, 0, []byte("fine"))
	lost := f.create(index.RootIno, "lost", modeReg|0o644)
	f.write(lost, 0, []byte("gone"))
	if err := os.Remove(filepath.Join(f.staging, strconv.FormatUint(lost, 10))); err != nil {
		t.Fatal(err)
	}
	r := f.round()
	if r.Failed != 1 || r.Commit.IsZero() {
		t.Fatalf("round %+v: want a commit and one failed file", r)
	}
	ns := loadRemote(t, f.mem)
	wantFile(t, ns, "/good", []byte("fine"))
	if _, ok := ns["/lost"]; ok {
		t.Fatal("a file whose bytes vanished was committed")
	}
	it, err := f.db.Dirty(f.ctx, lost)
	if err != nil || !index.FailedPermanently(it) {
		t.Fatalf("lost file's entry %+v, %v: want failed permanently", it, err)
	}
	// Writing it again makes it due and it is uploaded.
	f.write(lost, 0, []byte("back"))
	f.round()
	wantFile(t, loadRemote(t, f.mem), "/lost", []byte("back"))
}

func TestVanishedStagingKeepsCommittedVersion(t *testing.T) {
	f := newFixture(t)
	x := f.create(index.RootIno, "x", modeReg|0o644)
	f.write(x, 0, []byte("version one"))
	f.round()
	f.write(x, 0, []byte("version two"))
	if err := os.Remove(filepath.Join(f.staging, strconv.FormatUint(x, 10))); err != nil {
		t.Fatal(err)
	}
	f.create(index.RootIno, "y", modeReg|0o644) // the root is rewritten
	if r := f.round(); r.Failed != 1 {
		t.Fatalf("round %+v: want one failed file", r)
	}
	wantFile(t, loadRemote(t, f.mem), "/x", []byte("version one"))
}

// TestBusyFileWaits: a file whose staging file is still being written
// behind the index (a passthrough session, index.MarkUnpersisted) is not
// read; it keeps its last committed entry, stays queued without an error,
// and is uploaded once the writer is done.
func TestBusyFileWaits(t *testing.T) {
	f := newFixture(t)
	x := f.create(index.RootIno, "x", modeReg|0o644)
	f.write(x, 0, []byte("version one"))
	f.round()
	f.write(x, 0, []byte("version two"))
	f.db.MarkUnpersisted(x)
	f.create(index.RootIno, "y", modeReg|0o644) // the root is rewritten
	r := f.round()
	if r.Failed != 0 || r.Changed != 1 || r.Commit.IsZero() {
		t.Fatalf("round %+v: want a commit with the busy file left changed, not failed", r)
	}
	ns := loadRemote(t, f.mem)
	wantFile(t, ns, "/x", []byte("version one"))
	if _, ok := ns["/y"]; !ok {
		t.Fatal("the rest of the round was not committed")
	}
	it, err := f.db.Dirty(f.ctx, x)
	if err != nil || it.LastError != "" || it.Attempts != 0 {
		t.Fatalf("busy file's entry %+v, %v: want queued with no error", it, err)
	}
	f.db.EndUnpersisted(x)
	f.round()
	wantFile(t, loadRemote(t, f.mem), "/x", []byte("version two"))
	if n := f.queued(); n != 0 {
		t.Fatalf("%d entries still queued", n)
	}
}
