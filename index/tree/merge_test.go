package tree

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

var mergeTime = time.Date(2026, 11, 24, 13, 15, 0, 0, time.UTC)

const stamp = "2026-11-24 131500"

type mergeCase struct {
	base, local, remote spec
	want                map[string]string
	conflicts           []string // "kind path -> copy"
}

func conflictStrings(cs []Conflict) []string {
	var out []string
	for _, c := range cs {
		s := c.Kind.String() + " " + c.Path
		if c.CopyPath != "" {
			s += " -> " + c.CopyPath
		}
		out = append(out, s)
	}
	return out
}

// runMerge merges the three specs, stores the result and returns its
// flattened form and the merge result.
func runMerge(t *testing.T, s *memStore, b, l, r chunkstore.ID) (map[string]string, *MergeResult) {
	t.Helper()
	res, err := Merge(b, l, r, s.load, MergeOptions{Device: "laptop", Time: mergeTime})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	root, objs, err := res.Build()
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	s.put(objs)
	return s.flatten(t, root), res
}

func TestMerge(t *testing.T) {
	tests := map[string]mergeCase{
		"one side each": {
			base:   spec{"a": file("A"), "b": file("B"), "c": file("C"), "d/x": file("X")},
			local:  spec{"a": file("A2"), "b": file("B"), "c": file("C"), "d/x": file("X"), "new": file("N")},
			remote: spec{"a": file("A"), "b": file("B3"), "d/x": file("X"), "d/y": file("Y")},
			want:   map[string]string{"a": "f:A2", "b": "f:B3", "d": "d", "d/x": "f:X", "d/y": "f:Y", "new": "f:N"},
		},
		"identical changes taken once": {
			base:   spec{"a": file("A"), "gone": file("G")},
			local:  spec{"a": file("A2"), "n": file("N"), "d/x": file("X")},
			remote: spec{"a": file("A2"), "n": file("N"), "d/x": file("X")},
			want:   map[string]string{"a": "f:A2", "n": "f:N", "d": "d", "d/x": "f:X"},
		},
		"both modified: remote keeps the name": {
			base:   spec{"report.txt": file("v1"), "x": file("X")},
			local:  spec{"report.txt": file("mine"), "x": file("X")},
			remote: spec{"report.txt": file("theirs"), "x": file("X2")},
			want: map[string]string{"report.txt": "f:theirs", "x": "f:X2",
				"report (conflict laptop " + stamp + ").txt": "f:mine"},
			conflicts: []string{"content report.txt -> report (conflict laptop " + stamp + ").txt"},
		},
		"both created a file differently": {
			local:     spec{".bashrc": file("mine"), "d/Makefile": file("m1")},
			remote:    spec{".bashrc": file("theirs"), "d/Makefile": file("m2")},
			want:      map[string]string{".bashrc": "f:theirs", ".bashrc (conflict laptop " + stamp + ")": "f:mine", "d": "d", "d/Makefile": "f:m2", "d/Makefile (conflict laptop " + stamp + ")": "f:m1"},
			conflicts: []string{"content .bashrc -> .bashrc (conflict laptop " + stamp + ")", "content d/Makefile -> d/Makefile (conflict laptop " + stamp + ")"},
		},
		"copy names that collide get a counter": {
			base:   spec{"r.txt": file("v1")},
			local:  spec{"r.txt": file("mine"), "r (conflict laptop " + stamp + ").txt": file("old copy")},
			remote: spec{"r.txt": file("theirs"), "r (conflict laptop " + stamp + " 2).txt": file("other")},
			want: map[string]string{"r.txt": "f:theirs", "r (conflict laptop " + stamp + ").txt": "f:old copy",
				"r (conflict laptop " + stamp + " 2).txt": "f:other", "r (conflict laptop " + stamp + " 3).txt": "f:mine"},
			conflicts: []string{"content r.txt -> r (conflict laptop " + stamp + " 3).txt"},
		},
		"local deleted, remote modified": {
			base:      spec{"a": file("A"), "b": file("B")},
			local:     spec{"b": file("B")},
			remote:    spec{"a": file("A2"), "b": file("B")},
			want:      map[string]string{"a": "f:A2", "b": "f:B"},
			conflicts: []string{"delete-vs-modify a"},
		},
		"remote deleted, local modified": {
			base:      spec{"a": file("A"), "b": file("B")},
			local:     spec{"a": file("A2"), "b": file("B")},
			remote:    spec{"b": file("B")},
			want:      map[string]string{"a": "f:A2", "b": "f:B"},
			conflicts: []string{"delete-vs-modify a"},
		},
		"directory deleted vs changed inside": {
			base:      spec{"d/x": file("X"), "d/y": file("Y"), "d/s/z": file("Z"), "e/u": file("U"), "e/v": file("V")},
			local:     spec{"e/u": file("U")},
			remote:    spec{"d/x": file("X2"), "d/y": file("Y"), "d/s/z": file("Z"), "e/u": file("U")},
			want:      map[string]string{"d": "d", "d/x": "f:X2", "e": "d", "e/u": "f:U"},
			conflicts: []string{"delete-vs-modify d/x"},
		},
		"directory deleted vs only deletions inside": {
			base:   spec{"d/x": file("X"), "d/y": file("Y"), "k": file("K")},
			local:  spec{"d/x": file("X"), "k": file("K2")},
			remote: spec{"k": file("K")},
			want:   map[string]string{"k": "f:K2"},
		},
		"both created a directory: merged": {
			base:   spec{"k": file("K")},
			local:  spec{"k": file("K"), "new/a": file("A"), "new/same": file("S"), "new/sub/l": file("L")},
			remote: spec{"k": file("K"), "new/b": file("B"), "new/same": file("S"), "new/sub/r": file("R")},
			want: map[string]string{"k": "f:K", "new": "d", "new/a": "f:A", "new/b": "f:B", "new/same": "f:S",
				"new/sub": "d", "new/sub/l": "f:L", "new/sub/r": "f:R"},
		},
		"local file vs remote directory": {
			base:      spec{"k": file("K")},
			local:     spec{"k": file("K"), "x.md": file("F")},
			remote:    spec{"k": file("K"), "x.md/in": file("I")},
			want:      map[string]string{"k": "f:K", "x.md": "d", "x.md/in": "f:I", "x (conflict laptop " + stamp + ").md": "f:F"},
			conflicts: []string{"file-vs-directory x.md -> x (conflict laptop " + stamp + ").md"},
		},
		"local directory vs remote file": {
			base:      spec{"x.d": file("old")},
			local:     spec{"x.d/in": file("I")},
			remote:    spec{"x.d": file("F")},
			want:      map[string]string{"x.d": "f:F", "x.d (conflict laptop " + stamp + ")": "d", "x.d (conflict laptop " + stamp + ")/in": "f:I"},
			conflicts: []string{"file-vs-directory x.d -> x.d (conflict laptop " + stamp + ")"},
		},
		"directory replaced by a file, changed inside on the other side": {
			base:      spec{"x/a": file("A"), "x/b": file("B")},
			local:     spec{"x/a": file("A"), "x/b": file("B2")},
			remote:    spec{"x": symlink("elsewhere")},
			want:      map[string]string{"x": "l:elsewhere", "x (conflict laptop " + stamp + ")": "d", "x (conflict laptop " + stamp + ")/b": "f:B2"},
			conflicts: []string{"delete-vs-modify x/b", "file-vs-directory x -> x (conflict laptop " + stamp + ")"},
		},
		"directory replaced by a file, unchanged on the other side": {
			base:   spec{"x/a": file("A")},
			local:  spec{"x/a": file("A"), "y": file("Y2")},
			remote: spec{"x": symlink("elsewhere")},
			want:   map[string]string{"x": "l:elsewhere", "y": "f:Y2"},
		},
		"file replaced by a directory, directory changed on the other side": {
			base:      spec{"x/a": file("A"), "x/b": file("B")},
			local:     spec{"x": file("F")},
			remote:    spec{"x/a": file("A2"), "x/b": file("B")},
			want:      map[string]string{"x": "d", "x/a": "f:A2", "x (conflict laptop " + stamp + ")": "f:F"},
			conflicts: []string{"delete-vs-modify x/a", "file-vs-directory x -> x (conflict laptop " + stamp + ")"},
		},
		"rename on one side, edit of the renamed file on the other": {
			base:      spec{"a.txt": file("A")},
			local:     spec{"b.txt": file("A")},
			remote:    spec{"a.txt": file("A2")},
			want:      map[string]string{"a.txt": "f:A2", "b.txt": "f:A"},
			conflicts: []string{"delete-vs-modify a.txt"},
		},
		"directory deleted vs its mode changed": {
			base:      spec{"d/x": file("X")},
			local:     spec{"d": withMode(dir(), 0o700), "d/x": file("X")},
			remote:    spec{},
			want:      map[string]string{"d": "d m700"},
			conflicts: []string{"delete-vs-modify d"},
		},
		"metadata on one side, content on the other": {
			base:   spec{"a": file("A"), "b": file("B"), "d/x": file("X")},
			local:  spec{"a": withMode(file("A"), 0o600), "b": withMtime(file("B2"), 9), "d": withMode(dir(), 0o700), "d/x": file("X")},
			remote: spec{"a": withMtime(file("A2"), 7), "b": withMode(file("B"), 0o640), "d/x": file("X2")},
			want:   map[string]string{"a": "f:A2 m600 t7", "b": "f:B2 m640 t9", "d": "d m700", "d/x": "f:X2"},
		},
		"metadata on both sides": {
			base:      spec{"a": file("A"), "b": file("B")},
			local:     spec{"a": withMode(file("A"), 0o600), "b": withMtime(file("B"), 5)},
			remote:    spec{"a": withMode(file("A"), 0o640), "b": withMtime(file("B"), 3)},
			want:      map[string]string{"a": "f:A m640", "b": "f:B t5"},
			conflicts: []string{"metadata a"},
		},
		"same content created twice, different times": {
			local:  spec{"a": withMtime(file("A"), 1)},
			remote: spec{"a": withMtime(file("A"), 2)},
			want:   map[string]string{"a": "f:A t2"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newMemStore()
			var b chunkstore.ID // no base: a fresh volume
			if tc.base != nil {
				b = s.build(t, tc.base)
			}
			got, res := runMerge(t, s, b, s.build(t, tc.local), s.build(t, tc.remote))
			if !maps.Equal(got, tc.want) {
				t.Errorf("merged tree:\n got %v\nwant %v", got, tc.want)
			}
			if cs := conflictStrings(res.Conflicts); !slices.Equal(cs, tc.conflicts) {
				t.Errorf("conflicts:\n got %q\nwant %q", cs, tc.conflicts)
			}
		})
	}
}

func TestMergeLoadsOnlyChangedTrees(t *testing.T) {
	s := newMemStore()
	common := spec{"same/deep/x": file("X"), "same/y": file("Y"), "l/a": file("A"), "r/b": file("B"), "both/u/v": file("V"), "both/c": file("C")}
	with := func(extra spec) spec {
		out := maps.Clone(common)
		maps.Copy(out, extra)
		return out
	}
	b := s.build(t, common)
	l := s.build(t, with(spec{"l/a": file("A2"), "both/c": file("C2")}))
	r := s.build(t, with(spec{"r/b": file("B2"), "both/d": file("D")}))
	base, _ := s.load(b)
	sameID, bothID := base.Find("same").Subtree, base.Find("both").Subtree
	both, _ := s.load(bothID)
	uID := both.Find("u").Subtree
	clear(s.loads)

	got, res := runMerge(t, s, b, l, r)
	want := map[string]string{"same": "d", "same/deep": "d", "same/deep/x": "f:X", "same/y": "f:Y", "l": "d", "l/a": "f:A2",
		"r": "d", "r/b": "f:B2", "both": "d", "both/u": "d", "both/u/v": "f:V", "both/c": "f:C2", "both/d": "f:D"}
	if !maps.Equal(got, want) || len(res.Conflicts) != 0 {
		t.Fatalf("merged %v, conflicts %v", got, res.Conflicts)
	}
	// Three roots and three "both" trees; "same", "l", "r" and "both/u" never.
	if res.TreesLoaded != 6 {
		t.Errorf("loaded %d trees, want 6", res.TreesLoaded)
	}
	for name, id := range map[string]chunkstore.ID{"same": sameID, "both/u": uID} {
		if s.loads[id] != 0 {
			t.Errorf("unchanged subtree %s was loaded", name)
		}
	}
	// Only the two merged directories are new objects.
	if _, objs, _ := res.Build(); len(objs) != 2 {
		t.Errorf("Build returned %d objects, want 2", len(objs))
	}
}

func TestMergeShortCircuits(t *testing.T) {
	s := newMemStore()
	b := s.build(t, spec{"a": file("A")})
	l := s.build(t, spec{"a": file("A2")})
	r := s.build(t, spec{"a": file("A3"), "d/x": file("X")})
	clear(s.loads)
	for name, tc := range map[string]struct{ b, l, r, want chunkstore.ID }{
		"local unchanged":   {b, b, r, r},
		"remote unchanged":  {b, l, b, l},
		"same on both":      {b, r, r, r},
		"no base, no local": {chunkstore.ID{}, chunkstore.ID{}, r, r},
	} {
		res, err := Merge(tc.b, tc.l, tc.r, s.load, MergeOptions{Device: "laptop", Time: mergeTime})
		if err != nil {
			t.Fatal(err)
		}
		if id, objs, err := res.Build(); err != nil || id != tc.want || len(objs) != 0 || res.Root != nil {
			t.Errorf("%s: root %s, %d objects, %v", name, id, len(objs), err)
		}
	}
	if s.totalLoads() != 0 {
		t.Fatalf("short circuits loaded %d trees", s.totalLoads())
	}
	// An empty result is built, so that its object is stored.
	res, err := Merge(b, chunkstore.ID{}, b, s.load, MergeOptions{Device: "laptop", Time: mergeTime})
	if err != nil {
		t.Fatal(err)
	}
	if id, objs, err := res.Build(); err != nil || id != EmptyTreeID || len(objs) != 1 {
		t.Fatalf("empty result: %s, %d objects, %v", id, len(objs), err)
	}
}

func TestMergeLoadError(t *testing.T) {
	s := newMemStore()
	b := s.build(t, spec{"a": file("A")})
	l := s.build(t, spec{"a": file("A2")})
	_, err := Merge(b, l, id("missing"), s.load, MergeOptions{Device: "laptop", Time: mergeTime})
	if !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestMergeCopyDropsLinkID(t *testing.T) {
	s := newMemStore()
	linked := func(content string) Entry { e := file(content); e.LinkID, e.Nlink = 7, 2; return e }
	b := s.build(t, spec{"a.txt": linked("v1"), "b.txt": linked("v1")})
	l := s.build(t, spec{"a.txt": linked("mine"), "b.txt": linked("mine")})
	r := s.build(t, spec{"a.txt": linked("theirs"), "b.txt": linked("v1")})
	res, err := Merge(b, l, r, s.load, MergeOptions{Device: "laptop", Time: mergeTime})
	if err != nil {
		t.Fatal(err)
	}
	e, _, ok := res.Root.Lookup("a (conflict laptop " + stamp + ").txt")
	if !ok || e.LinkID != 0 || e.Nlink != 0 {
		t.Fatalf("copy %+v (found %v): want LinkID and Nlink 0", e, ok)
	}
	if e, _, _ := res.Root.Lookup("b.txt"); e.LinkID != 7 || e.Nlink != 2 {
		t.Fatalf("b.txt lost its LinkID: %+v", e)
	}
}
