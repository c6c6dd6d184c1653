package chunkstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func randBytes(n int, seed uint64) []byte { return randomData(seed, n) }

// TestOutboardVerifies checks, for sizes around every tree shape, that the
// group CVs combine to the BLAKE3 hash (zeebo/blake3) and that each group
// verifies on its own, and the whole tail at once.
func TestOutboardVerifies(t *testing.T) {
	sizes := []int{GroupSize + 1, GroupSize + 1024, 2 * GroupSize, 2*GroupSize + 1, 3*GroupSize - 5,
		1 << 20, 1<<20 + 12345, 5*GroupSize + 1023, 8 << 20, 8<<20 - 1}
	for _, size := range sizes {
		plain := randBytes(size, uint64(size))
		stored, meta := EncodeChunk(plain)
		if stored[0] != encRaw {
			t.Fatalf("size %d: random bytes not stored raw", size)
		}
		if meta == nil {
			t.Fatalf("size %d: no outboard", size)
		}
		if len(meta[MetaOutboard]) > 1500 {
			t.Fatalf("size %d: outboard of %d bytes exceeds S3's metadata limit", size, len(meta[MetaOutboard]))
		}
		id := Hash(plain)
		for g := int64(0); g < int64(size); g += GroupSize {
			end := min(g+GroupSize, int64(size))
			ok, err := VerifyGroups(id, int64(size), meta, g, plain[g:end])
			if !ok || err != nil {
				t.Fatalf("size %d group at %d: ok %v, %v", size, g, ok, err)
			}
		}
		ok, err := VerifyGroups(id, int64(size), meta, GroupSize, plain[GroupSize:])
		if !ok || err != nil {
			t.Fatalf("size %d, all groups after the first: ok %v, %v", size, ok, err)
		}
	}
}

func TestOutboardRejects(t *testing.T) {
	const size = 1<<20 + 777
	plain := randBytes(size, 1)
	id := Hash(plain)
	_, meta := EncodeChunk(plain)
	corrupt := func(name string, ok bool, err error) {
		t.Helper()
		if ok || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: ok %v, err %v; want ErrCorrupt", name, ok, err)
		}
	}

	flipped := bytes.Clone(plain[GroupSize : 2*GroupSize])
	flipped[100] ^= 1
	ok, err := VerifyGroups(id, size, meta, GroupSize, flipped)
	corrupt("flipped byte", ok, err)

	ok, err = VerifyGroups(id, size, meta, GroupSize, plain[GroupSize:2*GroupSize-1])
	corrupt("short group", ok, err)

	// A size with another number of groups (one with the same number
	// changes nothing: every byte returned is checked at its place).
	ok, err = VerifyGroups(id, size+GroupSize, meta, GroupSize, plain[GroupSize:2*GroupSize])
	corrupt("wrong size", ok, err)

	other := Hash([]byte("other"))
	ok, err = VerifyGroups(other, size, meta, 0, plain[:GroupSize])
	corrupt("other ID", ok, err)

	v := []byte(meta[MetaOutboard])
	i := len(outboardPrefix) + 10
	v[i] = map[bool]byte{true: 'B', false: 'A'}[v[i] == 'A']
	ok, err = VerifyGroups(id, size, Meta{MetaOutboard: string(v)}, 0, plain[:GroupSize])
	corrupt("tampered CV", ok, err)

	ok, err = VerifyGroups(id, size, Meta{MetaOutboard: outboardPrefix + "!!"}, 0, plain[:GroupSize])
	corrupt("bad base64", ok, err)

	// No outboard, or one of another format: read the chunk whole.
	for _, m := range []Meta{nil, {}, {MetaOutboard: strings.Replace(meta[MetaOutboard], outboardPrefix, "g16:", 1)}} {
		if ok, err := VerifyGroups(id, size, m, 0, plain[:GroupSize]); ok || err != nil {
			t.Fatalf("meta %.20v: ok %v, err %v; want neither", m, ok, err)
		}
	}
}

func TestEncodeChunkWithoutOutboard(t *testing.T) {
	for name, plain := range map[string][]byte{
		"one group":  randBytes(GroupSize, 2),
		"compresses": bytes.Repeat([]byte("cloudfs "), 1<<17),
		"over 8 MiB": randBytes(8<<20+1, 3),
		"tiny":       []byte("x"),
	} {
		stored, meta := EncodeChunk(plain)
		if meta != nil {
			t.Errorf("%s: outboard %q", name, meta[MetaOutboard][:20])
		}
		if got, err := Decode(stored, Hash(plain)); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%s: round trip failed: %v", name, err)
		}
	}
}

// TestEncodeChunkFrom: encoding a plaintext held after a free header byte
// gives what EncodeChunk gives, and a chunk stored raw is that buffer
// itself, not a copy.
func TestEncodeChunkFrom(t *testing.T) {
	for name, plain := range map[string][]byte{
		"raw with outboard": randBytes(1<<20+7, 4),
		"raw, one group":    randBytes(1000, 5),
		"compresses":        bytes.Repeat([]byte("cloudfs "), 1<<17),
		"empty":             {},
	} {
		want, wantMeta := EncodeChunk(plain)
		buf := append([]byte{0xff}, plain...)
		got, meta := EncodeChunkFrom(buf)
		if !bytes.Equal(got, want) || len(meta) != len(wantMeta) || meta[MetaOutboard] != wantMeta[MetaOutboard] {
			t.Errorf("%s: EncodeChunkFrom differs from EncodeChunk (%d vs %d bytes)", name, len(got), len(want))
		}
		if raw := want[0] == encRaw; raw != (&got[0] == &buf[0]) {
			t.Errorf("%s: stored raw %v, but the result is the buffer itself: %v", name, raw, &got[0] == &buf[0])
		}
	}
}

func TestGroupSpan(t *testing.T) {
	for _, c := range []struct{ off, n, start, end int64 }{
		{0, 1, 0, GroupSize},
		{GroupSize - 1, 2, 0, 2 * GroupSize},
		{GroupSize + 4096, 4096, GroupSize, 2 * GroupSize},
		{3 * GroupSize, GroupSize, 3 * GroupSize, 4 * GroupSize},
	} {
		if s, e := GroupSpan(c.off, c.n); s != c.start || e != c.end {
			t.Errorf("GroupSpan(%d, %d) = %d, %d; want %d, %d", c.off, c.n, s, e, c.start, c.end)
		}
	}
}
