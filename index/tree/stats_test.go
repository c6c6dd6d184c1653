package tree

import (
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// recount returns the totals of the stored tree root by walking all of it,
// checking on the way that every directory entry's Totals agree.
func (s *memStore) recount(t testing.TB, root chunkstore.ID) Stats {
	t.Helper()
	tr, err := s.load(root)
	if err != nil {
		t.Fatalf("recount: %v", err)
	}
	st := Stats{Dirs: 1}
	for i := range tr.Entries {
		e := &tr.Entries[i]
		if e.Type == TypeDir {
			sub := s.recount(t, e.Subtree)
			if sub != e.Totals {
				t.Fatalf("directory %q: entry totals %+v, its tree holds %+v", e.Name, e.Totals, sub)
			}
			st.Add(sub)
			continue
		}
		st.Add(e.Stats())
	}
	return st
}

func TestTotals(t *testing.T) {
	s := newMemStore()
	root := NewDir()
	a, err := root.Sub("a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := a.Sub("b")
	_, _ = root.Sub("empty")
	for _, d := range []*Dir{root, b} {
		if err := d.SetFile(Entry{Name: "big", Type: TypeFile, Mode: 0o644}, refs(100)); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	h := file("hello")
	h.Name = "h"
	must(a.Set(h))
	must(a.Set(Entry{Name: "l", Type: TypeSymlink, Mode: 0o777, Target: "x"}))
	must(b.Set(Entry{Name: "p", Type: TypeFIFO}))
	must(root.Set(Entry{Name: "stored", Type: TypeDir, Mode: 0o755, Subtree: id("elsewhere"),
		Totals: Stats{Files: 10, Dirs: 3, Bytes: 1000, Chunks: 12}}))
	big := (&Manifest{Chunks: refs(100)}).Size()
	// Directories: root, a, a/b, empty and stored's three. Files: big twice
	// (100 chunks each), a/h, a/l, a/b/p and stored's ten.
	want := Stats{Files: 2 + 3 + 10, Dirs: 4 + 3, Bytes: 2*big + 5 + 1000, Chunks: 200 + 1 + 12}
	if got := root.Totals(); got != want {
		t.Fatalf("Dir.Totals = %+v, want %+v", got, want)
	}
	rootID, objs, err := Build(root)
	if err != nil {
		t.Fatal(err)
	}
	s.put(objs)
	tr, err := s.load(rootID)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Totals(); got != want {
		t.Fatalf("Tree.Totals of the built root = %+v, want %+v", got, want)
	}
	ae := tr.Find("a")
	if ae == nil || ae.Totals != (Stats{Files: 4, Dirs: 2, Bytes: big + 5, Chunks: 101}) {
		t.Fatalf("entry a: %+v", ae)
	}
	if e := tr.Find("big"); e == nil || e.ManifestChunks != 100 || e.Stats() != (Stats{Files: 1, Bytes: big, Chunks: 100}) {
		t.Fatalf("entry big: %+v", e)
	}
	if e := tr.Find("empty"); e == nil || e.Totals != (Stats{Dirs: 1}) {
		t.Fatalf("entry empty: %+v", e)
	}
}

// TestMergeTotals checks that every directory entry of a merged tree
// carries the totals of the subtree it names, also when the merge keeps
// one side's stored subtree under the other side's entry.
func TestMergeTotals(t *testing.T) {
	s := newMemStore()
	base := spec{"d/x": file("x"), "d/y": file("y"), "e/z": file("z"), "f/w": file("w")}
	b := s.build(t, base)
	// Local adds to d (a new subtree) and changes f; remote only changes
	// d's mode (so the merged d is local's stored tree under remote's
	// entry) and adds a file in e.
	l := s.build(t, spec{"d/x": file("x"), "d/y": file("y"), "d/n/new": file("new content"),
		"e/z": file("z"), "f/w": file("w2")})
	r := s.build(t, spec{"d": withMode(dir(), 0o700), "d/x": file("x"), "d/y": file("y"),
		"e/z": file("z"), "e/more": file("more"), "f/w": file("w")})
	res, err := Merge(b, l, r, s.load, MergeOptions{Device: "laptop", Time: mergeTime})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Conflicts) != 0 {
		t.Fatalf("conflicts: %+v", res.Conflicts)
	}
	id, objs, err := res.Build()
	if err != nil {
		t.Fatal(err)
	}
	s.put(objs)
	got := s.recount(t, id)
	want := Stats{Files: 6, Dirs: 5, Bytes: lenSum("x", "y", "new content", "z", "more", "w2"), Chunks: 6}
	if got != want {
		t.Fatalf("merged totals %+v, want %+v", got, want)
	}
	if dt := res.Root.Totals(); dt != want {
		t.Fatalf("Dir.Totals of the merge result %+v, want %+v", dt, want)
	}
	if f := s.flatten(t, id); f["d"] != "d m700" || f["d/n/new"] != "f:new content" {
		t.Fatalf("merged tree %v", f)
	}
}

func lenSum(contents ...string) uint64 {
	var n uint64
	for _, c := range contents {
		n += uint64(len(c))
	}
	return n
}
