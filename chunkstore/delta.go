package chunkstore

import (
	"fmt"
	"math/bits"

	"github.com/klauspost/compress/zstd"
)

// A chunk cut anew around an in-place edit shares most of its bytes with
// the chunk it replaces: the part of the old chunk before the edit, or
// after it. Stored as a delta, it costs about the bytes that changed:
//
//	encDelta, the 32-byte ID of the base chunk, one zstd frame of the
//	plaintext compressed with the base's plaintext as a raw dictionary
//
// The ID is still the BLAKE3 of the plaintext and the chunk list is still
// the one chunking the whole file gives, so deduplication is unchanged; only
// the stored form differs. A base is never itself a delta (the uploader
// checks), so a read costs at most one more object, which the reader
// verifies against its own ID.
const encDelta byte = 2

// MetaDelta is the user metadata a delta is stored with (its base's ID):
// a ranged read that finds it knows the chunk has no outboard because it
// is a delta, not because its file is compressible (see cache.ReadRange).
const MetaDelta = "cloudfs-delta"

// DeltaMinSize is the smallest chunk worth storing as a delta.
const DeltaMinSize = 64 << 10

// deltaDictID names the one dictionary of a delta's zstd frame.
const deltaDictID = 1

// maxDeltaWindow bounds the zstd window a delta's frame may claim. The
// frames EncodeDelta makes are single-segment (their window is their
// content size, at most MaxChunkSize) and reach into the base as their
// dictionary beyond it; the decoder allows no window beyond its output
// bound anyway.
const maxDeltaWindow = MaxChunkSize

// IsDelta reports whether stored is a delta, and its base.
func IsDelta(stored []byte) (base ID, ok bool) {
	if len(stored) < 1+IDSize || stored[0] != encDelta {
		return ID{}, false
	}
	return ID(stored[1 : 1+IDSize]), true
}

// IsDeltaKind reports whether the first byte of a stored object (what a
// 1-byte ranged read returns) says it is a delta.
func IsDeltaKind(first byte) bool { return first == encDelta }

// EncodeDelta returns plain stored as a delta against base (whose ID is
// baseID), or nil when that does not save an eighth of otherLen, the size
// of its other stored form (Encode's), or plain is below DeltaMinSize. (A
// delta costs its reader the base too, usually cached already: the chunk
// beside it in the same file.)
func EncodeDelta(plain []byte, baseID ID, base []byte, otherLen int) ([]byte, error) {
	limit := otherLen - otherLen/8
	if len(plain) < DeltaMinSize || len(base) == 0 || limit <= 1+IDSize {
		return nil, nil
	}
	enc, err := zstd.NewWriter(nil,
		// The default level indexes a raw dictionary only in part; this
		// one finds the shared bytes (measured: 614 KiB of a 1.3 MiB
		// chunk sharing 700 KiB with its base, against 1 MiB).
		zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
		zstd.WithEncoderDictRaw(deltaDictID, base),
		zstd.WithWindowSize(deltaWindow(len(base)+len(plain))),
		zstd.WithEncoderCRC(false), // the ID checks the plaintext
		zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("delta encoder: %w", err)
	}
	defer enc.Close()
	out := make([]byte, 1+IDSize, limit)
	out[0] = encDelta
	copy(out[1:], baseID[:])
	out = enc.EncodeAll(plain, out)
	if len(out) >= limit {
		return nil, nil
	}
	return out, nil
}

// deltaWindow is the zstd window that reaches from the end of a frame of n
// bytes of dictionary and plaintext back to the dictionary's start.
func deltaWindow(n int) int {
	w := 1 << bits.Len(uint(n-1))
	return max(w, zstd.MinWindowSize)
}

// DecodeDelta returns the plaintext of a delta-stored chunk given its
// base's plaintext, and checks that it hashes to want. A failure is a
// wrapped ErrCorrupt naming want. Its memory is bounded whatever the delta
// says: a base above MaxChunkSize is refused, a frame that claims a window
// above maxDeltaWindow or an output above MaxChunkSize fails before any
// allocation for it, one that grows past MaxChunkSize stops there, and a
// copy from outside the base and the output so far is an error.
func DecodeDelta(stored []byte, want ID, base []byte) ([]byte, error) {
	if _, ok := IsDelta(stored); !ok {
		return nil, fmt.Errorf("chunk %s: not a delta: %w", want, ErrCorrupt)
	}
	if len(base) > MaxChunkSize {
		return nil, fmt.Errorf("chunk %s: delta base of %d bytes (max %d): %w", want, len(base), MaxChunkSize, ErrCorrupt)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderDictRaw(deltaDictID, base),
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		zstd.WithDecoderMaxWindow(maxDeltaWindow))
	if err != nil {
		return nil, fmt.Errorf("chunk %s: delta decoder: %w", want, err)
	}
	defer dec.Close()
	plain, err := dec.DecodeAll(stored[1+IDSize:], nil)
	if err != nil {
		return nil, fmt.Errorf("chunk %s: delta: %v: %w", want, err, ErrCorrupt)
	}
	if got := Hash(plain); got != want {
		return nil, fmt.Errorf("chunk %s: delta content hashes to %s: %w", want, got, ErrCorrupt)
	}
	return plain, nil
}
