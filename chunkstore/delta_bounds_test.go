package chunkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// zstdFrame returns a zstd frame header claiming fcs bytes of content
// (single segment: the window is the content), then one raw block of one
// byte.
func zstdFrame(fcs uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	b = append(b, 3<<6|1<<5) // 8-byte content size, single segment
	b = binary.LittleEndian.AppendUint64(b, fcs)
	return append(b, 9, 0, 0, 'x') // last raw block of 1 byte
}

// TestDeltaBounded: a delta claiming a huge output, or copying from outside
// its base, is ErrCorrupt and costs no allocation of its claims.
func TestDeltaBounded(t *testing.T) {
	base := randBytes(1<<20, 31)
	stored := append(append([]byte{encDelta}, make([]byte, IDSize)...), zstdFrame(1<<40)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeDelta(stored, ID{}, base)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("delta claiming 1 TiB: %v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("delta claiming 1 TiB allocated %d bytes", got)
	}
	// Copies reaching 1 MiB back, given a base of 1 KiB.
	plain := append(bytes.Clone(base[:700<<10]), randBytes(600<<10, 32)...)
	d, err := EncodeDelta(plain, Hash(base), base, 1+len(plain))
	if err != nil || d == nil {
		t.Fatalf("EncodeDelta: %v, %v", d == nil, err)
	}
	if _, err := DecodeDelta(d, Hash(plain), base[:1<<10]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("delta copying from outside its base: %v, want ErrCorrupt", err)
	}
	if _, err := DecodeDelta(d, Hash(plain), make([]byte, MaxChunkSize+1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("delta with a base of MaxChunkSize+1 bytes: %v, want ErrCorrupt", err)
	}
}

// TestDeltaWindowReadable: a delta whose base and plaintext together pass
// the reader's window bound still decodes (its frame claims only its
// content as window).
func TestDeltaWindowReadable(t *testing.T) {
	base := make([]byte, MaxChunkSize/2)
	plain := make([]byte, MaxChunkSize/2+1)
	plain[len(plain)-1] = 1
	d, err := EncodeDelta(plain, Hash(base), base, 1+len(plain))
	if err != nil {
		t.Fatal(err)
	}
	if d == nil {
		t.Fatal("no delta of a chunk equal to its base but one byte")
	}
	if got, err := DecodeDelta(d, Hash(plain), base); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("a delta of %d bytes against %d EncodeDelta made does not decode: %v", len(plain), len(base), err)
	}
}
