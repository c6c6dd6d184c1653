package chunkstore

import (
	"context"
	"fmt"
)

// Packs hold small chunks several to an object, so that a tree of small
// files costs a few requests (and a few objects of the store's per-request
// price) instead of one per file.
//
// Terms:
//
//   - pack: an object under PacksPrefix whose bytes are the stored forms of
//     chunks of at most PackChunkMax bytes, one after another, with nothing
//     between or around them. Its ID is the BLAKE3-256 hash of those bytes.
//     A pack describes nothing itself: where each chunk is in it is in the
//     tree entries that use the chunk (index/tree Loc).
//   - location (Loc): a chunk's place in a pack, bytes [Off, Off+Len).
//     Reading a packed chunk is one ranged GET of its location, decoded and
//     verified against the chunk's ID like a chunk object; a location that
//     lies (a hostile tree) gives bytes that fail that check.
//   - packed chunk: one whose ID a location names. It is never stored as a
//     delta, and never the base of one: a delta's base must be found by its
//     ID alone (ChunkKey), on a machine that may not know any location.
const (
	// PackChunkMax is the largest chunk plaintext put in a pack: a chunk
	// of one outboard group (GroupSize), so that a packed chunk is
	// verified whole, as a one-group chunk object is.
	PackChunkMax = GroupSize
	// PackTarget is the size at which a pack is sealed and sent.
	PackTarget = 4 << 20
	// MaxPackSize bounds a pack object: PackTarget plus the one stored
	// form that crossed it.
	MaxPackSize = PackTarget + PackChunkMax + StoredOverhead
	// MaxPackedLen bounds a location's length: a packed chunk's stored
	// form.
	MaxPackedLen = PackChunkMax + StoredOverhead
)

// PackKey returns the key of pack id: "packs/ab/abcd…".
func PackKey(id ID) string { return fanKey(PacksPrefix, id) }

// Loc is where a packed chunk's stored form is: bytes [Off, Off+Len) of the
// pack object Pack.
type Loc struct {
	Pack ID
	Off  int64
	Len  int64
}

// Check reports whether l is a location a correct writer makes: a pack,
// 1..MaxPackedLen bytes inside MaxPackSize.
func (l Loc) Check() error {
	if l.Pack.IsZero() || l.Off < 0 || l.Len <= 0 || l.Len > MaxPackedLen || l.Off > MaxPackSize-l.Len {
		return fmt.Errorf("chunk location %d+%d in pack %s (want 1..%d bytes within %d): %w",
			l.Off, l.Len, l.Pack, MaxPackedLen, MaxPackSize, ErrCorrupt)
	}
	return nil
}

// GetPacked reads the chunk id at location l of s: one ranged GET,
// decoded and verified against id. A location that is out of bounds, a
// pack that ends early, or bytes that are not id's are errors matching
// ErrCorrupt; a missing pack is ErrNotFound.
func GetPacked(ctx context.Context, s Store, id ID, l Loc) ([]byte, error) {
	if err := l.Check(); err != nil {
		return nil, fmt.Errorf("chunk %s: %w", id, err)
	}
	key := PackKey(l.Pack)
	stored, err := GetRange(ctx, s, key, l.Off, l.Len)
	if err != nil {
		return nil, fmt.Errorf("get chunk %s from %s: %w", id, key, err)
	}
	if int64(len(stored)) != l.Len {
		return nil, fmt.Errorf("chunk %s: %s holds %d of its %d bytes at %d: %w", id, key, len(stored), l.Len, l.Off, ErrCorrupt)
	}
	plain, err := DecodeLimit(stored, id, PackChunkMax)
	if err != nil {
		return nil, fmt.Errorf("%s at %d: %w", key, l.Off, err)
	}
	return plain, nil
}
