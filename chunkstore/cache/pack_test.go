package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

// mapLocator is a Locator over a map, as the index is one.
type mapLocator struct {
	mu   sync.Mutex
	locs map[chunkstore.ID]chunkstore.Loc
}

func (m *mapLocator) locate(_ context.Context, id chunkstore.ID) (chunkstore.Loc, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.locs[id]
	return l, ok, nil
}

// TestUploadsPackSmallChunks: with a locator, small chunks added with
// their plaintext go in packs (one per PackTarget), large ones stay
// objects of their own; a chunk the locator places is counted present and
// not put; every packed chunk reads back from its pack, whole or by
// range, and bytes corrupted in a pack give ErrCorrupt, never data.
func TestUploadsPackSmallChunks(t *testing.T) {
	ml := &mapLocator{locs: map[chunkstore.ID]chunkstore.Loc{}}
	f := newFixture(t, 64<<20, WithLocator(ml.locate))
	ctx := context.Background()
	u := f.c.StartUpload(ctx)
	var small [][]byte
	for seed := range uint64(100) {
		data := storetest.Data(seed, 60*kib) // 6 MB in all: two packs
		small = append(small, data)
		if err := u.Add(chunkstore.Hash(data), data); err != nil {
			t.Fatal(err)
		}
	}
	large := storetest.Data(1000, chunkstore.PackChunkMax+1)
	if err := u.Add(chunkstore.Hash(large), large); err != nil {
		t.Fatal(err)
	}
	st, err := u.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.Packs != 2 || st.Packed != 100 || st.Uploaded != 101 {
		t.Fatalf("stats %+v, want 100 chunks in 2 packs and one more uploaded", st)
	}
	if _, err := f.store.Stat(ctx, chunkstore.ChunkKey(chunkstore.Hash(large))); err != nil {
		t.Fatalf("the large chunk is no object of its own: %v", err)
	}
	located := u.Located()
	if len(located) != 100 {
		t.Fatalf("%d chunks located, want 100", len(located))
	}
	for _, data := range small {
		id := chunkstore.Hash(data)
		if _, err := f.store.Stat(ctx, chunkstore.ChunkKey(id)); !errors.Is(err, chunkstore.ErrNotFound) {
			t.Fatalf("a packed chunk is also an object of its own: %v", err)
		}
	}
	ml.mu.Lock()
	ml.locs = located
	ml.mu.Unlock()

	// A fresh cache reads them from the packs.
	f.dir = t.TempDir()
	f.reopen(64<<20, WithLocator(ml.locate))
	for i, data := range small[:10] {
		id := chunkstore.Hash(data)
		if i%2 == 0 {
			f.get(id, data)
			continue
		}
		got, _, err := f.c.ReadRange(ctx, id, 1000, 4096)
		if err != nil || !bytes.Equal(got, data[1000:5096]) {
			t.Fatalf("ReadRange of a packed chunk: %d bytes, %v", len(got), err)
		}
	}

	// Known to the locator: present, nothing put.
	puts := f.store.Calls(0)
	u = f.c.StartUpload(ctx)
	if err := u.Add(chunkstore.Hash(small[50]), small[50]); err != nil {
		t.Fatal(err)
	}
	if st, err := u.Wait(); err != nil || st.Present != 1 || st.Uploaded != 0 || f.store.Calls(0) != puts {
		t.Fatalf("a located chunk: %+v, %v, %d store calls", st, err, f.store.Calls(0)-puts)
	}

	// A corrupted byte in a pack.
	id := chunkstore.Hash(small[20])
	l := located[id]
	key := chunkstore.PackKey(l.Pack)
	pack, _, err := f.store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	pack[l.Off+l.Len/2] ^= 1
	if _, err := f.store.Put(ctx, key, pack, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if got, err := f.c.Get(ctx, id); !errors.Is(err, chunkstore.ErrCorrupt) || got != nil {
		t.Fatalf("read of a corrupted packed chunk: %d bytes, %v", len(got), err)
	}
}
