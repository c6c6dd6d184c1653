package cache

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

// putChunk stores data as the uploader does (with its outboard).
func (f *fixture) putChunk(data []byte) chunkstore.ID {
	f.t.Helper()
	id := chunkstore.Hash(data)
	stored, meta := chunkstore.EncodeChunk(data)
	if _, err := chunkstore.PutMeta(context.Background(), f.store, chunkstore.ChunkKey(id), stored, chunkstore.Cond{}, meta); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) readRange(id chunkstore.ID, off, n int64, want []byte) bool {
	f.t.Helper()
	got, noOutboard, err := f.c.ReadRange(context.Background(), id, off, n)
	if err != nil {
		f.t.Fatalf("ReadRange(%d, %d): %v", off, n, err)
	}
	if !bytes.Equal(got, want) {
		f.t.Fatalf("ReadRange(%d, %d): %d bytes, not the chunk's", off, n, len(got))
	}
	return noOutboard
}

func TestReadRangeFetchesGroups(t *testing.T) {
	f := newFixture(t, 64<<20)
	data := storetest.Data(1, 1<<20+5000)
	id := f.putChunk(data)
	// Spanning two groups, then the short tail.
	off := int64(chunkstore.GroupSize - 100)
	if f.readRange(id, off, 4096, data[off:off+4096]) {
		t.Fatal("a chunk with an outboard reported none")
	}
	if f.readRange(id, 1<<20+4000, 4096, data[1<<20+4000:]) {
		t.Fatal("a chunk with an outboard reported none")
	}
	if g, r := f.store.Calls(fault.OpGet), f.store.Calls(fault.OpGetRange); g != 0 || r != 2 {
		t.Fatalf("store calls: %d whole gets, %d ranged; want 0 and 2", g, r)
	}
	u := f.c.Usage()
	if u.Ranged != 2 || u.RangedBytes != 2*chunkstore.GroupSize+(1<<20+5000-4*chunkstore.GroupSize) || u.Chunks != 0 {
		t.Fatalf("usage after two ranged reads: %+v", u)
	}
	// Once cached whole, a ranged read is served from the cache.
	f.get(id, data)
	before := f.store.Calls(fault.OpAll)
	f.readRange(id, 10, 10, data[10:20])
	if f.store.Calls(fault.OpAll) != before {
		t.Fatal("a cached chunk was fetched again")
	}
}

func TestReadRangeWithoutOutboard(t *testing.T) {
	f := newFixture(t, 64<<20)
	text := bytes.Repeat([]byte("compressible "), 100_000)
	id := f.putChunk(text)
	if !f.readRange(id, 500_000, 100, text[500_000:500_100]) {
		t.Fatal("a compressed chunk was not reported as having no outboard")
	}
	if g := f.store.Calls(fault.OpGet); g != 1 {
		t.Fatalf("%d whole gets, want 1", g)
	}
	// Stored by an older cloudfs: raw, but no outboard.
	data := storetest.Data(2, 1<<20)
	old, _ := f.chunk(2, 1<<20)
	if !f.readRange(old, 7, 9, data[7:16]) {
		t.Fatal("a chunk without metadata was not reported as having no outboard")
	}
}

func TestReadRangeCorrupt(t *testing.T) {
	f := newFixture(t, 64<<20)
	data := storetest.Data(3, 1<<20)
	id := f.putChunk(data)
	f.store.Add(fault.Rule{Ops: fault.OpGetRange, Corrupt: true, Times: 1})
	_, _, err := f.c.ReadRange(context.Background(), id, 300_000, 4096)
	if !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("ReadRange of a corrupted group: %v, want ErrCorrupt", err)
	}
	// The fault was once: the next read succeeds.
	f.readRange(id, 300_000, 4096, data[300_000:304_096])
}

// TestReadRangeOneGroup: a raw chunk of one group has no outboard; the
// ranged read of its only group is all of it, verified against the ID.
func TestReadRangeOneGroup(t *testing.T) {
	f := newFixture(t, 64<<20)
	data := storetest.Data(5, 200<<10)
	id := f.putChunk(data)
	if f.readRange(id, 1000, 4096, data[1000:5096]) {
		t.Fatal("a chunk of one group advised reading its file whole")
	}
	if g, r := f.store.Calls(fault.OpGet), f.store.Calls(fault.OpGetRange); g != 0 || r != 1 {
		t.Fatalf("store calls: %d whole gets, %d ranged; want 0 and 1", g, r)
	}
	// A corrupted one is fetched whole, and then fails verification.
	f.store.Add(fault.Rule{Ops: fault.OpGetRange | fault.OpGet, Corrupt: true})
	other := f.putChunk(storetest.Data(6, 200<<10))
	if _, _, err := f.c.ReadRange(context.Background(), other, 0, 10); !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Fatalf("corrupted chunk of one group: %v, want ErrCorrupt", err)
	}
}
