package health

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/chunkstore/retry"
)

// TestOfflineAfterGrace: unreachable failures are transient for the grace
// period, then permanent (a retry decorator stops at once); any answer
// brings the store back online.
func TestOfflineAfterGrace(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	inner := fault.New(mem.New("h"))
	s := New(inner, 10*time.Second, func() time.Time { return now })
	if _, err := s.Put(ctx, "k", []byte("v"), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	down := fmt.Errorf("dial: %w", chunkstore.ErrUnreachable)
	inner.FailPrefix(0, "", down)
	_, _, err := s.Get(ctx, "k")
	if !errors.Is(err, chunkstore.ErrUnreachable) || chunkstore.IsPermanent(err) {
		t.Fatalf("first failure: %v (want transient, unreachable)", err)
	}
	since, off, _ := s.Offline()
	if !off || !since.Equal(now) {
		t.Fatalf("offline %v since %v", off, since)
	}
	now = now.Add(11 * time.Second)
	r := retry.New(s, retry.Config{MaxAttempts: 5, InitialInterval: time.Millisecond}, nil)
	start := time.Now()
	_, _, err = r.Get(ctx, "k")
	if !chunkstore.IsPermanent(err) || !errors.Is(err, chunkstore.ErrUnreachable) {
		t.Fatalf("failure past the grace period: %v (want permanent)", err)
	}
	if n := inner.Calls(fault.OpGet); n != 2 {
		t.Fatalf("%d gets reached the store, want 2 (no retry past the grace period)", n)
	}
	if time.Since(start) > time.Second {
		t.Fatal("the retry layer waited")
	}
	// A store answer, even a missing object, is reachable.
	inner.Clear()
	if _, _, err := s.Get(ctx, "missing"); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Fatal(err)
	}
	if _, off, _ := s.Offline(); off {
		t.Fatal("still offline after an answer")
	}
	// The caller cancelling says nothing of the store.
	inner.FailPrefix(0, "", context.Canceled)
	s.Get(ctx, "k")
	if _, off, _ := s.Offline(); off {
		t.Fatal("offline after a cancelled call")
	}
}
