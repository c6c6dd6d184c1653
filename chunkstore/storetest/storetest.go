// Package storetest is the conformance suite of chunkstore.Store: every
// implementation and decorator runs Run and so keeps the same contract
// (missing objects, conditional writes and their races, listing order,
// ranged reads, cancellation).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Run runs the conformance suite. newStore must return an empty store each
// time it is called (a fresh directory, a fresh bucket prefix); it may
// register cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) chunkstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s chunkstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Missing", testMissing},
		{"DeleteMissing", testDeleteMissing},
		{"List", testList},
		{"ListStop", testListStop},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfMatch", testIfMatch},
		{"RaceIfNoneMatch", testRaceIfNoneMatch},
		{"RaceIfMatch", testRaceIfMatch},
		{"Empty", testEmpty},
		{"Large", testLarge},
		{"GetRange", testGetRange},
		{"Meta", testMeta},
		{"Cancelled", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// Data returns n pseudo-random bytes determined by seed.
func Data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s chunkstore.Store, key string, data []byte, cond chunkstore.Cond) string {
	t.Helper()
	etag, err := s.Put(context.Background(), key, data, cond)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if etag == "" {
		t.Fatalf("put %s returned an empty etag", key)
	}
	return etag
}

func mustGet(t *testing.T, s chunkstore.Store, key string, want []byte) string {
	t.Helper()
	got, etag, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("get %s: %d bytes differ from the %d put", key, len(got), len(want))
	}
	return etag
}

func testRoundTrip(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	data := Data(1, 4096)
	key := chunkstore.ChunkKey(chunkstore.Hash(data))
	etag := put(t, s, key, data, chunkstore.Cond{})
	if got := mustGet(t, s, key, data); got != etag {
		t.Errorf("get etag %q, put returned %q", got, etag)
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ETag != etag {
		t.Errorf("stat = %+v, want key %s size %d etag %s", info, key, len(data), etag)
	}
	if info.ModTime.IsZero() {
		t.Errorf("stat has no mod time")
	}
	// Put is idempotent.
	put(t, s, key, data, chunkstore.Cond{})
	mustGet(t, s, key, data)
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, _, err := s.Get(ctx, key); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
	if s.String() == "" {
		t.Errorf("String is empty")
	}
}

func testOverwrite(t *testing.T, s chunkstore.Store) {
	e1 := put(t, s, "head", []byte("one"), chunkstore.Cond{})
	e2 := put(t, s, "head", []byte("two, longer"), chunkstore.Cond{})
	if e1 == e2 {
		t.Errorf("etag did not change on overwrite: %q", e1)
	}
	if got := mustGet(t, s, "head", []byte("two, longer")); got != e2 {
		t.Errorf("etag %q, want %q", got, e2)
	}
}

func testMissing(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "nope/missing"); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("get missing: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "nope/missing"); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("stat missing: %v, want ErrNotFound", err)
	}
	if chunkstore.IsPermanent(nil) {
		t.Errorf("nil is not permanent")
	}
}

func testDeleteMissing(t *testing.T, s chunkstore.Store) {
	if err := s.Delete(context.Background(), "never/written"); err != nil {
		t.Errorf("delete missing: %v, want nil", err)
	}
}

func list(t *testing.T, s chunkstore.Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(context.Background(), prefix, func(in chunkstore.Info) error {
		keys = append(keys, in.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s chunkstore.Store) {
	// Put out of order; '.' < '/' < 'b' makes a naive directory walk wrong.
	keys := []string{"q/x", "p/ab", "p/a/c", "p/a.b", "p/a/b", "head"}
	for i, k := range keys {
		put(t, s, k, Data(uint64(i), 10+i), chunkstore.Cond{})
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"head", "p/a.b", "p/a/b", "p/a/c", "p/ab", "q/x"}},
		{"p/", []string{"p/a.b", "p/a/b", "p/a/c", "p/ab"}},
		{"p/a", []string{"p/a.b", "p/a/b", "p/a/c", "p/ab"}},
		{"p/a/", []string{"p/a/b", "p/a/c"}},
		{"q/x", []string{"q/x"}},
		{"zz", nil},
		{"head/", nil}, // a prefix through an object, not a folder
	} {
		if got := list(t, s, tc.prefix); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("list %q = %v, want %v", tc.prefix, got, tc.want)
		}
	}
	var size int64
	err := s.List(context.Background(), "q/", func(in chunkstore.Info) error {
		size = in.Size
		return nil
	})
	if err != nil || size != 10 {
		t.Errorf("list q/: size %d err %v, want size 10", size, err)
	}
}

func testListStop(t *testing.T, s chunkstore.Store) {
	for i := range 3 {
		put(t, s, fmt.Sprintf("l/%d", i), []byte{byte(i)}, chunkstore.Cond{})
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(context.Background(), "l/", func(chunkstore.Info) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("list with a failing fn: err %v after %d calls, want stop after 1", err, n)
	}
}

func testIfNoneMatch(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	put(t, s, "cloudfs.json", []byte("first"), chunkstore.Cond{IfNoneMatch: true})
	_, err := s.Put(ctx, "cloudfs.json", []byte("second"), chunkstore.Cond{IfNoneMatch: true})
	if !errors.Is(err, chunkstore.ErrPrecondition) {
		t.Errorf("IfNoneMatch on an existing key: %v, want ErrPrecondition", err)
	}
	mustGet(t, s, "cloudfs.json", []byte("first"))
}

func testIfMatch(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	if _, err := s.Put(ctx, "head", []byte("x"), chunkstore.Cond{IfMatch: "0123456789abcdef"}); !errors.Is(err, chunkstore.ErrPrecondition) {
		t.Errorf("IfMatch on a missing key: %v, want ErrPrecondition", err)
	}
	e1 := put(t, s, "head", []byte("v1"), chunkstore.Cond{})
	e2 := put(t, s, "head", []byte("v2"), chunkstore.Cond{IfMatch: e1})
	if e2 == e1 {
		t.Errorf("IfMatch put returned the old etag %q", e1)
	}
	if _, err := s.Put(ctx, "head", []byte("v3"), chunkstore.Cond{IfMatch: e1}); !errors.Is(err, chunkstore.ErrPrecondition) {
		t.Errorf("IfMatch with a stale etag: %v, want ErrPrecondition", err)
	}
	if got := mustGet(t, s, "head", []byte("v2")); got != e2 {
		t.Errorf("etag %q, want %q", got, e2)
	}
	put(t, s, "head", []byte("v3"), chunkstore.Cond{IfMatch: e2})
	mustGet(t, s, "head", []byte("v3"))
}

// race runs n puts at once and returns how many succeeded; every failure
// must be ErrPrecondition.
func race(t *testing.T, s chunkstore.Store, n int, key string, cond chunkstore.Cond) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = s.Put(context.Background(), key, fmt.Appendf(nil, "writer %d", i), cond)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, chunkstore.ErrPrecondition):
			t.Errorf("writer %d: %v, want nil or ErrPrecondition", i, err)
		}
	}
	return won
}

func testRaceIfNoneMatch(t *testing.T, s chunkstore.Store) {
	if won := race(t, s, 8, "devices/race", chunkstore.Cond{IfNoneMatch: true}); won != 1 {
		t.Errorf("%d IfNoneMatch writers won, want exactly 1", won)
	}
}

func testRaceIfMatch(t *testing.T, s chunkstore.Store) {
	etag := put(t, s, "head", []byte("base"), chunkstore.Cond{})
	if won := race(t, s, 8, "head", chunkstore.Cond{IfMatch: etag}); won != 1 {
		t.Errorf("%d IfMatch writers won, want exactly 1", won)
	}
	data, _, err := s.Get(context.Background(), "head")
	if err != nil || !bytes.HasPrefix(data, []byte("writer ")) {
		t.Errorf("after the race head = %q, %v; want one writer's data", data, err)
	}
}

func testEmpty(t *testing.T, s chunkstore.Store) {
	put(t, s, "empty", nil, chunkstore.Cond{})
	mustGet(t, s, "empty", []byte{})
	info, err := s.Stat(context.Background(), "empty")
	if err != nil || info.Size != 0 {
		t.Errorf("stat empty = %+v, %v; want size 0", info, err)
	}
}

func testLarge(t *testing.T, s chunkstore.Store) {
	data := Data(9, 9<<20)
	key := chunkstore.ChunkKey(chunkstore.Hash(data))
	put(t, s, key, data, chunkstore.Cond{})
	mustGet(t, s, key, data)
}

func testGetRange(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	data := Data(3, 1000)
	put(t, s, "r/obj", data, chunkstore.Cond{})
	for _, tc := range []struct{ off, n, wantOff, wantEnd int64 }{
		{0, 10, 0, 10},
		{100, 250, 100, 350},
		{990, 100, 990, 1000}, // short at the end
		{0, 1000, 0, 1000},
		{1000, 10, 1000, 1000}, // at the end: empty
	} {
		got, err := chunkstore.GetRange(ctx, s, "r/obj", tc.off, tc.n)
		if err != nil {
			t.Errorf("GetRange(%d, %d): %v", tc.off, tc.n, err)
			continue
		}
		if !bytes.Equal(got, data[tc.wantOff:tc.wantEnd]) {
			t.Errorf("GetRange(%d, %d) = %d bytes, want data[%d:%d]", tc.off, tc.n, len(got), tc.wantOff, tc.wantEnd)
		}
	}
	if _, err := chunkstore.GetRange(ctx, s, "r/missing", 0, 10); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("GetRange of a missing key: %v, want ErrNotFound", err)
	}
}

// testMeta checks metadata on stores that keep it, and on the others that
// PutMeta still stores the bytes and GetRangeMeta says ErrNoMeta.
func testMeta(t *testing.T, s chunkstore.Store) {
	ctx := context.Background()
	data := Data(4, 5000)
	meta := chunkstore.Meta{"cloudfs-test": "g18:AbC+/09", "other": "x"}
	if _, err := chunkstore.PutMeta(ctx, s, "m/obj", data, chunkstore.Cond{IfNoneMatch: true}, meta); err != nil {
		t.Fatalf("PutMeta: %v", err)
	}
	mustGet(t, s, "m/obj", data)
	r, err := chunkstore.GetRangeMeta(ctx, s, "m/obj", 4000, 2000)
	if !chunkstore.KeepsMeta(s) {
		if !errors.Is(err, chunkstore.ErrNoMeta) {
			t.Fatalf("GetRangeMeta on a store without metadata: %v, want ErrNoMeta", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("GetRangeMeta: %v", err)
	}
	if !bytes.Equal(r.Data, data[4000:]) || r.Size != 5000 {
		t.Errorf("GetRangeMeta(4000, 2000) = %d bytes of %d, want data[4000:] of 5000", len(r.Data), r.Size)
	}
	for k, v := range meta {
		if r.Meta[k] != v {
			t.Errorf("metadata %s = %q, want %q (all: %v)", k, r.Meta[k], v, r.Meta)
		}
	}
	// A plain Put replaces the metadata too.
	put(t, s, "m/obj", data, chunkstore.Cond{})
	if r, err := chunkstore.GetRangeMeta(ctx, s, "m/obj", 0, 10); err != nil || len(r.Meta) != 0 {
		t.Errorf("after a plain Put: metadata %v, err %v; want none", r.Meta, err)
	}
	if _, err := chunkstore.GetRangeMeta(ctx, s, "m/missing", 0, 10); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("GetRangeMeta of a missing key: %v, want ErrNotFound", err)
	}
}

func testCancelled(t *testing.T, s chunkstore.Store) {
	put(t, s, "c/obj", []byte("x"), chunkstore.Cond{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Get(ctx, "c/obj"); err == nil {
		t.Errorf("get with a cancelled context succeeded")
	}
	if _, err := s.Put(ctx, "c/new", []byte("y"), chunkstore.Cond{}); err == nil {
		t.Errorf("put with a cancelled context succeeded")
	}
	if _, err := s.Stat(ctx, "c/obj"); err == nil {
		t.Errorf("stat with a cancelled context succeeded")
	}
	if err := s.List(ctx, "c/", func(chunkstore.Info) error { return nil }); err == nil {
		t.Errorf("list with a cancelled context succeeded")
	}
}
