package chunkstore

import (
	"bytes"
	"errors"
	"testing"
)

// editedPair returns an old chunk and its successor after an in-place
// edit: the old chunk's first 700 KiB, then 600 KiB of new bytes.
func editedPair() (base, plain []byte) {
	base = randBytes(1300<<10, 21)
	plain = append(bytes.Clone(base[:700<<10]), randBytes(600<<10, 22)...)
	return base, plain
}

func TestDeltaRoundTrip(t *testing.T) {
	base, plain := editedPair()
	baseID, id := Hash(base), Hash(plain)
	d, err := EncodeDelta(plain, baseID, base, 1+len(plain))
	if err != nil || d == nil {
		t.Fatalf("EncodeDelta: %v, %v", d == nil, err)
	}
	if len(d) > 650<<10 {
		t.Fatalf("delta of a chunk with 600 KiB of new bytes is %d bytes", len(d))
	}
	if b, ok := IsDelta(d); !ok || b != baseID {
		t.Fatalf("IsDelta = %v, %v", b, ok)
	}
	got, err := DecodeDelta(d, id, base)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("DecodeDelta: %v", err)
	}
	if _, err := Decode(d, id); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decode of a delta without its base: %v, want ErrCorrupt", err)
	}
	// The wrong base, or a flipped byte: ErrCorrupt, never wrong bytes.
	other := randBytes(len(base), 23)
	if _, err := DecodeDelta(d, id, other); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeDelta with another base: %v, want ErrCorrupt", err)
	}
	bad := bytes.Clone(d)
	bad[len(bad)/2] ^= 1
	if _, err := DecodeDelta(bad, id, base); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeDelta of a flipped byte: %v, want ErrCorrupt", err)
	}
}

func TestDeltaNotWorthIt(t *testing.T) {
	base := randBytes(1<<20, 24)
	plain := randBytes(1<<20, 25) // nothing shared
	if d, err := EncodeDelta(plain, Hash(base), base, 1+len(plain)); d != nil || err != nil {
		t.Fatalf("delta of unrelated bytes: %d bytes, %v; want none", len(d), err)
	}
	// A chunk whose other form is tinier than a delta's header.
	zeros := make([]byte, 1<<20)
	for _, other := range []int{len(Encode(zeros)), 20, 1} {
		if d, err := EncodeDelta(zeros, Hash(base), base, other); d != nil || err != nil {
			t.Fatalf("delta of a chunk of zeros stored in %d bytes: %d bytes, %v; want none", other, len(d), err)
		}
	}
	small := base[:DeltaMinSize-1]
	if d, err := EncodeDelta(small, Hash(base), base, 1+len(small)); d != nil || err != nil {
		t.Fatalf("delta of a small chunk: %d bytes, %v; want none", len(d), err)
	}
}
