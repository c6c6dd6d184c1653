package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"go.uber.org/zap/zaptest"
)

const (
	modeDir  = sIFDIR | 0o755
	modeFile = sIFREG | 0o644
)

// openTest opens a new index in a temporary directory. Tests that close it
// themselves (to reopen) set closed.
func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := Open(context.Background(), path, Options{RootUID: 1000, RootGID: 1000}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, errClosed) {
			t.Error(err)
		}
	})
	return db, path
}

func reopen(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func mustCreate(t *testing.T, db *DB, parent uint64, name string, mode uint32) Attr {
	t.Helper()
	a, err := db.Create(context.Background(), parent, name, NewNode{Mode: mode, UID: 1, GID: 2})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func names(t *testing.T, db *DB, dir uint64) []string {
	t.Helper()
	ents, err := db.ReadDir(context.Background(), dir, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name)
	}
	return out
}

func TestRootAndReopen(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	root, err := db.GetAttr(ctx, RootIno)
	if err != nil {
		t.Fatal(err)
	}
	if !root.IsDir() || root.Nlink != 2 || root.UID != 1000 || root.Mode&0o7777 != 0o755 {
		t.Fatalf("root = %+v", root)
	}
	f := mustCreate(t, db, RootIno, "f", modeFile)
	d := mustCreate(t, db, RootIno, "d", modeDir)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := reopen(t, path)
	got, err := db2.Lookup(ctx, RootIno, "f")
	if err != nil || got.Ino != f.Ino {
		t.Fatalf("after reopen lookup f = %+v, %v; want ino %d", got, err, f.Ino)
	}
	root, _ = db2.GetAttr(ctx, RootIno)
	if root.Nlink != 3 {
		t.Errorf("root nlink = %d, want 3 (one subdir)", root.Nlink)
	}
	// Inode numbers are never reused.
	if _, err := db2.Rmdir(ctx, RootIno, "d"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db2.Forget(ctx, d.Ino); err != nil {
		t.Fatal(err)
	}
	e := mustCreate(t, db2, RootIno, "e", modeFile)
	if e.Ino <= d.Ino {
		t.Errorf("new inode %d reuses a number <= %d", e.Ino, d.Ino)
	}
}

func TestCreateLookupErrors(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	f := mustCreate(t, db, RootIno, "f", modeFile)
	if _, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile}); !errors.Is(err, ErrExist) {
		t.Errorf("create existing: %v, want ErrExist", err)
	}
	if _, err := db.Create(ctx, f.Ino, "x", NewNode{Mode: modeFile}); !errors.Is(err, ErrNotDir) {
		t.Errorf("create in file: %v, want ErrNotDir", err)
	}
	if _, err := db.Lookup(ctx, RootIno, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup missing: %v", err)
	}
	long := string(make([]byte, 256))
	if _, err := db.Create(ctx, RootIno, long, NewNode{Mode: modeFile}); !errors.Is(err, ErrInvalid) {
		t.Errorf("long name: %v", err)
	}
	s, err := db.Create(ctx, RootIno, "s", NewNode{Mode: sIFLNK | 0o777, Target: "some/where"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Target != "some/where" || s.Size != 10 || !s.IsSymlink() {
		t.Errorf("symlink attr %+v", s)
	}
	root, _ := db.GetAttr(ctx, RootIno)
	if root.Mtime < f.Mtime {
		t.Errorf("parent mtime %d not updated by create (%d)", root.Mtime, f.Mtime)
	}
}

// TestUnlinkUnused: a regular file losing its last name while unused is
// deleted in the unlink itself (its staging file named for the caller,
// nothing left for Forget); one in use, one with another name, or a
// symlink is not.
func TestUnlinkUnused(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	f := mustCreate(t, db, RootIno, "f", modeFile)
	if _, err := db.CommitData(ctx, f.Ino, DataCommit{Size: 10, StagingName: "stg-f", AddStaged: Ranges{{0, 10}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.a", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	var asked []uint64
	unused := func(ino uint64) bool { asked = append(asked, ino); return true }
	rm, err := db.UnlinkUnused(ctx, RootIno, "f", unused)
	if err != nil || !rm.Deleted || rm.Staging != "stg-f" || rm.Nlink != 0 {
		t.Fatalf("unlink of an unused file: %+v, %v", rm, err)
	}
	if _, err := db.GetAttr(ctx, f.Ino); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted inode: %v", err)
	}
	if _, deleted, err := db.Forget(ctx, f.Ino); err != nil || deleted {
		t.Fatalf("forget after the unlink deleted it: %v, %v", deleted, err)
	}
	if _, err := db.Dirty(ctx, RootIno); err != nil {
		t.Fatalf("root not queued after the unlink: %v", err)
	}
	if _, err := db.Dirty(ctx, f.Ino); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted inode still queued: %v", err)
	}

	g := mustCreate(t, db, RootIno, "g", modeFile)
	rm, err = db.UnlinkUnused(ctx, RootIno, "g", func(uint64) bool { return false })
	if err != nil || rm.Deleted || rm.Nlink != 0 {
		t.Fatalf("unlink of a file in use: %+v, %v", rm, err)
	}
	if _, deleted, err := db.Forget(ctx, g.Ino); err != nil || !deleted {
		t.Fatalf("forget of the orphan: %v, %v", deleted, err)
	}

	h := mustCreate(t, db, RootIno, "h", modeFile)
	if _, err := db.Link(ctx, h.Ino, RootIno, "h2"); err != nil {
		t.Fatal(err)
	}
	asked = nil
	if rm, err := db.UnlinkUnused(ctx, RootIno, "h", unused); err != nil || rm.Deleted || rm.Nlink != 1 || len(asked) != 0 {
		t.Fatalf("unlink of one of two names: %+v, %v (asked %v)", rm, err, asked)
	}
	if _, err := db.Create(ctx, RootIno, "s", NewNode{Mode: sIFLNK | 0o777, Target: "x"}); err != nil {
		t.Fatal(err)
	}
	if rm, err := db.UnlinkUnused(ctx, RootIno, "s", unused); err != nil || rm.Deleted {
		t.Fatalf("unlink of a symlink: %+v, %v", rm, err)
	}
}

func TestUnlinkRmdirLink(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	d := mustCreate(t, db, RootIno, "d", modeDir)
	f := mustCreate(t, db, d.Ino, "f", modeFile)
	if _, err := db.Rmdir(ctx, RootIno, "d"); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("rmdir non-empty: %v", err)
	}
	if _, err := db.Unlink(ctx, RootIno, "d"); !errors.Is(err, ErrIsDir) {
		t.Errorf("unlink dir: %v", err)
	}
	if _, err := db.Rmdir(ctx, d.Ino, "f"); !errors.Is(err, ErrNotDir) {
		t.Errorf("rmdir file: %v", err)
	}
	l, err := db.Link(ctx, f.Ino, RootIno, "hard")
	if err != nil || l.Nlink != 2 {
		t.Fatalf("link: %+v %v", l, err)
	}
	if _, err := db.Link(ctx, d.Ino, RootIno, "dl"); !errors.Is(err, ErrIsDir) {
		t.Errorf("link dir: %v", err)
	}
	rm, err := db.Unlink(ctx, d.Ino, "f")
	if err != nil || rm != (Removed{Ino: f.Ino, Nlink: 1}) {
		t.Fatalf("unlink: %+v %v", rm, err)
	}
	rm, err = db.Unlink(ctx, RootIno, "hard")
	if err != nil || rm != (Removed{Ino: f.Ino, Nlink: 0}) {
		t.Fatalf("unlink last: %+v %v", rm, err)
	}
	// An orphan keeps its attributes until forgotten.
	if a, err := db.GetAttr(ctx, f.Ino); err != nil || a.Nlink != 0 {
		t.Fatalf("orphan attr %+v %v", a, err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.a", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, deleted, err := db.Forget(ctx, f.Ino); err != nil || !deleted {
		t.Fatalf("forget: %v %v", deleted, err)
	}
	if _, err := db.GetAttr(ctx, f.Ino); !errors.Is(err, ErrNotFound) {
		t.Errorf("forgotten inode: %v", err)
	}
	if rm, err := db.Rmdir(ctx, RootIno, "d"); err != nil || rm.Nlink != 0 {
		t.Fatalf("rmdir: %+v %v", rm, err)
	}
	if root, _ := db.GetAttr(ctx, RootIno); root.Nlink != 2 {
		t.Errorf("root nlink %d after rmdir", root.Nlink)
	}
	if _, err := db.Create(ctx, d.Ino, "x", NewNode{Mode: modeFile}); !errors.Is(err, ErrNotFound) {
		t.Errorf("create in removed dir: %v", err)
	}
}

func TestRename(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	a := mustCreate(t, db, RootIno, "a", modeDir)
	b := mustCreate(t, db, RootIno, "b", modeDir)
	f := mustCreate(t, db, a.Ino, "f", modeFile)
	g := mustCreate(t, db, b.Ino, "g", modeFile)
	sub := mustCreate(t, db, a.Ino, "sub", modeDir)

	if _, err := db.Rename(ctx, a.Ino, "f", b.Ino, "g", RenameNoReplace); !errors.Is(err, ErrExist) {
		t.Errorf("noreplace: %v", err)
	}
	if _, err := db.Rename(ctx, a.Ino, "f", b.Ino, "zz", RenameExchange); !errors.Is(err, ErrNotFound) {
		t.Errorf("exchange with missing: %v", err)
	}
	if _, err := db.Rename(ctx, RootIno, "a", sub.Ino, "loop", 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("dir below itself: %v", err)
	}
	if _, err := db.Rename(ctx, a.Ino, "sub", b.Ino, "g", 0); !errors.Is(err, ErrNotDir) {
		t.Errorf("dir over file: %v", err)
	}
	if _, err := db.Rename(ctx, a.Ino, "f", RootIno, "b", 0); !errors.Is(err, ErrIsDir) {
		t.Errorf("file over dir: %v", err)
	}
	// Exchange a file and a directory across parents.
	if _, err := db.Rename(ctx, a.Ino, "sub", b.Ino, "g", RenameExchange); err != nil {
		t.Fatal(err)
	}
	if x, _ := db.Lookup(ctx, b.Ino, "g"); x.Ino != sub.Ino {
		t.Errorf("after exchange b/g = %d, want %d", x.Ino, sub.Ino)
	}
	if x, _ := db.Lookup(ctx, a.Ino, "sub"); x.Ino != g.Ino {
		t.Errorf("after exchange a/sub = %d, want %d", x.Ino, g.Ino)
	}
	aa, _ := db.GetAttr(ctx, a.Ino)
	bb, _ := db.GetAttr(ctx, b.Ino)
	if aa.Nlink != 2 || bb.Nlink != 3 {
		t.Errorf("nlinks after exchange: a %d (want 2), b %d (want 3)", aa.Nlink, bb.Nlink)
	}
	// Replace a file.
	rm, err := db.Rename(ctx, a.Ino, "f", a.Ino, "sub", 0)
	if err != nil || rm != (Removed{Ino: g.Ino, Nlink: 0}) {
		t.Fatalf("replace: %+v %v", rm, err)
	}
	if got := names(t, db, a.Ino); !reflect.DeepEqual(got, []string{"sub"}) {
		t.Errorf("a lists %v", got)
	}
	// Hard links to one inode: rename is a no-op.
	if _, err := db.Link(ctx, f.Ino, a.Ino, "f2"); err != nil {
		t.Fatal(err)
	}
	if rm, err := db.Rename(ctx, a.Ino, "sub", a.Ino, "f2", 0); err != nil || rm.Ino != 0 {
		t.Fatalf("rename onto own link: %+v %v", rm, err)
	}
	if got := names(t, db, a.Ino); !reflect.DeepEqual(got, []string{"sub", "f2"}) {
		t.Errorf("a lists %v", got)
	}
	// Replace an empty directory with a directory from another parent.
	e := mustCreate(t, db, RootIno, "e", modeDir)
	if _, err := db.Rename(ctx, b.Ino, "g", RootIno, "e", 0); err != nil {
		t.Fatal(err)
	}
	if x, _ := db.GetAttr(ctx, e.Ino); x.Nlink != 0 {
		t.Errorf("replaced dir nlink %d", x.Nlink)
	}
	root, _ := db.GetAttr(ctx, RootIno)
	bb, _ = db.GetAttr(ctx, b.Ino)
	if root.Nlink != 5 || bb.Nlink != 2 {
		t.Errorf("nlinks: root %d (want 5: a b e), b %d (want 2)", root.Nlink, bb.Nlink)
	}
}

func TestReadDirStableCookies(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	for i := 0; i < 10; i++ {
		mustCreate(t, db, RootIno, fmt.Sprintf("f%d", i), modeFile)
	}
	first, err := db.ReadDir(ctx, RootIno, 0, 4)
	if err != nil || len(first) != 4 {
		t.Fatalf("first page: %v %v", first, err)
	}
	if first[0].Cookie != FirstCookie || first[0].Attr.Mode != modeFile {
		t.Errorf("first entry %+v", first[0])
	}
	// Unlinking entries already listed and ones not yet listed does not
	// shift the rest.
	for _, n := range []string{"f0", "f1", "f5"} {
		if _, err := db.Unlink(ctx, RootIno, n); err != nil {
			t.Fatal(err)
		}
	}
	rest, err := db.ReadDir(ctx, RootIno, first[len(first)-1].Cookie, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rest {
		got = append(got, e.Name)
	}
	if want := []string{"f4", "f6", "f7", "f8", "f9"}; !reflect.DeepEqual(got, want) {
		t.Errorf("rest = %v, want %v", got, want)
	}
}

func TestXattrs(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	f := mustCreate(t, db, RootIno, "f", modeFile)
	if _, err := db.GetXattr(ctx, f.Ino, "user.x"); !errors.Is(err, ErrNoData) {
		t.Errorf("missing: %v", err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.x", []byte("1"), XattrReplace); !errors.Is(err, ErrNoData) {
		t.Errorf("replace missing: %v", err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.x", []byte("1"), XattrCreate); err != nil {
		t.Fatal(err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.x", []byte("2"), XattrCreate); !errors.Is(err, ErrExist) {
		t.Errorf("create existing: %v", err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.x", []byte("2"), XattrReplace); err != nil {
		t.Fatal(err)
	}
	if err := db.SetXattr(ctx, f.Ino, "user.empty", nil, 0); err != nil {
		t.Fatal(err)
	}
	if v, err := db.GetXattr(ctx, f.Ino, "user.x"); err != nil || string(v) != "2" {
		t.Errorf("get = %q, %v", v, err)
	}
	if v, err := db.GetXattr(ctx, f.Ino, "user.empty"); err != nil || v == nil || len(v) != 0 {
		t.Errorf("get empty = %q, %v", v, err)
	}
	if l, err := db.ListXattr(ctx, f.Ino); err != nil || !reflect.DeepEqual(l, []string{"user.empty", "user.x"}) {
		t.Errorf("list = %v, %v", l, err)
	}
	if err := db.RemoveXattr(ctx, f.Ino, "user.x"); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveXattr(ctx, f.Ino, "user.x"); !errors.Is(err, ErrNoData) {
		t.Errorf("remove missing: %v", err)
	}
	if _, err := db.GetXattr(ctx, 9999, "user.x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("xattr of missing inode: %v", err)
	}
}

func id(b byte) chunkstore.ID { return chunkstore.ID{b} }

func TestExtentsCommitData(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	f := mustCreate(t, db, RootIno, "f", modeFile)
	// Two 100-byte extents, then a hole, then one more.
	_, err := db.CommitData(ctx, f.Ino, DataCommit{Size: 400, Insert: []Extent{
		{Off: 0, Len: 100, Chunk: id(1)},
		{Off: 100, Len: 100, Chunk: id(2), ChunkOff: 50},
		{Off: 300, Len: 100, Chunk: id(3)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Extents(ctx, f.Ino, 150, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Chunk != id(2) || got[1].Chunk != id(3) {
		t.Fatalf("extents [150,350) = %+v", got)
	}
	// Punch [50, 150) and [350, end), stage [60, 70).
	s, err := db.CommitData(ctx, f.Ino, DataCommit{
		Size: 350, Mtime: 7, Ctime: 8, StagingName: "s1",
		Cut:       Ranges{{50, 100}, {350, ToEnd(350)}},
		AddStaged: Ranges{{60, 10}, {400, 10}},
		Durable:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Staging{"s1", Ranges{{60, 10}, {400, 10}}}); !reflect.DeepEqual(s, want) {
		t.Errorf("staging = %+v, want %+v", s, want)
	}
	all, _ := db.Extents(ctx, f.Ino, 0, ToEnd(0))
	want := []Extent{
		{Off: 0, Len: 50, Chunk: id(1)},
		{Off: 150, Len: 50, Chunk: id(2), ChunkOff: 100},
		{Off: 300, Len: 50, Chunk: id(3)},
	}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("extents after cut = %+v\nwant %+v", all, want)
	}
	a, _ := db.GetAttr(ctx, f.Ino)
	if a.Size != 350 || a.Mtime != 7 || a.Ctime != 8 {
		t.Errorf("attr after commit %+v", a)
	}
	it, err := db.Dirty(ctx, f.Ino)
	if err != nil || it.Reasons&DirtyData == 0 {
		t.Errorf("dirty %+v %v", it, err)
	}
	// The uploader's commit: refused while writes are unpersisted or the
	// version moved, accepted otherwise.
	v, _ := db.DataVersion(ctx, f.Ino)
	db.MarkUnpersisted(f.Ino)
	if err := db.ReplaceContent(ctx, f.Ino, v, nil); !errors.Is(err, ErrChanged) {
		t.Errorf("replace while unpersisted: %v", err)
	}
	if _, err := db.CommitData(ctx, f.Ino, DataCommit{Size: 350, AddStaged: Ranges{{0, 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := db.ReplaceContent(ctx, f.Ino, v, nil); !errors.Is(err, ErrChanged) {
		t.Errorf("replace after a new version: %v", err)
	}
	v, _ = db.DataVersion(ctx, f.Ino)
	if err := db.ReplaceContent(ctx, f.Ino, v, []Extent{{Off: 0, Len: 350, Chunk: id(9)}}); err != nil {
		t.Fatal(err)
	}
	// The staged bytes stay, for reads, but are clean: the uploader no
	// longer sees them, and the file system may drop them.
	kept := Ranges{{0, 1}, {60, 10}, {400, 10}}
	if s, _ := db.Staging(ctx, f.Ino); s.Name != "s1" || !reflect.DeepEqual(s.Ranges, kept) {
		t.Errorf("staging after replace %+v, want the ranges kept", s)
	}
	if snap, err := db.FileSnapshot(ctx, f.Ino); err != nil || len(snap.Staging.Ranges) != 0 {
		t.Errorf("uploader's view after replace %+v, %v: want nothing staged", snap, err)
	}
	if n, err := db.DropEmptyStaging(ctx, f.Ino); err != nil || n != "" {
		t.Errorf("drop empty staging = %q, %v: want it kept (it has ranges)", n, err)
	}
	if cs, err := db.CleanStagings(ctx, time.Now().Add(time.Hour), 10); err != nil || len(cs) != 1 || cs[0].Ino != f.Ino {
		t.Errorf("clean stagings %+v, %v", cs, err)
	}
	// A write makes part of it dirty again: not clean, not droppable.
	if _, err := db.CommitData(ctx, f.Ino, DataCommit{Size: 350, AddStaged: Ranges{{60, 5}}}); err != nil {
		t.Fatal(err)
	}
	if snap, _ := db.FileSnapshot(ctx, f.Ino); !reflect.DeepEqual(snap.Staging.Ranges, Ranges{{60, 5}}) {
		t.Errorf("uploader's view after a write %+v: want only the write", snap.Staging)
	}
	if n, err := db.DropCleanStaging(ctx, f.Ino); err != nil || n != "" {
		t.Errorf("drop clean staging of a written file = %q, %v", n, err)
	}
	v, _ = db.DataVersion(ctx, f.Ino)
	if err := db.ReplaceContent(ctx, f.Ino, v, []Extent{{Off: 0, Len: 350, Chunk: id(10)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.DropCleanStaging(ctx, f.Ino); err != nil || n != "s1" {
		t.Errorf("drop clean staging = %q, %v", n, err)
	}
	if names, _ := db.StagingNames(ctx); len(names) != 0 {
		t.Errorf("staging names %v", names)
	}
}

func TestDirtyQueue(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := Open(ctx, path, Options{Now: func() time.Time { return now }}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile})
	if err != nil {
		t.Fatal(err)
	}
	items, err := db.NextDirty(ctx, now, now, 10)
	if err != nil || len(items) != 1 || items[0].Ino != RootIno || items[0].Reasons != DirtyEntries {
		t.Fatalf("queue after create: %+v %v", items, err)
	}
	if items, _ := db.NextDirty(ctx, now.Add(-time.Second), now, 10); len(items) != 0 {
		t.Errorf("unsettled item returned: %+v", items)
	}
	root := items[0]
	now = now.Add(time.Second)
	if _, err := db.SetAttr(ctx, f.Ino, AttrChange{Mask: SetMode, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if err := db.FailDirty(ctx, f.Ino, 0, errors.New("boom"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	items, _ = db.NextDirty(ctx, now, now, 10)
	if len(items) != 1 || items[0].Ino != RootIno {
		t.Fatalf("failed item not held back: %+v", items)
	}
	it, _ := db.Dirty(ctx, f.Ino)
	if it.Attempts != 1 || it.LastError != "boom" {
		t.Errorf("failed item %+v", it)
	}
	// A re-queue during the upload keeps the item.
	if _, err := db.Create(ctx, RootIno, "g", NewNode{Mode: modeFile}); err != nil {
		t.Fatal(err)
	}
	if done, err := db.DoneDirty(ctx, RootIno, root.Seq); err != nil || done {
		t.Errorf("done with stale seq = %v, %v", done, err)
	}
	it, _ = db.Dirty(ctx, RootIno)
	if done, err := db.DoneDirty(ctx, RootIno, it.Seq); err != nil || !done {
		t.Errorf("done = %v, %v", done, err)
	}
}

func TestOrphansPurgedAtOpen(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	f := mustCreate(t, db, RootIno, "f", modeFile)
	if _, err := db.Unlink(ctx, RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := reopen(t, path)
	if _, err := db2.GetAttr(ctx, f.Ino); !errors.Is(err, ErrNotFound) {
		t.Errorf("orphan survived reopen: %v", err)
	}
}

func TestConcurrentCreates(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, err := db.Create(ctx, RootIno, fmt.Sprintf("w%d-%d", w, i), NewNode{Mode: modeFile}); err != nil {
					errs <- err
					return
				}
				if _, err := db.ReadDir(ctx, RootIno, 0, 10); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(names(t, db, RootIno)); n != 400 {
		t.Errorf("%d entries, want 400", n)
	}
}

func TestMeta(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	if _, err := db.Meta(ctx, MetaBaseCommit); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing meta: %v", err)
	}
	if err := db.SetMeta(ctx, MetaBaseCommit, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Meta(ctx, MetaBaseCommit); err != nil || string(v) != "abc" {
		t.Errorf("meta = %q, %v", v, err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// A new index uses PageSize pages and WAL; an index made with another page
// size keeps it (SQLite cannot change it in WAL mode).
func TestPageSize(t *testing.T) {
	ctx := context.Background()
	pageSize := func(db *DB) (n int, mode string) {
		t.Helper()
		if err := db.w.QueryRowContext(ctx, "PRAGMA page_size").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if err := db.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return n, mode
	}
	db, path := openTest(t)
	if n, mode := pageSize(db); n != PageSize || mode != "wal" {
		t.Errorf("new index: page size %d, journal mode %s; want %d, wal", n, mode, PageSize)
	}
	db.Close()
	if n, _ := pageSize(reopen(t, path)); n != PageSize {
		t.Errorf("reopened index: page size %d, want %d", n, PageSize)
	}

	old := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite3", "file:"+old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA page_size = 4096; VACUUM"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if n, mode := pageSize(reopen(t, old)); n != 4096 || mode != "wal" {
		t.Errorf("index made with 4 KiB pages: page size %d, journal mode %s; want 4096, wal", n, mode)
	}
}

// CommitDataAttr commits the data and then the attribute change in one
// transaction: the size is the data's, the times and mode the change's,
// and the file is queued for both.
func TestCommitDataAttr(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	f, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile})
	if err != nil {
		t.Fatal(err)
	}
	ch := AttrChange{Mask: SetMode | SetMtime, Mode: 0o600, Mtime: 1_000_000_000}
	s, a, err := db.CommitDataAttr(ctx, f.Ino, DataCommit{Size: 10, Mtime: 5_000_000_000, Ctime: 5_000_000_000,
		StagingName: "stg-f", AddStaged: Ranges{{0, 10}}}, ch)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "stg-f" || !slices.Equal(s.Ranges, Ranges{{0, 10}}) {
		t.Errorf("staging %+v, want stg-f with [0,10)", s)
	}
	got, err := db.GetAttr(ctx, f.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if got != a {
		t.Errorf("returned %+v, stored %+v", a, got)
	}
	if got.Size != 10 || got.Mtime != 1_000_000_000 || got.Mode != sIFREG|0o600 || got.Ctime == 5_000_000_000 {
		t.Errorf("attributes %+v: want size 10, mtime 1 s, mode 0600 and a ctime of now", got)
	}
	d, err := db.Dirty(ctx, f.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if d.Reasons&DirtyData == 0 || d.Reasons&DirtyMeta == 0 {
		t.Errorf("dirty reasons %v, want data and attributes", d.Reasons)
	}
}
