package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

const kib = 1 << 10

type fixture struct {
	t     *testing.T
	dir   string
	store *fault.Store
	c     *Cache
}

func newFixture(t *testing.T, limit int64, opts ...Option) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), store: fault.New(mem.New(t.Name()))}
	f.reopen(limit, opts...)
	return f
}

func (f *fixture) reopen(limit int64, opts ...Option) {
	f.t.Helper()
	c, err := Open(f.dir, limit, f.store, zaptest.NewLogger(f.t), opts...)
	if err != nil {
		f.t.Fatal(err)
	}
	f.c = c
}

// chunk puts a chunk of n bytes made from seed into the store.
func (f *fixture) chunk(seed uint64, n int) (chunkstore.ID, []byte) {
	f.t.Helper()
	data := storetest.Data(seed, n)
	id := chunkstore.Hash(data)
	if _, err := f.store.Put(context.Background(), chunkstore.ChunkKey(id), chunkstore.Encode(data), chunkstore.Cond{}); err != nil {
		f.t.Fatal(err)
	}
	return id, data
}

func (f *fixture) get(id chunkstore.ID, want []byte) {
	f.t.Helper()
	got, err := f.c.Get(context.Background(), id)
	if err != nil {
		f.t.Fatalf("get %s: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		f.t.Fatalf("get %s: wrong data", id)
	}
}

// cached reports whether id is served without a store call.
func (f *fixture) cached(id chunkstore.ID, want []byte) bool {
	f.t.Helper()
	before := f.store.Calls(fault.OpGet)
	f.get(id, want)
	return f.store.Calls(fault.OpGet) == before
}

func TestGetMissThenHit(t *testing.T) {
	f := newFixture(t, 10*kib*kib)
	id, data := f.chunk(1, 100*kib)
	f.get(id, data)
	if !f.cached(id, data) {
		t.Errorf("second get went to the store")
	}
	got, _ := f.c.Get(context.Background(), id)
	got[0] ^= 1 // the caller owns the result
	f.get(id, data)
	u := f.c.Usage()
	if u.Chunks != 1 || u.Used != 100*kib || u.Misses != 1 || u.Hits != 3 {
		t.Errorf("usage %+v", u)
	}
	if _, err := f.c.Get(context.Background(), chunkstore.Hash([]byte("absent"))); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("get of a chunk the store lacks: %v, want ErrNotFound", err)
	}
}

func TestEvictionOrder(t *testing.T) {
	f := newFixture(t, 300*kib)
	a, da := f.chunk(1, 100*kib)
	b, db := f.chunk(2, 100*kib)
	c, dc := f.chunk(3, 100*kib)
	d, dd := f.chunk(4, 100*kib)
	f.get(a, da)
	f.get(b, db)
	f.get(c, dc)
	f.get(a, da) // a is now more recent than b
	f.get(d, dd) // evicts b, the least recently used
	if u := f.c.Usage(); u.Used != 300*kib || u.Evicted != 1 {
		t.Errorf("usage %+v, want 300 KiB used after 1 eviction", u)
	}
	for _, x := range []struct {
		id   chunkstore.ID
		data []byte
	}{{a, da}, {c, dc}, {d, dd}} {
		if !f.cached(x.id, x.data) {
			t.Errorf("chunk %s was evicted", x.id)
		}
	}
	if f.cached(b, db) {
		t.Errorf("b was not evicted")
	}
	// A chunk larger than the whole cache is returned but not cached.
	big, dbig := f.chunk(5, 400*kib)
	f.get(big, dbig)
	if f.cached(big, dbig) || f.c.Usage().Used > 300*kib {
		t.Errorf("an oversized chunk was cached: %+v", f.c.Usage())
	}
}

func TestDirtyAndPinnedNeverEvicted(t *testing.T) {
	f := newFixture(t, 250*kib)
	p, dp := f.chunk(1, 100*kib)
	if err := f.c.Pin(p); err != nil {
		t.Fatal(err)
	}
	f.get(p, dp)
	dirty := storetest.Data(2, 100*kib)
	did := chunkstore.Hash(dirty)
	if err := f.c.PutDirty(did, dirty); err != nil {
		t.Fatal(err)
	}
	for seed := uint64(10); seed < 15; seed++ {
		id, data := f.chunk(seed, 40*kib)
		f.get(id, data)
	}
	if !f.cached(p, dp) {
		t.Errorf("pinned chunk was evicted")
	}
	if !f.cached(did, dirty) { // not in the store: a store call would fail
		t.Errorf("dirty chunk was evicted")
	}
	// Past the limit with only dirty and pinned bytes: still accepted.
	more := storetest.Data(3, 100*kib)
	if err := f.c.PutDirty(chunkstore.Hash(more), more); err != nil {
		t.Fatal(err)
	}
	u := f.c.Usage()
	if u.Used != 300*kib || u.DirtyChunks != 2 || u.DirtyBytes != 200*kib || u.PinnedBytes != 100*kib || u.Pins != 1 {
		t.Errorf("usage %+v", u)
	}
	// Unpinning makes it evictable again.
	if err := f.c.Unpin(p); err != nil {
		t.Fatal(err)
	}
	if u := f.c.Usage(); u.Used != 200*kib || u.Pins != 0 {
		t.Errorf("after unpin usage %+v, want the unpinned chunk evicted", u)
	}
	if err := f.c.PutDirty(did, storetest.Data(4, 10)); err == nil {
		t.Errorf("PutDirty with data that does not match the id succeeded")
	}
}

func TestRestartKeepsDirtyAndPins(t *testing.T) {
	f := newFixture(t, 1<<20)
	dirty := storetest.Data(1, 50*kib)
	did := chunkstore.Hash(dirty)
	if err := f.c.PutDirty(did, dirty); err != nil {
		t.Fatal(err)
	}
	pinned, dp := f.chunk(2, 30*kib)
	if err := f.c.Pin(pinned); err != nil {
		t.Fatal(err)
	}
	f.get(pinned, dp)
	clean, dc := f.chunk(3, 30*kib)
	f.get(clean, dc)
	if err := os.WriteFile(f.dir+"/tmp/leftover", []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	f.reopen(1 << 20)
	if ids := f.c.DirtyIDs(); len(ids) != 1 || ids[0] != did {
		t.Errorf("dirty after restart = %v, want [%s]", ids, did)
	}
	if !f.cached(did, dirty) || !f.cached(clean, dc) {
		t.Errorf("chunks lost in the restart")
	}
	if u := f.c.Usage(); u.Pins != 1 || u.Used != 110*kib || u.DirtyBytes != 50*kib {
		t.Errorf("usage after restart %+v", u)
	}
	if _, err := os.Stat(f.dir + "/tmp/leftover"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp files survive Open: %v", err)
	}
	// A smaller limit on reopen evicts the clean chunk, never the others.
	f.reopen(10 * kib)
	if u := f.c.Usage(); u.Chunks != 2 || u.Used != 80*kib {
		t.Errorf("usage after reopening smaller %+v, want the dirty and pinned chunks", u)
	}
}

func TestCorruptionRejected(t *testing.T) {
	for _, rule := range []fault.Rule{
		{Ops: fault.OpGet, Corrupt: true},
		{Ops: fault.OpGet, Truncate: true},
	} {
		f := newFixture(t, 1<<20)
		id, data := f.chunk(1, 64*kib)
		f.store.Add(rule)
		got, err := f.c.Get(context.Background(), id)
		if !errors.Is(err, chunkstore.ErrCorrupt) || got != nil || !strings.Contains(err.Error(), id.String()) {
			t.Errorf("%+v: %d bytes, %v; want ErrCorrupt naming %s", rule, len(got), err, id)
		}
		if u := f.c.Usage(); u.Chunks != 0 {
			t.Errorf("a corrupt chunk was cached: %+v", u)
		}
		f.store.Clear()
		f.get(id, data)
	}

	// A cached copy damaged on disk is dropped and fetched again.
	f := newFixture(t, 1<<20)
	id, data := f.chunk(2, 64*kib)
	f.get(id, data)
	name := f.c.path("clean", id)
	bad := append([]byte{}, data...)
	bad[10] ^= 1
	if err := os.WriteFile(name, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if f.cached(id, data) {
		t.Errorf("a damaged cached copy was served")
	}
	if !f.cached(id, data) {
		t.Errorf("the chunk was not cached again")
	}
}

func TestConcurrentMissesCoalesced(t *testing.T) {
	f := newFixture(t, 1<<20)
	id, data := f.chunk(1, 64*kib)
	f.store.Add(fault.Rule{Ops: fault.OpGet, Delay: 100 * time.Millisecond})
	var wg sync.WaitGroup
	results := make([][]byte, 10)
	errs := make([]error, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.c.Get(context.Background(), id)
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || !bytes.Equal(results[i], data) {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
	}
	results[0][0] ^= 1
	if !bytes.Equal(results[1], data) {
		t.Errorf("readers share one buffer")
	}
	if n := f.store.Calls(fault.OpGet); n != 1 {
		t.Errorf("%d store gets for 10 concurrent readers, want 1", n)
	}
}

func TestCancelledGetLeavesFetchRunning(t *testing.T) {
	f := newFixture(t, 1<<20)
	id, data := f.chunk(1, 64*kib)
	f.store.Add(fault.Rule{Ops: fault.OpGet, Delay: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := f.c.Get(ctx, id); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get past its deadline: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.c.Usage().Chunks == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !f.cached(id, data) {
		t.Errorf("the abandoned fetch did not cache the chunk")
	}
}

// inflight is a Store that records the largest number of concurrent calls.
type inflight struct {
	chunkstore.Store
	cur, peak atomic.Int64
}

func (s *inflight) enter() func() {
	n := s.cur.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	return func() { s.cur.Add(-1) }
}

func (s *inflight) Get(ctx context.Context, key string) ([]byte, string, error) {
	defer s.enter()()
	return s.Store.Get(ctx, key)
}

func (s *inflight) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	defer s.enter()()
	return s.Store.Put(ctx, key, data, cond)
}

// TestPutClean: a plaintext handed over is checked against its id, cached
// clean (evictable, never uploaded) and kept apart from the caller's
// buffer; a second hand-over of a cached chunk changes nothing.
func TestPutClean(t *testing.T) {
	f := newFixture(t, 10<<20)
	data := storetest.Data(7, 100*kib)
	id := chunkstore.Hash(data)
	if err := f.c.PutClean(id, data[1:]); err == nil {
		t.Fatal("PutClean of bytes that do not hash to the id succeeded")
	}
	buf := bytes.Clone(data)
	if err := f.c.PutClean(id, buf); err != nil {
		t.Fatal(err)
	}
	buf[0] ^= 1 // the caller reuses its buffer
	got, ok, err := f.c.Cached(id)
	if err != nil || !ok || !bytes.Equal(got, data) {
		t.Fatalf("Cached after PutClean: ok %v, %v, equal %v", ok, err, bytes.Equal(got, data))
	}
	if u := f.c.Usage(); u.Chunks != 1 || u.DirtyChunks != 0 || u.Misses != 0 {
		t.Fatalf("usage after PutClean: %+v, want one clean chunk and no fetch", u)
	}
	if err := f.c.PutClean(id, buf); err != nil {
		t.Fatalf("second PutClean of a cached chunk: %v", err)
	}
}

func TestPrefetch(t *testing.T) {
	f := newFixture(t, 10<<20)
	var ids []chunkstore.ID
	var datas [][]byte
	for seed := range uint64(12) {
		id, data := f.chunk(seed, 10*kib)
		ids = append(ids, id)
		datas = append(datas, data)
	}
	counter := &inflight{Store: f.store}
	c, err := Open(t.TempDir(), 10<<20, counter, zaptest.NewLogger(t), WithPrefetchConcurrency(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Prefetch(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	if p := counter.peak.Load(); p < 2 || p > 3 {
		t.Errorf("peak concurrency %d, want 2..3", p)
	}
	before := f.store.Calls(fault.OpGet)
	for i, id := range ids {
		got, err := c.Get(context.Background(), id)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Fatalf("get %d after prefetch: %v", i, err)
		}
	}
	if n := f.store.Calls(fault.OpGet) - before; n != 0 {
		t.Errorf("%d store gets after prefetch, want 0", n)
	}
	missing := chunkstore.Hash([]byte("missing"))
	if err := c.Prefetch(context.Background(), []chunkstore.ID{ids[0], missing}); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("prefetch of a missing chunk: %v, want ErrNotFound", err)
	}
}
