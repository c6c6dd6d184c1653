package tree

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

func TestDiff(t *testing.T) {
	base := spec{
		"a.txt":          file("A"),
		"keep/x":         file("X"),
		"keep/deep/y":    file("Y"),
		"mod/z":          file("Z"),
		"mod/w":          file("W"),
		"gone/q":         file("Q"),
		"swap":           file("S"),
		"meta":           dir(),
		"link":           symlink("t1"),
		"keepmeta/inner": file("I"),
	}
	next := spec{
		"a.txt":          file("A2"),
		"keep/x":         file("X"),
		"keep/deep/y":    file("Y"),
		"mod/z":          file("Z"),
		"mod/w":          withMode(file("W"), 0o600),
		"mod/new":        file("N"),
		"swap/inside":    file("S"),
		"meta":           withMode(dir(), 0o700),
		"link":           symlink("t2"),
		"added/p":        file("P"),
		"keepmeta/inner": file("I"),
	}
	s := newMemStore()
	old, cur := s.build(t, base), s.build(t, next)
	changes, st, err := Diff(old, cur, s.load)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		if (c.Old == nil) != (c.Kind == Added) || (c.New == nil) != (c.Kind == Removed) {
			t.Errorf("%s %s: old %v new %v", c.Kind, c.Path, c.Old, c.New)
		}
		got = append(got, c.Kind.String()+" "+c.Path)
	}
	want := []string{
		"modified a.txt",
		"added added",
		"removed gone",
		"modified link",
		"modified meta",
		"modified mod", // only its subtree changed: reported so the caller can record it
		"added mod/new",
		"modified mod/w",
		"type-changed swap",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("changes:\n got %q\nwant %q", got, want)
	}
	// Loaded: both roots and both "mod" trees; skipped: keep, keepmeta, meta
	// (equal subtrees although its entry changed).
	if st.TreesLoaded != 4 || st.SubtreesSkipped != 3 || s.totalLoads() != 4 {
		t.Fatalf("stats %+v, loads %d", st, s.totalLoads())
	}

	// Equal roots: nothing loaded. From nothing: every top entry added.
	if ch, st, err := Diff(cur, cur, s.load); err != nil || len(ch) != 0 || st.SubtreesSkipped != 1 || st.TreesLoaded != 0 {
		t.Fatalf("diff of equal roots: %v %+v %v", ch, st, err)
	}
	ch, st, err := Diff(chunkstore.ID{}, old, s.load)
	if err != nil || len(ch) != 8 || st.TreesLoaded != 1 {
		t.Fatalf("diff from nothing: %d changes %+v %v", len(ch), st, err)
	}
	ch, _, err = Diff(old, EmptyTreeID, s.load)
	if err != nil || len(ch) != 8 || ch[0].Kind != Removed {
		t.Fatalf("diff to empty: %d changes %v", len(ch), err)
	}
}

func TestDiffErrors(t *testing.T) {
	s := newMemStore()
	a := s.build(t, spec{"d/x": file("1")})
	b := s.build(t, spec{"d/x": file("2")})
	missing := id("missing")
	if _, _, err := Diff(a, missing, s.load); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("missing root: %v", err)
	}
	stop := errors.New("stop")
	_, err := DiffFunc(a, b, s.load, func(Change) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("fn error: %v", err)
	}
	s.objects[a] = []byte("garbage")
	if _, _, err := Diff(a, b, s.load); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt tree: %v", err)
	}
}

// bigTree stores a tree of dirs*files files (dirs directories of files
// files each, under 10 top-level groups) and returns its root and the Dir.
func bigTree(tb testing.TB, s *memStore, dirs, files int, content string) chunkstore.ID {
	root := NewDir()
	for i := range dirs {
		g, err := root.Sub(fmt.Sprintf("group%d", i%10))
		if err != nil {
			tb.Fatal(err)
		}
		d, err := g.Sub(fmt.Sprintf("dir%05d", i))
		if err != nil {
			tb.Fatal(err)
		}
		for j := range files {
			c := fmt.Sprintf("%d/%d", i, j)
			if i == dirs/2 && j == files/2 {
				c = content
			}
			rs := []ChunkRef{{ID: chunkstore.Hash([]byte(c)), Length: 4096}}
			if err := d.SetFile(Entry{Name: fmt.Sprintf("file%05d.dat", j), Type: TypeFile, Mode: 0o644}, rs); err != nil {
				tb.Fatal(err)
			}
		}
	}
	id, objs, err := Build(root)
	if err != nil {
		tb.Fatal(err)
	}
	s.put(objs)
	return id
}

func TestDiffSkipsSubtrees(t *testing.T) {
	s := newMemStore()
	a := bigTree(t, s, 100, 100, "one")
	b := bigTree(t, s, 100, 100, "two")
	changes, st, err := Diff(a, b, s.load)
	if err != nil {
		t.Fatal(err)
	}
	// root, group0, dir00050: 3 trees on each side; skipped: 9 groups and 9 dirs.
	if len(changes) != 3 || changes[2].Path != "group0/dir00050/file00050.dat" || st.TreesLoaded != 6 || st.SubtreesSkipped != 18 {
		t.Fatalf("%d changes (%v), stats %+v", len(changes), changes, st)
	}
}
