package tree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

func refs(n int) []ChunkRef {
	out := make([]ChunkRef, n)
	for i := range out {
		out[i] = ChunkRef{ID: chunkstore.Hash([]byte{byte(i), byte(i >> 8), byte(i >> 16)}), Length: uint32(1000 + i)}
	}
	return out
}

func TestManifest(t *testing.T) {
	m := &Manifest{Chunks: refs(1000)}
	data, mid, err := EncodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Chunks) != 1000 || got.Size() != m.Size() || got.Chunks[999] != m.Chunks[999] {
		t.Fatal("manifest round trip changed it")
	}
	if again, id2, _ := EncodeManifest(got); !bytes.Equal(again, data) || id2 != mid {
		t.Fatal("manifest re-encoding differs")
	}
	tree, _ := mustEncode(t, &Tree{})
	if mid == chunkstore.Hash(tree) {
		t.Fatal("impossible")
	}
	bad := map[string][]byte{
		"tree as manifest": tree,
		"truncated":        data[:len(data)-1],
		"trailing":         append(bytes.Clone(data), 0),
		"count too big":    append([]byte{'m', formatVersion, 0xe9, 0x07}, data[4:]...), // 1001
	}
	small, _, _ := EncodeManifest(&Manifest{Chunks: refs(MaxInlineChunks + 1)})
	small[2] = MaxInlineChunks             // claims 64 refs: a manifest must hold more
	bad["64 refs"] = small[:len(small)-34] // one ref (ID and a 2-byte length) less
	for name, data := range bad {
		if _, err := DecodeManifest(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	for _, n := range []int{0, 1, MaxInlineChunks} {
		if _, _, err := EncodeManifest(&Manifest{Chunks: refs(n)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("EncodeManifest of %d refs: err = %v", n, err)
		}
	}
	zero := refs(100)
	zero[50].Length = 0
	if _, _, err := EncodeManifest(&Manifest{Chunks: zero}); !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeManifest with a zero-length ref: err = %v", err)
	}
}

func TestFileContent(t *testing.T) {
	for _, n := range []int{0, 1, MaxInlineChunks, MaxInlineChunks + 1, 5000} {
		rs := refs(n)
		chunks, size, m, err := FileContent(rs)
		if err != nil {
			t.Fatal(err)
		}
		want := (&Manifest{Chunks: rs}).Size()
		if size != want {
			t.Errorf("%d refs: size %d, want %d", n, size, want)
		}
		if inline := n <= MaxInlineChunks; inline != (m == nil) || inline != (len(chunks) == n) {
			t.Errorf("%d refs: %d inline, manifest %v", n, len(chunks), m != nil)
		}
		// The entry built from it is valid and survives a round trip.
		d := NewDir()
		if err := d.SetFile(Entry{Name: "f", Type: TypeFile}, rs); err != nil {
			t.Fatal(err)
		}
		_, objs, err := Build(d)
		if err != nil {
			t.Fatal(err)
		}
		if wantObjs := 1 + btoi(m != nil); len(objs) != wantObjs || (m != nil && objs[0].ID != m.ID) {
			t.Fatalf("%d refs: Build returned %d objects, want %d, manifest first", n, len(objs), wantObjs)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCommit(t *testing.T) {
	first := &Commit{Root: id("r1"), Device: "laptop", TimeNs: 1, Generation: 1, Stats: Stats{1, 2, 3, 4}}
	data1, id1, err := EncodeCommit(first)
	if err != nil {
		t.Fatal(err)
	}
	other := &Commit{Root: id("r2"), Device: "desk", TimeNs: -2, Generation: 1, Stats: Stats{Dirs: 1}}
	_, id2, err := EncodeCommit(other)
	if err != nil {
		t.Fatal(err)
	}
	second := &Commit{Root: id("r3"), Parents: []chunkstore.ID{id1}, Device: "laptop", Generation: NextGeneration(first), Stats: Stats{Dirs: 1}}
	_, id3, err := EncodeCommit(second)
	if err != nil {
		t.Fatal(err)
	}
	merge := &Commit{Root: id("r4"), Parents: []chunkstore.ID{id3, id2}, Device: "ü-desk", TimeNs: 5,
		Generation: NextGeneration(second, other), Stats: Stats{Dirs: 1},
		RootAttrs: RootAttrs{Mode: 0o2750, UID: 1<<32 - 1, GID: 7, MtimeNs: -3, Xattrs: []Xattr{{"user.z", nil}, {"user.a", []byte("v")}}}}
	if merge.Generation != 3 || NextGeneration() != 1 {
		t.Fatalf("generations: merge %d, none %d", merge.Generation, NextGeneration())
	}
	data4, id4, err := EncodeCommit(merge)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeCommit(data4)
	if err != nil {
		t.Fatal(err)
	}
	if again, gid, _ := EncodeCommit(got); !bytes.Equal(again, data4) || gid != id4 || got.Device != "ü-desk" || got.Parents[1] != id2 {
		t.Fatalf("commit round trip: %+v", got)
	}
	if !got.RootAttrs.Equal(&merge.RootAttrs) || got.RootAttrs.Xattrs[0].Name != "user.a" {
		t.Fatalf("root attributes round trip: %+v, want %+v (xattrs sorted)", got.RootAttrs, merge.RootAttrs)
	}
	if err := got.CheckParents([]*Commit{second, other}); err != nil {
		t.Fatalf("CheckParents: %v", err)
	}
	for name, ps := range map[string][]*Commit{"swapped": {other, second}, "one": {second}, "wrong": {second, first}} {
		if err := got.CheckParents(ps); !errors.Is(err, ErrCorrupt) {
			t.Errorf("CheckParents %s: err = %v", name, err)
		}
	}
	wrongGen := *merge
	wrongGen.Generation = 7
	if err := wrongGen.CheckParents([]*Commit{second, other}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("CheckParents with a wrong generation: %v", err)
	}
	if c, _ := DecodeCommit(data1); c.Stats != first.Stats || c.TimeNs != 1 {
		t.Fatalf("stats round trip: %+v", c)
	}

	invalid := map[string]Commit{
		"zero root":     {Device: "d", Generation: 1},
		"no device":     {Root: id("r"), Generation: 1},
		"bad utf8":      {Root: id("r"), Device: "\xff", Generation: 1},
		"gen 0":         {Root: id("r"), Device: "d"},
		"orphan gen 2":  {Root: id("r"), Device: "d", Generation: 2},
		"child gen 1":   {Root: id("r"), Device: "d", Generation: 1, Parents: []chunkstore.ID{id1}},
		"zero parent":   {Root: id("r"), Device: "d", Generation: 2, Parents: []chunkstore.ID{{}}},
		"same parent":   {Root: id("r"), Device: "d", Generation: 2, Parents: []chunkstore.ID{id1, id1}},
		"three parents": {Root: id("r"), Device: "d", Generation: 2, Parents: []chunkstore.ID{id1, id2, id3}},
		"no dirs":       {Root: id("r"), Device: "d", Generation: 1},
		"root mode":     {Root: id("r"), Device: "d", Generation: 1, Stats: Stats{Dirs: 1}, RootAttrs: RootAttrs{Mode: 0o40755}},
		"root xattrs":   {Root: id("r"), Device: "d", Generation: 1, Stats: Stats{Dirs: 1}, RootAttrs: RootAttrs{Xattrs: []Xattr{{"a", nil}, {"a", nil}}}},
	}
	for name, c := range invalid {
		if name != "no dirs" && name != "root mode" && name != "root xattrs" {
			c.Stats.Dirs = 1 // only the rule the case names is broken
			invalid[name] = c
		}
	}
	for name, c := range invalid {
		if _, _, err := EncodeCommit(&c); !errors.Is(err, ErrInvalid) {
			t.Errorf("EncodeCommit %s: err = %v", name, err)
		}
	}
	corrupt := map[string][]byte{
		"truncated": data4[:len(data4)-1],
		"trailing":  append(bytes.Clone(data4), 0),
		"tree":      {'t', formatVersion, 0},
		"version 1": append([]byte{'c', 1}, data4[2:]...),
		"gen 0":     append(append([]byte{'c', formatVersion}, id1[:]...), 0, 1, 'd', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0),
		"3 parents": append(append([]byte{'c', formatVersion}, id1[:]...), 3),
		"zero root": append(append([]byte{'c', formatVersion}, make([]byte, 32)...), 0, 1, 'd', 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0),
		"0 dirs":    append(append([]byte{'c', formatVersion}, id1[:]...), 0, 1, 'd', 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"xattr, 0":  append(append([]byte{'c', formatVersion}, id1[:]...), 0, 1, 'd', 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0),
	}
	valid := append(append([]byte{'c', formatVersion}, id1[:]...), 0, 1, 'd', 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
	if _, err := DecodeCommit(valid); err != nil {
		t.Fatalf("the hand-built valid commit: %v", err)
	}
	for name, data := range corrupt {
		if _, err := DecodeCommit(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeCommit %s: err = %v", name, err)
		}
	}
}
