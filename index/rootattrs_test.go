package index

import (
	"context"
	"fmt"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// TestLoadRemoteRootAttrs: a fresh index takes the root's attributes from
// the commit, and a commit's snapshot reads them back.
func TestLoadRemoteRootAttrs(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	l := newMemLoader()
	c := rootCommit(l, l.add(t, tree.NewDir()))
	c.RootAttrs = tree.RootAttrs{Mode: 0o1750, UID: 11, GID: 12, MtimeNs: 13e9,
		Xattrs: []tree.Xattr{{Name: "user.a", Value: []byte("1")}, {Name: "user.b", Value: []byte{}}}}
	if err := db.LoadRemote(ctx, chunkstore.Hash([]byte("c")), c); err != nil {
		t.Fatal(err)
	}
	a, err := db.GetAttr(ctx, RootIno)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mode != sIFDIR|0o1750 || a.UID != 11 || a.GID != 12 || a.Mtime != 13e9 || a.Ctime != 13e9 {
		t.Fatalf("root after LoadRemote: %+v", a)
	}
	if !db.MayHaveXattrs(RootIno) {
		t.Fatal("root's xattrs not in the xattr set")
	}
	xs, err := db.ListXattr(ctx, RootIno)
	if err != nil || fmt.Sprint(xs) != "[user.a user.b]" {
		t.Fatalf("root xattrs %v, %v", xs, err)
	}
	// A commit reads them back, with the root's recorded totals.
	if err := db.EnsureLoaded(ctx, RootIno, l); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetAttr(ctx, RootIno, AttrChange{Mask: SetMode, Mode: 0o700}); err != nil {
		t.Fatal(err)
	}
	s, err := db.Snapshot(ctx, []uint64{RootIno})
	if err != nil {
		t.Fatal(err)
	}
	want := c.RootAttrs
	want.Mode = 0o700
	if s.Root == nil || !s.RootAttrs.Equal(&want) {
		t.Fatalf("snapshot of a root whose mode changed: root %v, attrs %+v, want %+v", s.Root, s.RootAttrs, want)
	}
}
