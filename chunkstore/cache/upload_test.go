package cache

import (
	"bytes"
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"

	"github.com/cloudfs/cloudfs/chunkstore/internal/durable"
)

func TestUpload(t *testing.T) {
	f := newFixture(t, 10<<20)
	ctx := context.Background()
	var ids []chunkstore.ID
	var present int64
	for seed := range uint64(20) {
		data := storetest.Data(seed, 20*kib+int(seed))
		id := chunkstore.Hash(data)
		if err := f.c.PutDirty(id, data); err != nil {
			t.Fatal(err)
		}
		if seed < 5 { // the store has these already
			_, err := f.store.Put(ctx, chunkstore.ChunkKey(id), chunkstore.Encode(data), chunkstore.Cond{})
			if err != nil {
				t.Fatal(err)
			}
			present += int64(len(chunkstore.Encode(data)))
		}
		ids = append(ids, id)
	}
	counter := &inflight{Store: f.store}
	f.c.store = counter
	st, err := f.c.Upload(ctx, append(ids, ids[3])) // a duplicate is uploaded once
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploaded != 15 || st.Present != 5 || st.PresentBytes != present || st.UploadedBytes < 15*20*kib {
		t.Errorf("stats %+v, want 15 uploaded, 5 present (%d bytes)", st, present)
	}
	if p := counter.peak.Load(); p < 2 || p > DefaultUploadConcurrency {
		t.Errorf("peak upload concurrency %d, want 2..%d", p, DefaultUploadConcurrency)
	}
	if d := f.c.DirtyIDs(); len(d) != 0 {
		t.Errorf("%d chunks still dirty after upload", len(d))
	}
	for _, id := range ids {
		stored, _, err := f.store.Get(ctx, chunkstore.ChunkKey(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := chunkstore.Decode(stored, id); err != nil {
			t.Errorf("uploaded chunk: %v", err)
		}
	}
	// Everything is present now.
	puts := f.store.Calls(fault.OpPut)
	if st, err := f.c.Upload(ctx, ids); err != nil || st.Present != 20 || st.Uploaded != 0 || f.store.Calls(fault.OpPut) != puts {
		t.Errorf("second upload: %+v, %v", st, err)
	}
}

func TestUploadErrors(t *testing.T) {
	f := newFixture(t, 10<<20)
	ctx := context.Background()
	if _, err := f.c.Upload(ctx, []chunkstore.ID{chunkstore.Hash([]byte("nowhere"))}); !errors.Is(err, ErrNotCached) {
		t.Errorf("upload of a chunk in neither place: %v, want ErrNotCached", err)
	}
	data := storetest.Data(1, 10*kib)
	id := chunkstore.Hash(data)
	if err := f.c.PutDirty(id, data); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("503 slow down")
	f.store.FailPrefix(fault.OpPut, chunkstore.ChunksPrefix, boom)
	if _, err := f.c.Upload(ctx, []chunkstore.ID{id}); !errors.Is(err, boom) {
		t.Errorf("failing put: %v, want boom", err)
	}
	if d := f.c.DirtyIDs(); len(d) != 1 {
		t.Errorf("a failed upload cleaned the chunk: dirty %v", d)
	}
	f.store.Clear()
	if st, err := f.c.Upload(ctx, []chunkstore.ID{id}); err != nil || st.Uploaded != 1 {
		t.Errorf("retried upload: %+v, %v", st, err)
	}
	if err := f.c.MarkClean(chunkstore.Hash([]byte("x"))); !errors.Is(err, ErrNotCached) {
		t.Errorf("MarkClean of an uncached chunk: %v", err)
	}
}

func TestDiskFull(t *testing.T) {
	f := newFixture(t, 10<<20)
	for seed := range uint64(4) {
		id, data := f.chunk(seed, 100*kib)
		f.get(id, data)
	}
	full := 1
	f.c.writeFile = func(name string, data []byte, sync bool) error {
		if full > 0 {
			full--
			return syscall.ENOSPC
		}
		return durable.WriteFile(name, data, sync)
	}
	data := storetest.Data(9, 50*kib)
	id := chunkstore.Hash(data)
	if err := f.c.PutDirty(id, data); err != nil {
		t.Fatalf("PutDirty after one ENOSPC: %v", err)
	}
	if u := f.c.Usage(); u.Evicted == 0 || u.DirtyChunks != 1 {
		t.Errorf("usage %+v, want clean chunks evicted for the dirty one", u)
	}

	// Still full after evicting everything: a clear error.
	full = 1 << 30
	more := storetest.Data(10, 50*kib)
	err := f.c.PutDirty(chunkstore.Hash(more), more)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("PutDirty on a full disk: %v, want ENOSPC", err)
	}
	if u := f.c.Usage(); u.Chunks != 1 || u.DirtyChunks != 1 {
		t.Errorf("usage %+v, want only the first dirty chunk left", u)
	}
	// A fetch on a full disk still returns verified bytes, uncached.
	id2, data2 := f.chunk(11, 10*kib)
	got, err := f.c.Get(context.Background(), id2)
	if err != nil || !bytes.Equal(got, data2) {
		t.Errorf("get on a full disk: %v", err)
	}
}

// putSignal reports the key of every Put on puts.
type putSignal struct {
	chunkstore.Store
	puts chan string
}

func (s *putSignal) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	etag, err := s.Store.Put(ctx, key, data, cond)
	s.puts <- key
	return etag, err
}

// dirtyChunk puts n bytes of seed's test data into the cache as a dirty
// chunk (the store does not have it) and returns its id and bytes.
func (f *fixture) dirtyChunk(seed uint64, n int) (chunkstore.ID, []byte) {
	f.t.Helper()
	data := storetest.Data(seed, n)
	id := chunkstore.Hash(data)
	if err := f.c.PutDirty(id, data); err != nil {
		f.t.Fatal(err)
	}
	return id, data
}

func TestUploadsWhileAdding(t *testing.T) {
	f := newFixture(t, 10<<20)
	sig := &putSignal{Store: f.store, puts: make(chan string, 10)}
	f.c.store = sig
	a, dataA := f.dirtyChunk(1, 30*kib)
	b, dataB := f.dirtyChunk(2, 30*kib)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ups := f.c.StartUpload(ctx)
	if err := ups.Add(a, nil); err != nil {
		t.Fatal(err)
	}
	// The first chunk is put before the next is added or Wait is called.
	select {
	case key := <-sig.puts:
		if key != chunkstore.ChunkKey(a) {
			t.Fatalf("put %s, want %s", key, chunkstore.ChunkKey(a))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the chunk added was not put before Wait")
	}
	if err := ups.Add(b, dataB); err != nil {
		t.Fatal(err)
	}
	if err := ups.Add(a, dataA); err != nil { // added twice, put once
		t.Fatal(err)
	}
	st, err := ups.Wait()
	if err != nil || st.Uploaded != 2 || st.Present != 0 {
		t.Fatalf("Wait: %+v, %v; want 2 uploaded", st, err)
	}
	if ids := ups.IDs(); len(ids) != 2 || ids[0] != a || ids[1] != b {
		t.Errorf("IDs %v, want [%s %s]", ids, a, b)
	}
	if d := f.c.DirtyIDs(); len(d) != 0 {
		t.Errorf("dirty after upload: %v", d)
	}

	// Added after its context ended: recorded, not uploaded, and Wait
	// says why.
	c, _ := f.dirtyChunk(3, 30*kib)
	ups = f.c.StartUpload(ctx)
	cancel()
	if err := ups.Add(c, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Add after cancel: %v, want context.Canceled", err)
	}
	if _, err := ups.Wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel: %v, want context.Canceled", err)
	}
	if ids := ups.IDs(); len(ids) != 1 || ids[0] != c {
		t.Errorf("IDs %v, want [%s]", ids, c)
	}
	if _, err := f.store.Stat(context.Background(), chunkstore.ChunkKey(c)); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("chunk added after cancel is in the store: %v", err)
	}
	if d := f.c.DirtyIDs(); len(d) != 1 {
		t.Errorf("dirty %v, want the skipped chunk", d)
	}
}

func TestDiscardDirty(t *testing.T) {
	f := newFixture(t, 10<<20)
	did, _ := f.dirtyChunk(1, 20*kib)
	pid, pinned := f.dirtyChunk(2, 20*kib)
	if err := f.c.Pin(pid); err != nil {
		t.Fatal(err)
	}
	clean, dc := f.chunk(3, 20*kib)
	f.get(clean, dc)
	if n := f.c.DiscardDirty([]chunkstore.ID{did, pid, clean}); n != 1 {
		t.Errorf("DiscardDirty dropped %d, want 1 (the unpinned dirty chunk)", n)
	}
	if ids := f.c.DirtyIDs(); len(ids) != 1 || ids[0] != pid {
		t.Errorf("dirty %v, want the pinned chunk alone", ids)
	}
	if u := f.c.Usage(); u.Chunks != 2 || u.Used != 40*kib {
		t.Errorf("usage %+v, want the pinned and the clean chunk", u)
	}
	if !f.cached(pid, pinned) || !f.cached(clean, dc) {
		t.Error("DiscardDirty dropped a pinned or a clean chunk")
	}
}

// TestUploadSmallChunksPutDirectly: a chunk of at most directPutMax given
// with its plaintext costs one request, a conditional put, when the store
// lacks it; one the store holds is refused by that put and counted present
// with its stored size; a larger chunk is asked about (Stat) first.
func TestUploadSmallChunksPutDirectly(t *testing.T) {
	f := newFixture(t, 10<<20)
	ctx := context.Background()
	fresh := storetest.Data(1, 10*kib)
	held := storetest.Data(2, 10*kib)
	large := storetest.Data(3, directPutMax+1)
	heldStored := chunkstore.Encode(held)
	if _, err := f.store.Put(ctx, chunkstore.ChunkKey(chunkstore.Hash(held)), heldStored, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	f.store.Clear()
	statsBefore, putsBefore := f.store.Calls(fault.OpStat), f.store.Calls(fault.OpPut)
	u := f.c.StartUpload(ctx)
	for _, d := range [][]byte{fresh, held, large} {
		if err := u.Add(chunkstore.Hash(d), d); err != nil {
			t.Fatal(err)
		}
	}
	st, err := u.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.Uploaded != 2 || st.Present != 1 || st.PresentBytes != int64(len(heldStored)) {
		t.Fatalf("stats %+v: want 2 uploaded, 1 present of %d bytes", st, len(heldStored))
	}
	// fresh: a put; held: a refused put and a Stat; large: a Stat and a put.
	if s, p := f.store.Calls(fault.OpStat)-statsBefore, f.store.Calls(fault.OpPut)-putsBefore; s != 2 || p != 3 {
		t.Fatalf("%d Stats and %d puts, want 2 and 3", s, p)
	}
	for _, d := range [][]byte{fresh, held, large} {
		stored, _, err := f.store.Get(ctx, chunkstore.ChunkKey(chunkstore.Hash(d)))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := chunkstore.Decode(stored, chunkstore.Hash(d)); err != nil || !bytes.Equal(got, d) {
			t.Fatalf("stored chunk: %v", err)
		}
	}
}

// TestUploadConcurrencyBySize: small chunks given with their plaintext
// share a slot of the upload concurrency smallPerSlot ways, so more of
// them are in flight than there are slots; larger chunks take a slot each.
func TestUploadConcurrencyBySize(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		min, max int64
	}{
		{"small", 4 * kib, DefaultUploadConcurrency + 1, DefaultUploadConcurrency * smallPerSlot},
		{"large", directPutMax + 1, 2, DefaultUploadConcurrency},
	} {
		f := newFixture(t, 100<<20)
		counter := &inflight{Store: f.store}
		f.c.store = counter
		u := f.c.StartUpload(context.Background())
		for seed := range uint64(3 * DefaultUploadConcurrency * smallPerSlot / 2) {
			d := storetest.Data(seed, tc.size)
			if err := u.Add(chunkstore.Hash(d), d); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := u.Wait(); err != nil {
			t.Fatal(err)
		}
		if p := counter.peak.Load(); p < tc.min || p > tc.max {
			t.Errorf("%s chunks: %d puts in flight at most, want %d..%d", tc.name, p, tc.min, tc.max)
		}
	}
}
