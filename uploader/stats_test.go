package uploader

import (
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// recount walks the whole tree root in s and returns its totals, failing
// the test where a directory entry's totals disagree with its subtree.
func recount(t *testing.T, s chunkstore.Store, root chunkstore.ID) tree.Stats {
	t.Helper()
	tr, err := bucket.NewLoader(s).Tree(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	st := tree.Stats{Dirs: 1}
	for i := range tr.Entries {
		e := &tr.Entries[i]
		if e.Type == tree.TypeDir {
			sub := recount(t, s, e.Subtree)
			if sub != e.Totals {
				t.Fatalf("directory %q: entry totals %+v, its tree holds %+v", e.Name, e.Totals, sub)
			}
		}
		st.Add(e.Stats())
	}
	return st
}

// checkStats fails unless the head commit's stats are its tree's totals
// and have the files, dirs and bytes given.
func (f *fixture) checkStats(files, dirs, bytes uint64, when string) tree.Stats {
	f.t.Helper()
	c := f.headCommit()
	got := recount(f.t, f.mem, c.Root)
	if c.Stats != got {
		f.t.Fatalf("%s: commit stats %+v, the tree holds %+v", when, c.Stats, got)
	}
	if got.Files != files || got.Dirs != dirs || got.Bytes != bytes || got.Chunks < files-3 {
		f.t.Fatalf("%s: stats %+v, want %d files, %d dirs, %d bytes", when, got, files, dirs, bytes)
	}
	return got
}

// noTreeReads makes every read of a tree object fail until the returned
// function is called: a commit must not read the trees it keeps.
func (f *fixture) noTreeReads() func() {
	f.store.FailPrefix(fault.OpGet, chunkstore.TreesPrefix, nil)
	return f.store.Clear
}

func TestCommitStats(t *testing.T) {
	f := newFixture(t)
	a := f.create(index.RootIno, "a", modeDir|0o755)
	f.write(f.create(a, "f1", modeReg|0o644), 0, randBytes(1, 100))
	b := f.create(a, "b", modeDir|0o755)
	f2 := f.create(b, "f2", modeReg|0o644)
	big := uint64(3<<20 + 17)
	f.write(f2, 0, randBytes(2, int(big)))
	f.create(index.RootIno, "ln", modeLnk|0o777)
	f.create(index.RootIno, "p", modeFifo|0o644)
	f.create(a, "e", modeReg|0o644)
	f.round()
	// f1, f2, ln, p, e; root, a, a/b.
	first := f.checkStats(5, 3, 100+big, "first commit")
	if first.Chunks < 3 {
		t.Fatalf("stats count %d chunk refs; a 3 MiB file alone has more than one", first.Chunks)
	}
	if st, err := f.up.Status(f.ctx); err != nil || st.Volume == nil || st.Volume.Files != 5 || st.Volume.Bytes != 100+big {
		t.Fatalf("status volume %+v, %v", st.Volume, err)
	} else if st.BytesCut != int64(100+big) {
		// Every byte of both files was cut once (the empty file has none).
		t.Fatalf("status counts %d bytes cut, want %d", st.BytesCut, 100+big)
	}

	if _, err := f.db.Unlink(f.ctx, a, "f1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Rename(f.ctx, a, "b", index.RootIno, "c", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Link(f.ctx, f2, index.RootIno, "f2link"); err != nil {
		t.Fatal(err)
	}
	d := f.create(a, "gone", modeDir|0o755)
	f.create(d, "inside", modeReg|0o644)
	f.round()
	if _, err := f.db.Unlink(f.ctx, d, "inside"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Rmdir(f.ctx, a, "gone"); err != nil {
		t.Fatal(err)
	}
	restore := f.noTreeReads()
	f.round()
	// f2 (two names), ln, p, e; root, a, c.
	f.checkStats(5, 3, 2*big, "after unlink, rename, link and rmdir")

	f.write(f.create(b, "new", modeReg|0o644), 0, randBytes(3, 10))
	f.round()
	restore()
	f.checkStats(6, 3, 2*big+10, "after a new file in a kept subtree")
}

// TestCommitStatsFreshMachine: a machine that mounted the volume lazily
// commits the right totals without loading the directories it keeps (it
// takes their totals from the entries of the trees it loaded).
func TestCommitStatsFreshMachine(t *testing.T) {
	f := newFixture(t)
	for i, name := range []string{"a", "b", "c"} {
		d := f.create(index.RootIno, name, modeDir|0o755)
		sub := f.create(d, "sub", modeDir|0o755)
		f.write(f.create(sub, "f", modeReg|0o644), 0, randBytes(uint64(i), 1000))
	}
	f.round()
	f.checkStats(3, 7, 3000, "first commit")

	p := f.peer("fresh")
	sub := p.lookup("b/sub")
	if err := p.db.EnsureLoaded(p.ctx, sub.Ino, bucket.NewLoader(p.hooked)); err != nil {
		t.Fatal(err)
	}
	restore := p.noTreeReads()
	p.write(p.create(sub.Ino, "g", modeReg|0o644), 0, randBytes(9, 500))
	p.create(index.RootIno, "d", modeDir|0o700)
	p.round()
	restore()
	f.checkStats(4, 8, 3500, "commit of the fresh machine")
}
