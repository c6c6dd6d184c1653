package chunkstore

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the stored-form decoder: as a stored
// object they decode only to plaintext hashing to the ID asked for, within
// the bound asked for, and never panic; as a plaintext they round-trip
// through Encode within StoredOverhead.
func FuzzDecode(f *testing.F) {
	text := bytes.Repeat([]byte("stored form "), 100)
	for _, plain := range [][]byte{nil, []byte("a"), text, randomData(1, 4096)} {
		stored := Encode(plain)
		f.Add(stored)
		f.Add(stored[:len(stored)/2]) // truncated
		bad := bytes.Clone(stored)
		bad[len(bad)-1] ^= 0x55 // corrupt
		f.Add(bad)
	}
	f.Add([]byte{encDelta})
	f.Add([]byte{9, 1, 2})
	f.Add(append([]byte{encZstd}, zstdFrame(1<<40)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if plain, err := Decode(data, ID{}); err == nil || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode with the zero ID: %d bytes, %v; want ErrCorrupt", len(plain), err)
		}
		if len(data) > 0 && data[0] == encRaw {
			const limit = 100
			plain, err := DecodeLimit(data, Hash(data[1:]), limit)
			if (err == nil) != (len(data)-1 <= limit) || err == nil && !bytes.Equal(plain, data[1:]) {
				t.Fatalf("raw of %d bytes under %d: %d bytes, %v", len(data)-1, limit, len(plain), err)
			}
		}
		stored := Encode(data)
		if len(stored) > len(data)+StoredOverhead {
			t.Fatalf("Encode of %d bytes stores %d", len(data), len(stored))
		}
		if plain, err := Decode(stored, Hash(data)); err != nil || !bytes.Equal(plain, data) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(data), len(plain), err)
		}
	})
}

// FuzzDecodeDelta feeds arbitrary frames and bases to the delta decoder: a
// wrong ID is always ErrCorrupt, never a panic, whatever the frame claims;
// and a delta EncodeDelta makes of a plaintext built from the input decodes
// back to it.
func FuzzDecodeDelta(f *testing.F) {
	base, plain := editedPair()
	base, plain = base[:100<<10], append(bytes.Clone(base[:50<<10]), plain[700<<10:760<<10]...)
	d, err := EncodeDelta(plain, Hash(base), base, 1+len(plain))
	if err != nil || d == nil {
		f.Fatalf("EncodeDelta: %v, %v", d == nil, err)
	}
	payload := d[1+IDSize:]
	f.Add(payload, []byte("base"))
	f.Add(payload[:len(payload)/2], []byte("base"))
	f.Add(zstdFrame(1<<40), []byte{})
	f.Add(zstdFrame(3), []byte("xyz"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, frame, b []byte) {
		stored := append(append([]byte{encDelta}, make([]byte, IDSize)...), frame...)
		if out, err := DecodeDelta(stored, ID{}, b); err == nil || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeDelta with the zero ID: %d bytes, %v; want ErrCorrupt", len(out), err)
		}
		if len(b) == 0 || len(frame) == 0 {
			return
		}
		// A plaintext sharing the base's bytes, long enough for a delta.
		base := bytes.Repeat(b, DeltaMinSize/len(b)+1)
		plain := append(bytes.Clone(base[:DeltaMinSize/2]), bytes.Repeat(frame, DeltaMinSize/(2*len(frame))+1)...)
		d, err := EncodeDelta(plain, Hash(base), base, 1+len(plain))
		if err != nil {
			t.Fatal(err)
		}
		if d == nil {
			return
		}
		if got, err := DecodeDelta(d, Hash(plain), base); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("delta round trip: %d bytes, %v", len(got), err)
		}
	})
}

// FuzzVerifyGroups feeds arbitrary outboards, sizes, ranges and flipped
// bytes to VerifyGroups for a real chunk: it never panics, and it accepts
// only the chunk's own bytes at their own offset. (A size claim that is
// wrong but gives the same tree of groups verifies too: the bytes are the
// chunk's all the same.)
func FuzzVerifyGroups(f *testing.F) {
	plain := randomData(41, 3*GroupSize+1000)
	id := Hash(plain)
	_, meta := EncodeChunk(plain)
	good := meta[MetaOutboard]
	size := int64(len(plain))
	f.Add(good, size, int64(0), uint32(GroupSize), uint32(0))
	f.Add(good, size, int64(3*GroupSize), uint32(1000), uint32(0))
	f.Add(good, size, int64(GroupSize), uint32(2*GroupSize), uint32(77))
	f.Add(good[:len(good)/2], size, int64(0), uint32(GroupSize), uint32(0))
	f.Add(good, size+1, int64(0), uint32(GroupSize), uint32(0))
	f.Add("g18:!!", int64(-1), int64(-GroupSize), uint32(5), uint32(1))
	f.Add(outboardPrefix, int64(1<<62), int64(0), uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, v string, size, start int64, n, flip uint32) {
		var data []byte
		if start >= 0 && start <= int64(len(plain)) {
			data = bytes.Clone(plain[start:min(start+int64(n), int64(len(plain)))])
		}
		flipped := flip != 0 && len(data) > 0
		if flipped {
			data[int(flip)%len(data)] ^= byte(flip>>8) | 1
		}
		ok, err := VerifyGroups(id, size, Meta{MetaOutboard: v}, start, data)
		if ok && (err != nil || flipped || numGroups(size) != numGroups(int64(len(plain))) || data == nil) {
			t.Fatalf("accepted %d bytes at %d of a chunk of %d (size %d, flipped %v): %v", len(data), start, len(plain), size, flipped, err)
		}
		if ok && !bytes.Equal(data, plain[start:start+int64(len(data))]) {
			t.Fatal("accepted bytes that are not the chunk's")
		}
	})
}
