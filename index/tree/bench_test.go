package tree

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

const benchEntries = 10_000

// benchTree is a 10,000-entry directory of the usual mix: mostly small files
// of one or two chunks, some subdirectories and symlinks, a few xattrs.
func benchTree() *Tree {
	t := &Tree{Entries: make([]Entry, benchEntries)}
	for i := range t.Entries {
		e := Entry{Name: fmt.Sprintf("file-%06d.txt", i), Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000,
			MtimeNs: 1_760_000_000_000_000_000 + int64(i)*1_000_003}
		switch {
		case i%50 == 0:
			e.Type, e.Mode, e.Subtree = TypeDir, 0o755, chunkstore.Hash([]byte(e.Name))
			e.Totals = Stats{Files: uint64(i), Dirs: 3, Bytes: uint64(i) << 12, Chunks: uint64(i)}
		case i%97 == 0:
			e.Type, e.Mode, e.Target = TypeSymlink, 0o777, "../target/"+e.Name
		default:
			n := 1 + i%2
			for j := range n {
				e.Chunks = append(e.Chunks, ChunkRef{ID: chunkstore.Hash([]byte(fmt.Sprint(i, j))), Length: 4096 + uint32(i)})
			}
			e.Size = uint64(n) * uint64(4096+i)
		}
		if i%200 == 0 {
			e.Xattrs = []Xattr{{Name: "user.tag", Value: []byte("blue")}}
		}
		t.Entries[i] = e
	}
	return t
}

func perEntry(b *testing.B, size int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchEntries), "ns/entry")
	b.ReportMetric(float64(size)/benchEntries, "B/entry")
}

func BenchmarkEncode(b *testing.B) {
	t := benchTree()
	var size int
	b.ReportAllocs()
	for b.Loop() {
		data, _, err := Encode(t)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	perEntry(b, size)
}

func BenchmarkDecode(b *testing.B) {
	data, _, err := Encode(benchTree())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	perEntry(b, len(data))
}

// The JSON baselines measure the alternative the encoding was chosen over:
// canonical JSON (sorted, omitempty, hex IDs) of the same directory.
type jsonRef struct {
	ID  string `json:"id"`
	Len uint32 `json:"len"`
}

type jsonEntry struct {
	Name     string            `json:"name"`
	Type     Type              `json:"type"`
	Mode     uint32            `json:"mode"`
	UID      uint32            `json:"uid,omitempty"`
	GID      uint32            `json:"gid,omitempty"`
	MtimeNs  int64             `json:"mtime,omitempty"`
	Size     uint64            `json:"size,omitempty"`
	Rdev     uint64            `json:"rdev,omitempty"`
	Xattrs   map[string][]byte `json:"xattrs,omitempty"`
	Target   string            `json:"target,omitempty"`
	Chunks   []jsonRef         `json:"chunks,omitempty"`
	Manifest string            `json:"manifest,omitempty"`
	Subtree  string            `json:"subtree,omitempty"`
}

func hexID(id chunkstore.ID) string {
	if id.IsZero() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func toJSON(t *Tree) []jsonEntry {
	out := make([]jsonEntry, len(t.Entries))
	for i, e := range t.Entries {
		j := jsonEntry{Name: e.Name, Type: e.Type, Mode: e.Mode, UID: e.UID, GID: e.GID, MtimeNs: e.MtimeNs,
			Size: e.Size, Rdev: e.Rdev, Target: e.Target, Manifest: hexID(e.Manifest), Subtree: hexID(e.Subtree)}
		for _, c := range e.Chunks {
			j.Chunks = append(j.Chunks, jsonRef{ID: hexID(c.ID), Len: c.Length})
		}
		for _, x := range e.Xattrs {
			if j.Xattrs == nil {
				j.Xattrs = make(map[string][]byte)
			}
			j.Xattrs[x.Name] = x.Value
		}
		out[i] = j
	}
	return out
}

func fromJSON(js []jsonEntry) (*Tree, error) {
	t := &Tree{Entries: make([]Entry, len(js))}
	for i, j := range js {
		e := Entry{Name: j.Name, Type: j.Type, Mode: j.Mode, UID: j.UID, GID: j.GID, MtimeNs: j.MtimeNs,
			Size: j.Size, Rdev: j.Rdev, Target: j.Target}
		for _, c := range j.Chunks {
			cid, err := chunkstore.ParseID(c.ID)
			if err != nil {
				return nil, err
			}
			e.Chunks = append(e.Chunks, ChunkRef{ID: cid, Length: c.Len})
		}
		if j.Subtree != "" {
			var err error
			if e.Subtree, err = chunkstore.ParseID(j.Subtree); err != nil {
				return nil, err
			}
		}
		t.Entries[i] = e
	}
	return t, nil
}

func BenchmarkEncodeJSONBaseline(b *testing.B) {
	t := benchTree()
	var size int
	for b.Loop() {
		data, err := json.Marshal(toJSON(t))
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	perEntry(b, size)
}

func BenchmarkDecodeJSONBaseline(b *testing.B) {
	data, err := json.Marshal(toJSON(benchTree()))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var js []jsonEntry
		if err := json.Unmarshal(data, &js); err != nil {
			b.Fatal(err)
		}
		if _, err := fromJSON(js); err != nil {
			b.Fatal(err)
		}
	}
	perEntry(b, len(data))
}

// BenchmarkDiff100k diffs two 100,000-file trees (10 groups of 10 directories
// of 1,000 files) that differ in one file; the loader decodes each tree from
// its bytes, as a mount does from its cache.
func BenchmarkDiff100k(b *testing.B) {
	s := newMemStore()
	x, y := bigTree(b, s, 100, 1000, "one"), bigTree(b, s, 100, 1000, "two")
	var st DiffStats
	b.ReportAllocs()
	for b.Loop() {
		var changes []Change
		var err error
		changes, st, err = Diff(x, y, s.load)
		if err != nil || len(changes) != 3 {
			b.Fatalf("%d changes, %v", len(changes), err)
		}
	}
	b.ReportMetric(float64(st.TreesLoaded), "trees/op")
	b.ReportMetric(float64(st.SubtreesSkipped), "skipped/op")
}

// BenchmarkMerge100k merges two 100,000-file trees that each changed one
// file of the same directory, and builds the result.
func BenchmarkMerge100k(b *testing.B) {
	s := newMemStore()
	base, l, r := bigTree(b, s, 100, 1000, "base"), bigTree(b, s, 100, 1000, "one"), bigTree(b, s, 100, 1000, "two")
	b.ReportAllocs()
	for b.Loop() {
		res, err := Merge(base, l, r, s.load, MergeOptions{Device: "laptop", Time: mergeTime})
		if err != nil || len(res.Conflicts) != 1 {
			b.Fatalf("%v %v", res, err)
		}
		if _, _, err := res.Build(); err != nil {
			b.Fatal(err)
		}
	}
}
