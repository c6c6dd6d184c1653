package tree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

func id(s string) chunkstore.ID { return chunkstore.Hash([]byte(s)) }

// sampleTree has one entry of every type and every optional field.
func sampleTree() *Tree {
	return &Tree{Entries: []Entry{
		{Name: "a.txt", Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000, MtimeNs: 1_700_000_000_123_456_789,
			Size: 10, Chunks: []ChunkRef{{id("c1"), 4}, {id("c2"), 6}}, LinkID: 42, Nlink: 3},
		{Name: "big.iso", Type: TypeFile, Mode: 0o600, Size: 1 << 40, Manifest: id("m"), ManifestChunks: 1 << 20,
			Locs: []Loc{{Ref: 1<<20 - 1, Pack: id("p2"), Off: 4 << 20, Len: 200}}},
		{Name: "bin", Type: TypeDir, Mode: 0o755 | 0o1000, Subtree: id("t"), Totals: Stats{Files: 7, Dirs: 2, Bytes: 1 << 33, Chunks: 9000},
			Xattrs: []Xattr{{"user.a", []byte("1")}, {"user.b", nil}}},
		{Name: "cat", Type: TypeSymlink, Mode: 0o777, Target: "bin/cat", LinkID: 1 << 63, Nlink: 1<<32 - 1},
		{Name: "dev", Type: TypeBlockDev, Mode: 0o660, Rdev: 8<<8 | 1},
		{Name: "empty", Type: TypeFile, Mode: 0o4755, MtimeNs: -5},
		{Name: "fifo", Type: TypeFIFO, Mode: 0o600},
		{Name: "link", Type: TypeSymlink, Mode: 0o777, Target: "../x/y"},
		{Name: "sock", Type: TypeSocket, Mode: 0o755, UID: 1<<32 - 1},
		{Name: "tty", Type: TypeCharDev, Mode: 0o620, Rdev: 4<<8 | 1},
		{Name: "small", Type: TypeFile, Mode: 0o644, Size: 30, Chunks: []ChunkRef{{id("s1"), 10}, {id("s2"), 20}},
			Locs: []Loc{{Ref: 0, Pack: id("p"), Off: 0, Len: 11}, {Ref: 1, Pack: id("p"), Off: 11, Len: 9}}},
		{Name: "ü\xff", Type: TypeFile, Mode: 0o644},
	}}
}

func mustEncode(t testing.TB, tr *Tree) ([]byte, chunkstore.ID) {
	t.Helper()
	data, id, err := Encode(tr)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return data, id
}

func TestRoundTrip(t *testing.T) {
	for name, tr := range map[string]*Tree{"empty": {}, "sample": sampleTree(), "manifest only": {Entries: []Entry{sampleTree().Entries[1]}}} {
		t.Run(name, func(t *testing.T) {
			data, tid := mustEncode(t, tr)
			if tid != chunkstore.Hash(data) {
				t.Fatal("ID is not the hash of the encoding")
			}
			if err := Verify(tid, data); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(got.Entries) != len(tr.Entries) {
				t.Fatalf("decoded %d entries, want %d", len(got.Entries), len(tr.Entries))
			}
			for i := range got.Entries {
				if !got.Entries[i].Equal(&tr.Entries[i]) {
					t.Errorf("entry %d: got %+v, want %+v", i, got.Entries[i], tr.Entries[i])
				}
			}
			again, _ := mustEncode(t, got)
			if !bytes.Equal(again, data) {
				t.Fatal("re-encoding the decoded tree changed the bytes")
			}
			data[len(data)/2] ^= 1
			if err := Verify(tid, data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify of a changed object: %v", err)
			}
		})
	}
	if _, eid := mustEncode(t, &Tree{}); eid != EmptyTreeID {
		t.Fatal("EmptyTreeID is not the ID of the empty tree")
	}
}

func TestDeterministic(t *testing.T) {
	want, wantID := mustEncode(t, sampleTree())
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		tr := sampleTree()
		rng.Shuffle(len(tr.Entries), func(i, j int) { tr.Entries[i], tr.Entries[j] = tr.Entries[j], tr.Entries[i] })
		for i := range tr.Entries {
			xs := tr.Entries[i].Xattrs
			rng.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
		}
		got, gotID := mustEncode(t, tr)
		if !bytes.Equal(got, want) || gotID != wantID {
			t.Fatal("shuffled input encoded differently")
		}
	}
	// Nil and empty slices are the same value.
	a := &Tree{Entries: []Entry{{Name: "x", Type: TypeFile, Chunks: []ChunkRef{}, Xattrs: []Xattr{}}}}
	b := &Tree{Entries: []Entry{{Name: "x", Type: TypeFile}}}
	if _, ia := mustEncode(t, a); ia != func() chunkstore.ID { _, ib := mustEncode(t, b); return ib }() {
		t.Fatal("nil and empty slices encoded differently")
	}
}

func TestEncodeInvalid(t *testing.T) {
	f := func(mod func(*Entry)) Entry {
		e := Entry{Name: "f", Type: TypeFile, Mode: 0o644, Size: 3, Chunks: []ChunkRef{{id("c"), 3}}}
		mod(&e)
		return e
	}
	many := make([]ChunkRef, MaxInlineChunks+1)
	for i := range many {
		many[i] = ChunkRef{id("c"), 1}
	}
	tests := map[string][]Entry{
		"empty name":         {f(func(e *Entry) { e.Name = "" })},
		"dot":                {f(func(e *Entry) { e.Name = "." })},
		"dotdot":             {f(func(e *Entry) { e.Name = ".." })},
		"slash":              {f(func(e *Entry) { e.Name = "a/b" })},
		"nul":                {f(func(e *Entry) { e.Name = "a\x00" })},
		"long name":          {f(func(e *Entry) { e.Name = strings.Repeat("x", 256) })},
		"duplicate":          {f(func(*Entry) {}), f(func(*Entry) {})},
		"type 0":             {f(func(e *Entry) { e.Type = 0 })},
		"type 8":             {f(func(e *Entry) { e.Type = 8 })},
		"mode bits":          {f(func(e *Entry) { e.Mode = 0o10644 })},
		"size mismatch":      {f(func(e *Entry) { e.Size = 4 })},
		"zero-length chunk":  {f(func(e *Entry) { e.Chunks = append(e.Chunks, ChunkRef{id("z"), 0}) })},
		"chunks + manifest":  {f(func(e *Entry) { e.Manifest = id("m") })},
		"too many inline":    {f(func(e *Entry) { e.Chunks, e.Size = many, uint64(len(many)) })},
		"small manifest":     {f(func(e *Entry) { e.Chunks, e.Manifest, e.ManifestChunks = nil, id("m"), 3 })},
		"manifest, 64 refs":  {f(func(e *Entry) { e.Chunks, e.Manifest, e.ManifestChunks, e.Size = nil, id("m"), 64, 1000 })},
		"manifest, no count": {f(func(e *Entry) { e.Chunks, e.Manifest, e.Size = nil, id("m"), 1000 })},
		"refs > bytes":       {f(func(e *Entry) { e.Chunks, e.Manifest, e.ManifestChunks, e.Size = nil, id("m"), 1001, 1000 })},
		"count, no manifest": {f(func(e *Entry) { e.ManifestChunks = 65 })},
		"dir without tree":   {{Name: "d", Type: TypeDir, Totals: Stats{Dirs: 1}}},
		"dir without totals": {{Name: "d", Type: TypeDir, Subtree: id("t")}},
		"dir totals, 0 dirs": {{Name: "d", Type: TypeDir, Subtree: id("t"), Totals: Stats{Files: 1}}},
		"file with totals":   {f(func(e *Entry) { e.Totals = Stats{Dirs: 1} })},
		"dir with size":      {{Name: "d", Type: TypeDir, Subtree: id("t"), Totals: Stats{Dirs: 1}, Size: 1}},
		"dir with link id":   {{Name: "d", Type: TypeDir, Subtree: id("t"), Totals: Stats{Dirs: 1}, LinkID: 1, Nlink: 2}},
		"link id, no count":  {f(func(e *Entry) { e.LinkID = 1 })},
		"count, no link id":  {f(func(e *Entry) { e.Nlink = 2 })},
		"link count 1":       {f(func(e *Entry) { e.LinkID, e.Nlink = 1, 1 })},
		"file with subtree":  {f(func(e *Entry) { e.Subtree = id("t") })},
		"symlink no target":  {{Name: "l", Type: TypeSymlink}},
		"long target":        {{Name: "l", Type: TypeSymlink, Target: strings.Repeat("x", MaxTargetLen+1)}},
		"file with target":   {f(func(e *Entry) { e.Target = "x" })},
		"fifo with rdev":     {{Name: "p", Type: TypeFIFO, Rdev: 1}},
		"empty xattr name":   {f(func(e *Entry) { e.Xattrs = []Xattr{{"", nil}} })},
		"duplicate xattr":    {f(func(e *Entry) { e.Xattrs = []Xattr{{"user.a", nil}, {"user.a", nil}} })},
		"huge xattr value":   {f(func(e *Entry) { e.Xattrs = []Xattr{{"user.a", make([]byte, MaxXattrValueLen+1)}} })},
		"long xattr name":    {f(func(e *Entry) { e.Xattrs = []Xattr{{strings.Repeat("x", 256), nil}} })},
		"socket with chunks": {{Name: "s", Type: TypeSocket, Chunks: []ChunkRef{{id("c"), 1}}}},
		"loc past refs":      {f(func(e *Entry) { e.Locs = []Loc{{Ref: 1, Pack: id("p"), Len: 4}} })},
		"loc zero pack":      {f(func(e *Entry) { e.Locs = []Loc{{Ref: 0, Len: 4}} })},
		"loc zero length":    {f(func(e *Entry) { e.Locs = []Loc{{Ref: 0, Pack: id("p")}} })},
		"loc longer":         {f(func(e *Entry) { e.Locs = []Loc{{Ref: 0, Pack: id("p"), Len: 5}} })},
		"loc past pack":      {f(func(e *Entry) { e.Locs = []Loc{{Ref: 0, Pack: id("p"), Off: chunkstore.MaxPackSize - 3, Len: 4}} })},
		"loc of big chunk": {{Name: "f", Type: TypeFile, Size: 1 << 20, Chunks: []ChunkRef{{id("c"), 1 << 20}},
			Locs: []Loc{{Ref: 0, Pack: id("p"), Len: 100}}}},
		"locs unsorted": {{Name: "f", Type: TypeFile, Size: 2, Chunks: []ChunkRef{{id("c"), 1}, {id("d"), 1}},
			Locs: []Loc{{Ref: 1, Pack: id("p"), Len: 2}, {Ref: 0, Pack: id("p"), Len: 2}}}},
		"loc on a symlink": {{Name: "l", Type: TypeSymlink, Target: "x", Locs: []Loc{{Ref: 0, Pack: id("p"), Len: 2}}}},
		"manifest loc past": {f(func(e *Entry) {
			e.Chunks, e.Manifest, e.ManifestChunks, e.Size = nil, id("m"), 65, 1000
			e.Locs = []Loc{{Ref: 65, Pack: id("p"), Len: 2}}
		})},
	}
	for name, entries := range tests {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Encode(&Tree{Entries: entries}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Encode: err = %v, want ErrInvalid", err)
			}
		})
	}
}

// hand builds a tree object from raw entry bytes, for decode tests.
func hand(count uint64, entries ...[]byte) []byte {
	b := []byte{'t', formatVersion}
	b = binary.AppendUvarint(b, count)
	for _, e := range entries {
		b = append(b, e...)
	}
	return b
}

// rawFIFO is the encoding of a fifo entry named name with mode 0.
func rawFIFO(name string, tail ...byte) []byte {
	b := appendString(nil, name)
	return append(append(b, byte(TypeFIFO), 0, 0, 0, 0, 0), tail...)
}

func TestDecodeCorrupt(t *testing.T) {
	valid, _ := mustEncode(t, sampleTree())
	tests := map[string][]byte{
		"nil":              nil,
		"kind only":        {'t'},
		"bad kind":         {'x', 1, 0},
		"manifest kind":    {'m', formatVersion, 0},
		"version 1":        {'t', 1, 0},
		"version 3":        {'t', 3, 0},
		"no count":         {'t', formatVersion},
		"count too big":    hand(1000, rawFIFO("a")),
		"count too small":  hand(1, rawFIFO("a"), rawFIFO("b")),
		"non-minimal":      {'t', formatVersion, 0x80, 0x00},
		"unsorted":         hand(2, rawFIFO("b"), rawFIFO("a")),
		"duplicate":        hand(2, rawFIFO("a"), rawFIFO("a")),
		"empty name":       hand(1, rawFIFO("")),
		"slash":            hand(1, rawFIFO("a/b")),
		"dotdot":           hand(1, rawFIFO("..")),
		"unknown flag":     hand(1, append(appendString(nil, "a"), byte(TypeFIFO), 8, 0, 0, 0, 0)),
		"xattr flag, none": hand(1, append(appendString(nil, "a"), byte(TypeFIFO), flagXattrs, 0, 0, 0, 0, 0)),
		"link flag, zero":  hand(1, append(appendString(nil, "a"), byte(TypeFIFO), flagLink, 0, 0, 0, 0, 0, 2)),
		"link count 1":     hand(1, append(appendString(nil, "a"), byte(TypeFIFO), flagLink, 0, 0, 0, 0, 7, 1)),
		"link count > u32": hand(1, append(appendString(nil, "a"), byte(TypeFIFO), flagLink, 0, 0, 0, 0, 7, 0x80, 0x80, 0x80, 0x80, 0x10)),
		"manifest on fifo": hand(1, append(appendString(nil, "a"), byte(TypeFIFO), flagManifest, 0, 0, 0, 0)),
		"uid > 32 bits":    hand(1, append(appendString(nil, "a"), byte(TypeFIFO), 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0)),
		"trailing":         append(bytes.Clone(valid), 0),
		"xattr values":     hand(1, append(appendString(nil, "a"), byte(TypeFIFO), flagXattrs, 0, 0, 0, 0, 1, 1, 'x', 0xff, 0xff, 0x03)),
	}
	// Every truncation of a valid object is corrupt.
	for i := range len(valid) - 1 {
		tests[fmt.Sprintf("truncated at %d", i)] = valid[:i]
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if tr, err := Decode(data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode = %v, %v; want ErrCorrupt", tr, err)
			}
		})
	}
	if _, err := Decode(hand(2, rawFIFO("a"), rawFIFO("b"))); err != nil {
		t.Fatalf("the hand-built valid object: %v", err)
	}
}

func TestFind(t *testing.T) {
	tr := sampleTree()
	if e := tr.Find("fifo"); e == nil || e.Type != TypeFIFO {
		t.Fatalf("Find(fifo) = %v", e)
	}
	if e := tr.Find("nope"); e != nil {
		t.Fatalf("Find(nope) = %v", e)
	}
}

func TestKindOf(t *testing.T) {
	for data, want := range map[string]Kind{"t\x02": KindTree, "m\x02x": KindManifest, "c\x02": KindCommit} {
		if k, err := KindOf([]byte(data)); err != nil || k != want {
			t.Errorf("KindOf(%q) = %v, %v", data, k, err)
		}
	}
	for _, data := range []string{"", "t", "t\x01", "t\x03", "z\x02"} {
		if _, err := KindOf([]byte(data)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("KindOf(%q): err = %v", data, err)
		}
	}
}
