package index

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// linkedTree is a remote root with hard links: /a/x, /b/deep/y and /b/z are
// one inode (link id 77, three links, with an xattr); /a/y-other has link id
// 77 too but other content (it must not join); /c/q names link id 88 whose
// count (3) is more than its two names (/c/q, /c/r), and /c/s link id 99
// with a count of 2 and no other name.
func linkedTree(t *testing.T, l *memLoader) chunkstore.ID {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	linked := func(name string, id uint64, nlink uint32, content []tree.ChunkRef) (tree.Entry, []tree.ChunkRef) {
		return tree.Entry{Name: name, Type: tree.TypeFile, Mode: 0o640, UID: 3, GID: 4, MtimeNs: 9e9, LinkID: id, Nlink: nlink,
			Xattrs: []tree.Xattr{{Name: "user.k", Value: []byte("v")}}}, content
	}
	root := tree.NewDir()
	a, err := root.Sub("a")
	must(err)
	b, _ := root.Sub("b")
	deep, _ := b.Sub("deep")
	c, _ := root.Sub("c")
	must(a.SetFile(linked("x", 77, 3, refs(2, 7))))
	must(deep.SetFile(linked("y", 77, 3, refs(2, 7))))
	must(b.SetFile(linked("z", 77, 3, refs(2, 7))))
	must(a.SetFile(linked("y-other", 77, 3, refs(1, 8))))
	must(c.SetFile(linked("q", 88, 3, refs(1, 9))))
	must(c.SetFile(linked("r", 88, 3, refs(1, 9))))
	must(c.SetFile(linked("s", 99, 2, refs(1, 10))))
	return l.add(t, root)
}

func lookupPath(t *testing.T, db *DB, l RemoteLoader, path ...string) Attr {
	t.Helper()
	ctx := context.Background()
	dir := RootIno
	var a Attr
	for _, name := range path {
		if err := db.EnsureLoaded(ctx, dir, l); err != nil {
			t.Fatal(err)
		}
		var err error
		if a, err = db.Lookup(ctx, dir, name); err != nil {
			t.Fatalf("lookup %v: %v", path, err)
		}
		dir = a.Ino
	}
	return a
}

// openLinked returns a new index with linkedTree loaded as its remote root
// (nothing below the root is loaded yet), and the loader that holds it.
func openLinked(t *testing.T) (*DB, *memLoader) {
	t.Helper()
	db, _ := openTest(t)
	l := newMemLoader()
	if err := db.LoadRemote(context.Background(), chunkstore.Hash([]byte("c")), rootCommit(l, linkedTree(t, l))); err != nil {
		t.Fatal(err)
	}
	return db, l
}

func TestLoadHardLinks(t *testing.T) {
	ctx := context.Background()
	db, l := openLinked(t)
	// Before b is loaded, x already reports all three links.
	x := lookupPath(t, db, l, "a", "x")
	if x.Nlink != 3 || x.Mode != sIFREG|0o640 {
		t.Fatalf("a/x before its other names are loaded: %+v", x)
	}
	other := lookupPath(t, db, l, "a", "y-other")
	if other.Ino == x.Ino || other.Nlink != 1 {
		t.Fatalf("a/y-other (same link id, other content) = %+v; want its own inode with one link", other)
	}
	z := lookupPath(t, db, l, "b", "z")
	y := lookupPath(t, db, l, "b", "deep", "y")
	if z.Ino != x.Ino || y.Ino != x.Ino || y.Nlink != 3 {
		t.Fatalf("names of one inode: x %d, z %d, y %+v", x.Ino, z.Ino, y)
	}
	if v, err := db.GetXattr(ctx, x.Ino, "user.k"); err != nil || string(v) != "v" {
		t.Fatalf("xattr of the linked inode: %q, %v", v, err)
	}
	if exts, err := db.Extents(ctx, x.Ino, 0, 1<<40); err != nil || len(exts) != 2 {
		t.Fatalf("extents of the linked inode: %d, %v (want 2: loaded once)", len(exts), err)
	}
	// Loading is not a change, and counts that match their names queue nothing.
	if items, err := db.ListDirty(ctx); err != nil || len(items) != 0 {
		t.Fatalf("queue after loading: %+v, %v", items, err)
	}
	// A local unlink keeps the count right while one name is not loaded.
	q := lookupPath(t, db, l, "c", "q")
	a := lookupPath(t, db, l, "a")
	if rm, err := db.Unlink(ctx, a.Ino, "x"); err != nil || rm.Nlink != 2 {
		t.Fatalf("unlink a/x: %+v, %v", rm, err)
	}
	if got, _ := db.GetAttr(ctx, z.Ino); got.Nlink != 2 {
		t.Fatalf("nlink after unlink: %d", got.Nlink)
	}
	// q's tree says three links; two names exist. It counts three until
	// every directory is loaded and a walk settles it.
	if q.Nlink != 3 {
		t.Fatalf("c/q: %+v", q)
	}
}

func TestLinkCountChangeQueuesInode(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	d1 := mustCreate(t, db, RootIno, "d1", sIFDIR|0o755)
	f := mustCreate(t, db, d1.Ino, "f", sIFREG|0o644)
	queued := func() []uint64 {
		t.Helper()
		items, err := db.ListDirty(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, it := range items {
			out = append(out, it.Ino)
			if _, err := db.DoneDirty(ctx, it.Ino, it.Seq); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(out)
		return out
	}
	queued()
	if _, err := db.Link(ctx, f.Ino, RootIno, "g"); err != nil {
		t.Fatal(err)
	}
	if got := queued(); !slices.Equal(got, []uint64{RootIno, f.Ino}) {
		t.Fatalf("after link: queued %v, want the new name's directory and the inode", got)
	}
	mustCreate(t, db, RootIno, "h", sIFREG|0o644)
	queued()
	if _, err := db.Rename(ctx, RootIno, "h", d1.Ino, "f", 0); err != nil {
		t.Fatal(err)
	}
	if got := queued(); !slices.Equal(got, []uint64{RootIno, d1.Ino, f.Ino}) {
		t.Fatalf("after a rename over a link: queued %v, want both directories and the replaced inode", got)
	}
	if _, err := db.Unlink(ctx, RootIno, "g"); err != nil {
		t.Fatal(err)
	}
	if got := queued(); !slices.Equal(got, []uint64{RootIno}) {
		t.Fatalf("after unlinking the last name: queued %v, want the directory only", got)
	}
}

func TestLoadLinkNames(t *testing.T) {
	ctx := context.Background()
	db, l := openLinked(t)
	x := lookupPath(t, db, l, "a", "x")
	q := lookupPath(t, db, l, "c", "q")
	// Nothing to do for an inode whose names are all in.
	if n, err := db.LoadLinkNames(ctx, []uint64{lookupPath(t, db, l, "a", "y-other").Ino}, l); err != nil || n != 0 {
		t.Fatalf("LoadLinkNames of a single-link file: %d, %v", n, err)
	}
	if ok, _ := db.Loaded(ctx, lookupDir(t, db, "b")); ok {
		t.Fatal("b loaded before the walk")
	}
	n, err := db.LoadLinkNames(ctx, []uint64{x.Ino}, l)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // b, then b/deep
		t.Fatalf("walk loaded %d directories, want 2", n)
	}
	// A commit of a change to x now rewrites all three names.
	if _, err := db.SetAttr(ctx, x.Ino, AttrChange{Mask: SetMode, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	s, err := db.Snapshot(ctx, []uint64{x.Ino})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var walk func(d *SnapDir, path string)
	walk = func(d *SnapDir, path string) {
		for _, e := range d.Entries {
			if e.Ino == x.Ino {
				got = append(got, fmt.Sprintf("%s/%s:%d:%d:%o", path, e.Entry.Name, e.LinkID, e.Nlink, e.Entry.Mode))
			}
			if e.Dir != nil {
				walk(e.Dir, path+"/"+e.Entry.Name)
			}
		}
	}
	walk(s.Root, "")
	slices.Sort(got)
	if fmt.Sprint(got) != "[/a/x:77:3:600 /b/deep/y:77:3:600 /b/z:77:3:600]" {
		t.Fatalf("names of x in the snapshot: %v", got)
	}
	// q counts a name that does not exist: with every directory loaded the
	// walk sets its count to its two names.
	if n, err := db.LoadLinkNames(ctx, []uint64{q.Ino}, l); err != nil || n != 0 {
		t.Fatalf("walk for c/q: %d, %v", n, err)
	}
	if got, _ := db.GetAttr(ctx, q.Ino); got.Nlink != 2 {
		t.Fatalf("c/q after the walk: nlink %d, want 2", got.Nlink)
	}
	if got, _ := db.GetAttr(ctx, x.Ino); got.Nlink != 3 {
		t.Fatalf("a/x after the walk: nlink %d, want 3", got.Nlink)
	}
	// s's only name is unlinked: it still counts the one that does not
	// exist, until the walk settles it to none and Forget can free it.
	sa := lookupPath(t, db, l, "c", "s")
	if rm, err := db.Unlink(ctx, lookupPath(t, db, l, "c").Ino, "s"); err != nil || rm.Nlink != 1 {
		t.Fatalf("unlink c/s: %+v, %v", rm, err)
	}
	if _, err := db.LoadLinkNames(ctx, []uint64{sa.Ino}, l); err != nil {
		t.Fatal(err)
	}
	if _, deleted, err := db.Forget(ctx, sa.Ino); err != nil || !deleted {
		t.Fatalf("Forget of c/s's inode after the walk: deleted %t, %v", deleted, err)
	}
}

// lookupDir returns the inode of directory name in the root (loaded).
func lookupDir(t *testing.T, db *DB, name string) uint64 {
	t.Helper()
	a, err := db.Lookup(context.Background(), RootIno, name)
	if err != nil {
		t.Fatal(err)
	}
	return a.Ino
}

// A walk for the other names of a hard-linked file stops at
// MaxLinkWalkDirs, naming the inodes still short; a later walk goes on
// from where it stopped.
func TestLoadLinkNamesBounded(t *testing.T) {
	ctx := context.Background()
	db, l := openLinked(t)
	x := lookupPath(t, db, l, "a", "x")
	old := MaxLinkWalkDirs
	MaxLinkWalkDirs = 1
	n, err := db.LoadLinkNames(ctx, []uint64{x.Ino}, l)
	MaxLinkWalkDirs = old
	var lw *LinkWalkError
	if !errors.As(err, &lw) || !slices.Equal(lw.Inos, []uint64{x.Ino}) || lw.Dirs != n || n == 0 {
		t.Fatalf("bounded walk: %d dirs, %v; want a LinkWalkError naming %d", n, err, x.Ino)
	}
	if ok, _ := db.Loaded(ctx, lookupDir(t, db, "b")); !ok {
		t.Fatal("the bounded walk did not load its first batch")
	}
	if n2, err := db.LoadLinkNames(ctx, []uint64{x.Ino}, l); err != nil || n2 != 1 {
		t.Fatalf("the walk after the bound: %d dirs, %v; want the one left (b/deep)", n2, err)
	}
}
