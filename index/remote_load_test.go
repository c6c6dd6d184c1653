package index

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// memLoader serves tree objects built in memory; it counts tree loads.
type memLoader struct {
	mu      sync.Mutex
	objects map[chunkstore.ID]tree.Object
	totals  map[chunkstore.ID]tree.Stats // of the roots added
	loads   int
}

func newMemLoader() *memLoader {
	return &memLoader{objects: map[chunkstore.ID]tree.Object{}, totals: map[chunkstore.ID]tree.Stats{}}
}

// add builds root and stores its objects; it returns the root tree id.
func (l *memLoader) add(t *testing.T, root *tree.Dir) chunkstore.ID {
	t.Helper()
	id, objs, err := tree.Build(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		l.objects[o.ID] = o
	}
	l.totals[id] = root.Totals()
	return id
}

func (l *memLoader) Tree(ctx context.Context, id chunkstore.ID) (*tree.Tree, error) {
	l.mu.Lock()
	o, ok := l.objects[id]
	l.loads++
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", id, chunkstore.ErrNotFound)
	}
	return tree.Decode(o.Data)
}

func (l *memLoader) Manifest(ctx context.Context, id chunkstore.ID) (*tree.Manifest, error) {
	l.mu.Lock()
	o, ok := l.objects[id]
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", id, chunkstore.ErrNotFound)
	}
	return tree.DecodeManifest(o.Data)
}

// rootCommit returns a commit of the root tree id with default root
// attributes (as LoadRemote takes it; nothing checks it against a store).
// rootCommit is a commit of the root id that l added, with its totals.
func rootCommit(l *memLoader, id chunkstore.ID) *tree.Commit {
	st, ok := l.totals[id]
	if !ok {
		st = tree.Stats{Dirs: 1}
	}
	return &tree.Commit{Root: id, Device: "test", Generation: 1, Stats: st,
		RootAttrs: tree.RootAttrs{Mode: 0o755}}
}

func refs(n int, seed byte) []tree.ChunkRef {
	out := make([]tree.ChunkRef, n)
	for i := range out {
		out[i] = tree.ChunkRef{ID: chunkstore.ID{seed, byte(i), byte(i >> 8)}, Length: uint32(1000 + i)}
	}
	return out
}

func TestEnsureLoaded(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	l := newMemLoader()
	root := tree.NewDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(root.SetFile(tree.Entry{Name: "small", Type: tree.TypeFile, Mode: 0o640, UID: 7, GID: 8, MtimeNs: 5e9,
		Xattrs: []tree.Xattr{{Name: "user.a", Value: []byte("1")}}}, refs(3, 1)))
	must(root.SetFile(tree.Entry{Name: "large", Type: tree.TypeFile, Mode: 0o644}, refs(70, 2)))
	must(root.Set(tree.Entry{Name: "ln", Type: tree.TypeSymlink, Mode: 0o777, Target: "small"}))
	must(root.Set(tree.Entry{Name: "dev", Type: tree.TypeCharDev, Mode: 0o600, Rdev: 0x0103}))
	sub, err := root.Sub("sub")
	must(err)
	must(sub.SetFile(tree.Entry{Name: "inner", Type: tree.TypeFile, Mode: 0o600}, nil))
	rootID := l.add(t, root)
	commit := chunkstore.Hash([]byte("commit"))
	must(db.LoadRemote(ctx, commit, rootCommit(l, rootID)))
	must(db.LoadRemote(ctx, commit, rootCommit(l, rootID))) // idempotent
	if err := db.LoadRemote(ctx, chunkstore.Hash([]byte("other")), rootCommit(l, rootID)); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("LoadRemote of another commit: %v", err)
	}
	if _, err := db.Lookup(ctx, RootIno, "small"); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("lookup before EnsureLoaded: %v", err)
	}
	// Concurrent loads: one wins, the others find it loaded.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := db.EnsureLoaded(ctx, RootIno, l); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := names(t, db, RootIno); fmt.Sprint(got) != "[dev large ln small sub]" {
		t.Fatalf("root lists %v", got)
	}
	small, err := db.Lookup(ctx, RootIno, "small")
	must(err)
	if small.Mode != sIFREG|0o640 || small.UID != 7 || small.Size != 3*1000+3 || small.Mtime != 5e9 {
		t.Fatalf("small = %+v", small)
	}
	if v, err := db.GetXattr(ctx, small.Ino, "user.a"); err != nil || string(v) != "1" {
		t.Fatalf("xattr = %q, %v", v, err)
	}
	large, err := db.Lookup(ctx, RootIno, "large")
	must(err)
	exts, err := db.Extents(ctx, large.Ino, 0, 1<<40)
	must(err)
	if len(exts) != 70 || exts[69].End() != large.Size {
		t.Fatalf("large has %d extents ending at %d, size %d", len(exts), exts[len(exts)-1].End(), large.Size)
	}
	sf, err := db.FileSnapshot(ctx, large.Ino)
	must(err)
	for _, e := range sf.Extents {
		if !e.Whole() {
			t.Fatalf("loaded extent %+v is not a whole chunk", e)
		}
	}
	ln, err := db.Lookup(ctx, RootIno, "ln")
	if err != nil || ln.Target != "small" || !ln.IsSymlink() {
		t.Fatalf("ln = %+v, %v", ln, err)
	}
	dev, err := db.Lookup(ctx, RootIno, "dev")
	if err != nil || dev.Rdev != 0x0103 || dev.Mode != sIFCHR|0o600 {
		t.Fatalf("dev = %+v, %v", dev, err)
	}
	s, err := db.Lookup(ctx, RootIno, "sub")
	must(err)
	if ok, err := db.Loaded(ctx, s.Ino); err != nil || ok {
		t.Fatalf("sub loaded = %t, %v; want not yet", ok, err)
	}
	rootAttr, err := db.GetAttr(ctx, RootIno)
	must(err)
	if rootAttr.Nlink != 3 {
		t.Fatalf("root nlink %d, want 3", rootAttr.Nlink)
	}
	loads := l.loads
	must(db.EnsureLoaded(ctx, s.Ino, l))
	must(db.EnsureLoaded(ctx, s.Ino, l))
	if l.loads != loads+1 {
		t.Fatalf("%d tree loads for one directory", l.loads-loads)
	}
	if got := names(t, db, s.Ino); fmt.Sprint(got) != "[inner]" {
		t.Fatalf("sub lists %v", got)
	}
	// Loading is not a change: nothing is queued.
	if items, err := db.ListDirty(ctx); err != nil || len(items) != 0 {
		t.Fatalf("queue after loading: %v, %v", items, err)
	}
}

func TestEnsureLoadedLargeDirectory(t *testing.T) {
	sizes := []int{10_000}
	if !testing.Short() {
		sizes = append(sizes, 100_000)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ctx := context.Background()
			db, _ := openTest(t)
			l := newMemLoader()
			root := tree.NewDir()
			for i := range n {
				e := tree.Entry{Name: fmt.Sprintf("file-%07d", i), Type: tree.TypeFile, Mode: 0o644, MtimeNs: int64(i)}
				if err := root.SetFile(e, []tree.ChunkRef{{ID: chunkstore.ID{byte(i), byte(i >> 8), byte(i >> 16)}, Length: 4096}}); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.LoadRemote(ctx, chunkstore.Hash([]byte("c")), rootCommit(l, l.add(t, root))); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := db.EnsureLoaded(ctx, RootIno, l); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("EnsureLoaded of a %d-entry directory: %v", n, took)
			ents, err := db.ReadDir(ctx, RootIno, 0, n+1)
			if err != nil || len(ents) != n {
				t.Fatalf("ReadDir: %d entries, %v", len(ents), err)
			}
			if n == 10_000 && took > 3*time.Second { // well under 1 s without -race
				t.Fatalf("loading %d entries took %v", n, took)
			}
		})
	}
}
