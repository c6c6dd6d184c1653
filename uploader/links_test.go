package uploader

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// linkedVolume commits, from f, one file with three names in three
// directories (a/x, b/z, b/deep/y) and returns its content.
func linkedVolume(f *fixture) []byte {
	f.t.Helper()
	a := f.create(index.RootIno, "a", modeDir|0o755)
	b := f.create(index.RootIno, "b", modeDir|0o755)
	deep := f.create(b, "deep", modeDir|0o755)
	x := f.create(a, "x", modeReg|0o644)
	data := randBytes(1, 3<<20)
	f.write(x, 0, data)
	for _, l := range []struct {
		dir  uint64
		name string
	}{{b, "z"}, {deep, "y"}} {
		if _, err := f.db.Link(f.ctx, x, l.dir, l.name); err != nil {
			f.t.Fatal(err)
		}
	}
	f.round()
	return data
}

// checkLinked fails unless the three names of linkedVolume are one inode
// with nlink links and content data on f, looking them up in the order
// given (each directory loaded when first reached).
func checkLinked(t *testing.T, f *fixture, nlink uint32, data []byte, paths ...string) {
	t.Helper()
	var first index.Attr
	for i, p := range paths {
		a := f.lookup(p)
		if a.Nlink != nlink {
			t.Fatalf("%s: nlink %d, want %d", p, a.Nlink, nlink)
		}
		if i == 0 {
			first = a
			if got := f.read(a.Ino); !bytes.Equal(got, data) {
				t.Fatalf("%s: content differs (%d bytes, want %d)", p, len(got), len(data))
			}
			continue
		}
		if a.Ino != first.Ino {
			t.Fatalf("%s is inode %d, %s is %d: want one inode", p, a.Ino, paths[0], first.Ino)
		}
	}
}

// TestHardLinksFreshMachine: a fresh machine sees a file with names in
// three directories as one inode with three links, whatever order it loads
// the directories in, and reports the count before it has seen the others.
func TestHardLinksFreshMachine(t *testing.T) {
	f := newFixture(t)
	data := linkedVolume(f)
	checkLinked(t, f.peer("b1"), 3, data, "a/x", "b/z", "b/deep/y")
	checkLinked(t, f.peer("b2"), 3, data, "b/deep/y", "a/x", "b/z")
	if q := f.peer("b3"); q.lookup("a/x").Nlink != 3 {
		t.Fatal("a/x alone does not report three links")
	}
}

// TestHardLinkEditFromFreshMachine: a machine that has loaded one name of
// a hard-linked file and changes it commits the change to every name, so
// the next machine still sees one inode with the new content.
func TestHardLinkEditFromFreshMachine(t *testing.T) {
	f := newFixture(t)
	linkedVolume(f)

	c := f.peer("c")
	x := c.lookup("a/x")
	edited := randBytes(2, 1<<20+5)
	c.write(x.Ino, 0, edited)
	c.round() // loads b and b/deep to find z and y, rewrites all three
	want := append(edited, randBytes(1, 3<<20)[len(edited):]...)
	checkLinked(t, f.peer("d"), 3, want, "b/z", "b/deep/y", "a/x")

	// An unlink on a machine that has seen one name lowers the count
	// everywhere.
	e := f.peer("e")
	if x := e.lookup("a/x"); x.Nlink != 3 { // loads a
		t.Fatalf("a/x on e: %+v", x)
	}
	a := e.lookup("a")
	if rm, err := e.db.Unlink(e.ctx, a.Ino, "x"); err != nil || rm.Nlink != 2 {
		t.Fatalf("unlink a/x: %+v, %v", rm, err)
	}
	e.round()
	checkLinked(t, f.peer("g"), 2, want, "b/deep/y", "b/z")
	h := f.peer("h")
	ah := h.lookup("a")
	if err := h.db.EnsureLoaded(h.ctx, ah.Ino, bucket.NewLoader(h.hooked)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Lookup(h.ctx, ah.Ino, "x"); err == nil {
		t.Fatal("a/x still in the tree after its unlink")
	}
}

// TestHardLinkIDKept: a machine that did not create a hard-linked file
// keeps writing the link id it loaded (not one of its own), and a new link
// made there rewrites every name with the new count.
func TestHardLinkIDKept(t *testing.T) {
	f := newFixture(t)
	data := linkedVolume(f)
	want := f.entryAt("b/z").LinkID
	c := f.peer("c")
	b := c.lookup("b")
	// A new name w in b, on a machine that has loaded only b: the round
	// loads a and b/deep to rewrite x and y with the count of four, and
	// all four entries carry the link id the first machine chose.
	z := c.lookup("b/z")
	if _, err := c.db.Link(c.ctx, z.Ino, b.Ino, "w"); err != nil {
		t.Fatal(err)
	}
	c.round()
	for _, p := range []string{"a/x", "b/w", "b/deep/y", "b/z"} {
		if e := f.entryAt(p); e.LinkID != want || e.Nlink != 4 {
			t.Fatalf("%s: link id %#x, count %d; want %#x (the first machine's), 4", p, e.LinkID, e.Nlink, want)
		}
	}
	checkLinked(t, f.peer("d"), 4, data, "a/x", "b/w", "b/deep/y", "b/z")
	checkLinked(t, f.peer("e"), 4, data, "b/w", "b/deep/y", "a/x")
}

// entryAt returns the entry at slash path p in the head commit's tree.
func (f *fixture) entryAt(p string) tree.Entry {
	f.t.Helper()
	id := f.headCommit().Root
	names := strings.Split(p, "/")
	for i, name := range names {
		tr, err := bucket.NewLoader(f.mem).Tree(f.ctx, id)
		if err != nil {
			f.t.Fatal(err)
		}
		e := tr.Find(name)
		if e == nil {
			f.t.Fatalf("%s: no entry %q", p, name)
		}
		if i == len(names)-1 {
			return *e
		}
		id = e.Subtree
	}
	return tree.Entry{}
}

// TestLinksInOneDirectory: two names of one file in one directory, with an
// xattr: the commit lists its xattrs and chunks once per entry, not once
// per name (a round failed on "xattrs not unique", or doubled extents).
func TestLinksInOneDirectory(t *testing.T) {
	f := newFixture(t)
	x := f.create(index.RootIno, "a", modeReg|0o644)
	data := randBytes(5, 300<<10)
	f.write(x, 0, data)
	if err := f.db.SetXattr(f.ctx, x, "user.tag", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Link(f.ctx, x, index.RootIno, "b"); err != nil {
		t.Fatal(err)
	}
	f.round()
	ns := loadRemote(t, f.mem)
	for _, p := range []string{"/a", "/b"} {
		wantFile(t, ns, p, data)
		if ns[p].xattrs["user.tag"] != "v" {
			t.Fatalf("%s xattrs %v", p, ns[p].xattrs)
		}
	}
	if f.queued() != 0 {
		t.Fatalf("%d queued after the round", f.queued())
	}
}

// TestLinkWalkBoundFailsTheFileOnly: when the walk for a hard-linked
// file's other names gives up (index.MaxLinkWalkDirs), that file fails on
// its own, keeping its committed content and its place on the queue,
// while the rest of the round commits.
func TestLinkWalkBoundFailsTheFileOnly(t *testing.T) {
	f := newFixture(t)
	data := linkedVolume(f)

	c := f.peer("c")
	x := c.lookup("a/x")
	c.write(x.Ino, 0, randBytes(2, 1000))
	other := c.create(index.RootIno, "other", modeReg|0o644)
	c.write(other, 0, []byte("committed beside it"))
	old := index.MaxLinkWalkDirs
	index.MaxLinkWalkDirs = 1
	defer func() { index.MaxLinkWalkDirs = old }()
	r := c.round()
	if r.Failed != 1 || r.Commit.IsZero() {
		t.Fatalf("round: %+v; want a commit with one file failed", r)
	}
	it, err := c.db.Dirty(c.ctx, x.Ino)
	if err != nil || it.LastError == "" {
		t.Fatalf("a/x after the bounded walk: %+v, %v; want it queued with the error", it, err)
	}
	d := f.peer("d")
	if got := d.read(d.lookup("other").Ino); string(got) != "committed beside it" {
		t.Fatalf("other on a fresh machine: %q", got)
	}
	checkLinked(t, d, 3, data, "a/x", "b/z", "b/deep/y")
}
