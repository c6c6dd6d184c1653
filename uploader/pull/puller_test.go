package pull

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// volume builds a tree of dirs directories of files files each, with one
// deep file at a/b/c/d/target holding content, stores it with a commit
// (parent: parent) and makes it head; it returns the commit id.
func volume(t *testing.T, ctx context.Context, s chunkstore.Store, dirs, files int, content string, parent *chunkstore.ID, gen uint64) chunkstore.ID {
	t.Helper()
	root := tree.NewDir()
	ref := func(c string) []tree.ChunkRef {
		return []tree.ChunkRef{{ID: chunkstore.Hash([]byte(c)), Length: uint32(len(c))}}
	}
	for i := range dirs {
		d, err := root.Sub(fmt.Sprintf("dir%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		for j := range files {
			if err := d.SetFile(tree.Entry{Name: fmt.Sprintf("f%04d", j), Type: tree.TypeFile, Mode: 0o644}, ref("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	deep := root
	for _, name := range []string{"a", "b", "c", "d"} {
		var err error
		if deep, err = deep.Sub(name); err != nil {
			t.Fatal(err)
		}
		if err := deep.SetFile(tree.Entry{Name: "beside", Type: tree.TypeFile, Mode: 0o644}, ref("y")); err != nil {
			t.Fatal(err)
		}
	}
	if err := deep.SetFile(tree.Entry{Name: "target", Type: tree.TypeFile, Mode: 0o644}, ref(content)); err != nil {
		t.Fatal(err)
	}
	rootID, objs, err := tree.Build(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := bucket.PutObject(ctx, s, o); err != nil {
			t.Fatal(err)
		}
	}
	c := &tree.Commit{Root: rootID, Device: "desk", TimeNs: 1, Generation: gen, Stats: root.Totals(), RootAttrs: tree.RootAttrs{Mode: 0o755}}
	if parent != nil {
		c.Parents = []chunkstore.ID{*parent}
	}
	id, err := bucket.PutCommit(ctx, s, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, chunkstore.HeadKey, []byte(id.String()), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPullCost: a poll with nothing new is one request; a pull after one
// file changed deep in a tree of 100,000 files reads head, the commit, the
// base commit and the new trees of the directories on the path (the old
// ones are cached from when they were loaded), nothing else.
func TestPullCost(t *testing.T) {
	ctx := context.Background()
	m := mem.New("cost")
	first := volume(t, ctx, m, 100, 1000, "v1", nil, 1)
	counted := fault.New(m)
	log := zaptest.NewLogger(t)
	db, err := index.Open(ctx, filepath.Join(t.TempDir(), "index.db"), index.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := bucket.ReadCommit(ctx, m, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.LoadRemote(ctx, first, c); err != nil {
		t.Fatal(err)
	}
	load := bucket.NewLoader(counted)
	// This machine visits the path to the deep file.
	dir := index.RootIno
	for _, name := range []string{"a", "b", "c", "d"} {
		if err := db.EnsureLoaded(ctx, dir, load); err != nil {
			t.Fatal(err)
		}
		a, err := db.Lookup(ctx, dir, name)
		if err != nil {
			t.Fatal(err)
		}
		dir = a.Ino
	}
	if err := db.EnsureLoaded(ctx, dir, load); err != nil {
		t.Fatal(err)
	}
	p, err := New(db, counted, load, Options{Device: "laptop", Now: func() time.Time { return time.Unix(100, 0) }}, log)
	if err != nil {
		t.Fatal(err)
	}
	if moved, err := p.Pull(ctx); err != nil || moved {
		t.Fatalf("pull of the base: %v %v", moved, err)
	}
	before := counted.Calls(0)
	changed, err := p.Changed(ctx)
	if err != nil || changed {
		t.Fatalf("idle poll: changed %v, %v", changed, err)
	}
	if n := counted.Calls(0) - before; n != 1 {
		t.Fatalf("idle poll made %d requests, want 1", n)
	}

	second := volume(t, ctx, m, 100, 1000, "v2", &first, 2)
	changed, err = p.Changed(ctx)
	if err != nil || !changed {
		t.Fatalf("poll after a commit: changed %v, %v", changed, err)
	}
	gets, stats, lists := counted.Calls(fault.OpGet|fault.OpGetRange), counted.Calls(fault.OpStat), counted.Calls(fault.OpList)
	moved, err := p.Pull(ctx)
	if err != nil || !moved {
		t.Fatalf("pull: %v %v", moved, err)
	}
	// head, the new commit, the base commit, and the new trees of /, a, b,
	// c and d.
	if n := counted.Calls(fault.OpGet|fault.OpGetRange) - gets; n != 8 {
		t.Errorf("pull made %d GETs, want 8 (head, two commits, five trees)", n)
	}
	if counted.Calls(fault.OpStat) != stats || counted.Calls(fault.OpList) != lists || counted.Calls(fault.OpPut) != 0 {
		t.Errorf("pull made stats, lists or puts")
	}
	target, err := db.Lookup(ctx, dir, "target")
	if err != nil {
		t.Fatal(err)
	}
	ext, err := db.Extents(ctx, target.Ino, 0, target.Size)
	if err != nil || len(ext) != 1 || ext[0].Chunk != chunkstore.Hash([]byte("v2")) {
		t.Fatalf("target extents %+v, %v: want v2's chunk", ext, err)
	}
	base, err := db.Meta(ctx, index.MetaBaseCommit)
	if err != nil || chunkstore.ID(base) != second {
		t.Fatalf("base %x, %v", base, err)
	}
	if items, err := db.ListDirty(ctx); err != nil || len(items) != 0 {
		t.Fatalf("queued after a pull with no local changes: %v %v", items, err)
	}
}
