package tree

import (
	"errors"
	"slices"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

func TestBuild(t *testing.T) {
	root := NewDir()
	a, err := root.Sub("a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := a.Sub("b")
	if again, _ := root.Sub("a"); again != a {
		t.Fatal("Sub of an existing in-memory directory made a new one")
	}
	for _, d := range []*Dir{root, a, b} {
		if err := d.SetFile(Entry{Name: "big", Type: TypeFile, Mode: 0o644}, refs(100)); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = root.Sub("empty1")
	_, _ = a.Sub("empty2")
	if err := root.Set(Entry{Name: "stored", Type: TypeDir, Mode: 0o755, Subtree: id("elsewhere"), Totals: Stats{Files: 5, Dirs: 2, Bytes: 50, Chunks: 4}}); err != nil {
		t.Fatal(err)
	}
	if err := root.Set(Entry{Name: "x", Type: TypeFIFO, Xattrs: []Xattr{{"user.b", nil}, {"user.a", nil}}}); err != nil {
		t.Fatal(err)
	}
	if got := root.Names(); !slices.Equal(got, []string{"a", "big", "empty1", "stored", "x"}) {
		t.Fatalf("Names = %q", got)
	}
	if e, sub, ok := root.Lookup("x"); !ok || sub != nil || e.Xattrs[0].Name != "user.a" {
		t.Fatalf("Lookup(x) = %+v, %v, %v", e, sub, ok)
	}
	if e, sub, ok := root.Lookup("a"); !ok || sub != a || e.Type != TypeDir {
		t.Fatalf("Lookup(a) = %+v, %v, %v", e, sub, ok)
	}

	rootID, objs, err := Build(root)
	if err != nil {
		t.Fatal(err)
	}
	// One manifest (equal in all three), trees b, a, the empty tree (shared by
	// empty1 and empty2) and root: each object once, referenced ones first.
	kinds := map[Kind]int{}
	stored := map[chunkstore.ID]bool{id("elsewhere"): true}
	for _, o := range objs {
		kinds[o.Kind]++
		if o.ID != chunkstore.Hash(o.Data) {
			t.Fatalf("object %s: ID is not the hash of its data", o.ID)
		}
		if stored[o.ID] {
			t.Fatalf("object %s returned twice", o.ID)
		}
		if o.Kind == KindTree {
			tr, err := Decode(o.Data)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tr.Entries {
				for _, ref := range []chunkstore.ID{e.Subtree, e.Manifest} {
					if !ref.IsZero() && !stored[ref] {
						t.Fatalf("tree %s refers to %s before it was returned", o.ID, ref)
					}
				}
			}
		}
		stored[o.ID] = true
	}
	if kinds[KindManifest] != 1 || kinds[KindTree] != 4 || objs[len(objs)-1].ID != rootID || !stored[EmptyTreeID] {
		t.Fatalf("objects %v, root last %v", kinds, objs[len(objs)-1].ID == rootID)
	}
	// Building again gives the same result; DirOf of the root tree rebuilds it.
	id2, objs2, _ := Build(root)
	if id2 != rootID || len(objs2) != len(objs) {
		t.Fatal("Build is not deterministic")
	}
	tr, _ := Decode(objs[len(objs)-1].Data)
	if id3, objs3, err := Build(DirOf(tr)); err != nil || id3 != rootID || len(objs3) != 1 {
		t.Fatalf("DirOf round trip: %v, %d objects, %v", id3 == rootID, len(objs3), err)
	}

	if !root.Remove("x") || root.Remove("x") || root.Len() != 4 {
		t.Fatal("Remove")
	}
}

func TestDirErrors(t *testing.T) {
	d := NewDir()
	_ = d.Set(Entry{Name: "f", Type: TypeFile})
	tests := map[string]error{
		"bad name":         d.Set(Entry{Name: "a/b", Type: TypeFile}),
		"dir without tree": d.Set(Entry{Name: "d", Type: TypeDir}),
		"SetDir of a file": d.SetDir(Entry{Name: "d", Type: TypeFile}, NewDir()),
		"SetDir nil":       d.SetDir(Entry{Name: "d", Type: TypeDir}, nil),
		"SetDir bad name":  d.SetDir(Entry{Name: "..", Type: TypeDir}, NewDir()),
		"SetFile of a dir": d.SetFile(Entry{Name: "d", Type: TypeDir}, nil),
		"SetFile zero ref": d.SetFile(Entry{Name: "g", Type: TypeFile}, []ChunkRef{{id("c"), 0}}),
		"SetFile bad mode": d.SetFile(Entry{Name: "g", Type: TypeFile, Mode: 0o170000}, nil),
	}
	_, err := d.Sub("f")
	tests["Sub over a file"] = err
	for name, err := range tests {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	// An invalid entry slipped into an in-memory Dir fails Build with its path.
	sub, _ := d.Sub("s")
	sub.nodes["bad"] = &node{entry: Entry{Name: "bad", Type: TypeSymlink}}
	if _, _, err := Build(d); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Build: %v", err)
	}
}
