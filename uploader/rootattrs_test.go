package uploader

import (
	"testing"

	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/tree"
)

// TestRootAttrs: the root's mode, owner, mtime and xattrs reach the commit
// and a fresh machine, and a change of them alone makes a commit.
func TestRootAttrs(t *testing.T) {
	f := newFixture(t)
	f.create(index.RootIno, "x", modeReg|0o644)
	if _, err := f.db.SetAttr(f.ctx, index.RootIno, index.AttrChange{Mask: index.SetMode | index.SetUID | index.SetGID | index.SetMtime,
		Mode: 0o1751, UID: 5, GID: 6, Mtime: 42e9}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetXattr(f.ctx, index.RootIno, "user.r", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	f.round()
	c := f.headCommit()
	want := tree.RootAttrs{Mode: 0o1751, UID: 5, GID: 6, MtimeNs: 42e9, Xattrs: []tree.Xattr{{Name: "user.r", Value: []byte("v")}}}
	if !c.RootAttrs.Equal(&want) {
		t.Fatalf("commit root attributes %+v, want %+v", c.RootAttrs, want)
	}
	p := f.peer("fresh")
	ra, err := p.db.GetAttr(p.ctx, index.RootIno)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Mode != modeDir|0o1751 || ra.UID != 5 || ra.GID != 6 || ra.Mtime != 42e9 {
		t.Fatalf("root on a fresh machine: %+v", ra)
	}
	if v, err := p.db.GetXattr(p.ctx, index.RootIno, "user.r"); err != nil || string(v) != "v" {
		t.Fatalf("root xattr on a fresh machine: %q, %v", v, err)
	}

	// Only the mode changes: the root tree is the same, the commit is new.
	head := f.head()
	if _, err := f.db.SetAttr(f.ctx, index.RootIno, index.AttrChange{Mask: index.SetMode, Mode: 0o700}); err != nil {
		t.Fatal(err)
	}
	if r := f.round(); r.Commit.IsZero() {
		t.Fatal("a root chmod made no commit")
	}
	if c2 := f.headCommit(); f.head() == head || c2.Root != c.Root || c2.RootAttrs.Mode != 0o700 || c2.Stats != c.Stats {
		t.Fatalf("after a root chmod: head %s (was %s), commit %+v", f.head(), head, c2)
	}
	// A fresh machine whose first change is the root's owner, before
	// anything loaded the root, commits it too.
	q := f.peer("fresh2")
	if _, err := q.db.SetAttr(q.ctx, index.RootIno, index.AttrChange{Mask: index.SetUID, UID: 77}); err != nil {
		t.Fatal(err)
	}
	if r := q.round(); r.Commit.IsZero() {
		t.Fatal("a root chown on a fresh machine made no commit")
	}
	if c3 := f.headCommit(); c3.Root != c.Root || c3.RootAttrs.UID != 77 || c3.RootAttrs.Mode != 0o700 {
		t.Fatalf("after a root chown on a fresh machine: commit %+v", c3)
	}
}
