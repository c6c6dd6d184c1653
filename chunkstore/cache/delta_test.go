package cache

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

// uploadEdited stores a 1.3 MiB chunk whole, then uploads a chunk that
// keeps its first 700 KiB with the first as its base hint.
func (f *fixture) uploadEdited(seed uint64) (base []byte, baseID chunkstore.ID, edited []byte, id chunkstore.ID) {
	f.t.Helper()
	base = storetest.Data(seed, 1300<<10)
	baseID = f.putChunk(base)
	edited = append(bytes.Clone(base[:700<<10]), storetest.Data(seed+1, 600<<10)...)
	id = chunkstore.Hash(edited)
	if err := f.c.PutDirty(id, edited); err != nil {
		f.t.Fatal(err)
	}
	f.c.SetBase(id, baseID)
	if _, err := f.c.Upload(context.Background(), []chunkstore.ID{id}); err != nil {
		f.t.Fatal(err)
	}
	return base, baseID, edited, id
}

// TestDeltaUpload: a dirty chunk with a base hint is stored as a delta,
// read back through a fresh cache with its base, never chained, and a bad
// base is ErrCorrupt.
func TestDeltaUpload(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 64<<20)
	base, baseID, edited, id := f.uploadEdited(1)
	stored, _, err := f.store.Get(ctx, chunkstore.ChunkKey(id))
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := chunkstore.IsDelta(stored); !ok || b != baseID || len(stored) > 650<<10 {
		t.Fatalf("stored %d bytes, delta %v of %s; want a delta of the base under 650 KiB", len(stored), ok, b)
	}
	if d := f.c.Usage().Deltas; d != 1 {
		t.Fatalf("Usage().Deltas = %d, want 1", d)
	}

	// A chunk whose base is a delta is stored whole: reads stay one base deep.
	again := append(bytes.Clone(edited[:900<<10]), storetest.Data(3, 300<<10)...)
	againID := chunkstore.Hash(again)
	if err := f.c.PutDirty(againID, again); err != nil {
		t.Fatal(err)
	}
	f.c.SetBase(againID, id)
	if _, err := f.c.Upload(ctx, []chunkstore.ID{againID}); err != nil {
		t.Fatal(err)
	}
	if s, _, err := f.store.Get(ctx, chunkstore.ChunkKey(againID)); err != nil || len(s) != 1+len(again) {
		t.Fatalf("chunk over a delta base: %d bytes stored, %v; want it whole (%d)", len(s), err, 1+len(again))
	}

	// A fresh cache reads the delta through its base.
	g := &fixture{t: t, dir: t.TempDir(), store: f.store}
	g.reopen(64 << 20)
	g.get(id, edited)
	if !g.cached(baseID, base) {
		t.Fatal("the base fetched for a delta was not cached")
	}

	// A base that does not match its ID: the delta is ErrCorrupt.
	bad := bytes.Clone(base)
	bad[5] ^= 1
	if _, err := f.store.Put(ctx, chunkstore.ChunkKey(baseID), chunkstore.Encode(bad), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	h := &fixture{t: t, dir: t.TempDir(), store: f.store}
	h.reopen(64 << 20)
	if _, err := h.c.Get(ctx, id); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("delta over a corrupt base: %v, want ErrCorrupt", err)
	}
}

// TestReadRangeOfDelta: a ranged read of a delta reads it whole without
// telling the caller to read the rest of the file whole.
func TestReadRangeOfDelta(t *testing.T) {
	f := newFixture(t, 64<<20)
	_, _, edited, id := f.uploadEdited(4)
	g := &fixture{t: t, dir: t.TempDir(), store: f.store}
	g.reopen(64 << 20)
	if g.readRange(id, 800<<10, 4096, edited[800<<10:800<<10+4096]) {
		t.Fatal("a delta made ReadRange advise reading the whole file whole")
	}
}

// TestReadRangeOfShortDelta: a delta shorter than the range asked of it
// (so the reply is 416 and carries no metadata) advises nothing either.
func TestReadRangeOfShortDelta(t *testing.T) {
	f := newFixture(t, 64<<20)
	base := storetest.Data(7, 1300<<10)
	baseID := f.putChunk(base)
	edited := bytes.Clone(base)
	edited[1200<<10] ^= 1 // the delta is a few hundred bytes
	id := chunkstore.Hash(edited)
	if err := f.c.PutDirty(id, edited); err != nil {
		t.Fatal(err)
	}
	f.c.SetBase(id, baseID)
	if _, err := f.c.Upload(context.Background(), []chunkstore.ID{id}); err != nil {
		t.Fatal(err)
	}
	g := &fixture{t: t, dir: t.TempDir(), store: f.store}
	g.reopen(64 << 20)
	off := int64(1100 << 10)
	if g.readRange(id, off, 4096, edited[off:off+4096]) {
		t.Fatal("a short delta made ReadRange advise reading the whole file whole")
	}
}
