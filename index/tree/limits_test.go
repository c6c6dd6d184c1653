package tree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// claiming returns an object of kind k whose count (after prefix) claims as
// many elements of minSize bytes as size bytes of zeros could hold, none of
// which decodes.
func claiming(k Kind, prefix []byte, minSize, size int) []byte {
	b := append([]byte{byte(k), formatVersion}, prefix...)
	b = binary.AppendUvarint(b, uint64(size/minSize))
	return append(b, make([]byte, size)...)
}

// TestDecodeGrowsWithEntries: a count in an object sizes no allocation;
// what is allocated follows what decodes.
func TestDecodeGrowsWithEntries(t *testing.T) {
	const size = 1 << 20
	data := claiming(KindTree, nil, minEntrySize, size)
	var err error
	// The decoder copies the object once (names share it).
	if n := allocated(func() { _, err = Decode(data) }); n > 2*size {
		t.Errorf("Decode of a tree claiming %d entries allocated %d bytes", size/minEntrySize, n)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode: %v, want ErrCorrupt", err)
	}

	data = claiming(KindManifest, nil, minRefSize, 4*size)
	if n := allocated(func() { _, err = DecodeManifest(data) }); n > size/4 {
		t.Errorf("DecodeManifest of a manifest claiming %d refs allocated %d bytes", 4*size/minRefSize, n)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeManifest: %v, want ErrCorrupt", err)
	}

	// A commit whose root xattr count claims the rest of the object.
	c, _, err := EncodeCommit(&Commit{Root: id("r"), Device: "d", Generation: 1, Stats: Stats{Dirs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	body := c[2 : len(c)-1] // without the header and the xattr count 0
	data = claiming(KindCommit, body, minXattrSize, chunkstore.MaxCommitSize-len(c))
	if n := allocated(func() { _, err = DecodeCommit(data) }); n > chunkstore.MaxCommitSize/4 {
		t.Errorf("DecodeCommit of a commit claiming %d xattrs allocated %d bytes", len(data)/minXattrSize, n)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("DecodeCommit: %v, want ErrCorrupt", err)
	}
}

// TestEncodeBounded: an encoder refuses what its decoder would refuse.
func TestEncodeBounded(t *testing.T) {
	value := make([]byte, MaxXattrValueLen)
	var xs []Xattr
	for i := 0; len(xs)*MaxXattrValueLen <= chunkstore.MaxCommitSize; i++ {
		xs = append(xs, Xattr{Name: fmt.Sprintf("user.%04d", i), Value: value})
	}
	_, _, err := EncodeCommit(&Commit{Root: id("r"), Device: "d", Generation: 1, Stats: Stats{Dirs: 1},
		RootAttrs: RootAttrs{Xattrs: xs}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("EncodeCommit of %d bytes of root xattrs: %v, want ErrInvalid", len(xs)*MaxXattrValueLen, err)
	}
	for len(xs)*MaxXattrValueLen <= chunkstore.MaxTreeSize {
		xs = append(xs, Xattr{Name: fmt.Sprintf("user.%04d", len(xs)), Value: value})
	}
	_, _, err = Encode(&Tree{Entries: []Entry{{Name: "f", Type: TypeFile, Xattrs: xs}}})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of a tree with %d bytes of xattrs: %v, want ErrInvalid", len(xs)*MaxXattrValueLen, err)
	}

	// No chunk is longer than MaxChunkSize, inline or in a manifest.
	long := []ChunkRef{{ID: id("c"), Length: chunkstore.MaxChunkSize + 1}}
	if _, _, err := Encode(&Tree{Entries: []Entry{{Name: "f", Type: TypeFile, Size: chunkstore.MaxChunkSize + 1, Chunks: long}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Encode of a chunk of MaxChunkSize+1 bytes: %v, want ErrInvalid", err)
	}
	ok := []ChunkRef{{ID: id("c"), Length: chunkstore.MaxChunkSize}}
	data, _, err := Encode(&Tree{Entries: []Entry{{Name: "f", Type: TypeFile, Size: chunkstore.MaxChunkSize, Chunks: ok}}})
	if err != nil {
		t.Fatal(err)
	}
	// The same tree with size and length one more (same varint widths):
	// ... size, count 1, ID, length.
	bad := append([]byte{}, data...)
	w := binary.PutUvarint(make([]byte, binary.MaxVarintLen64), chunkstore.MaxChunkSize+1)
	binary.PutUvarint(bad[len(bad)-w:], chunkstore.MaxChunkSize+1)
	binary.PutUvarint(bad[len(bad)-w-chunkstore.IDSize-1-w:], chunkstore.MaxChunkSize+1)
	if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Decode of a chunk of MaxChunkSize+1 bytes: %v, want ErrCorrupt", err)
	}
}

// TestMaxTreeEntries: a tree may hold MaxTreeEntries entries and no more,
// on both sides: the encoder refuses to write what the decoder refuses.
func TestMaxTreeEntries(t *testing.T) {
	big := &Tree{Entries: make([]Entry, MaxTreeEntries+1)}
	for i := range big.Entries {
		big.Entries[i] = Entry{Name: fmt.Sprintf("f%07d", i), Type: TypeFile, Mode: 0o644}
	}
	if _, _, err := Encode(big); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode of %d entries: %v, want ErrInvalid", len(big.Entries), err)
	}
	// The same entries as a decoder would meet them, from a writer
	// without the limit.
	b := binary.AppendUvarint([]byte{byte(KindTree), formatVersion}, uint64(len(big.Entries)))
	for i := range big.Entries {
		b = appendEntry(b, &big.Entries[i])
	}
	if _, err := Decode(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode of %d entries: %v, want ErrCorrupt", len(big.Entries), err)
	}
	big.Entries = big.Entries[:MaxTreeEntries]
	data, _, err := Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decode(data); err != nil || len(got.Entries) != MaxTreeEntries {
		t.Fatalf("Decode of %d entries: %v", MaxTreeEntries, err)
	}
}
