package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

var fast = Config{MaxAttempts: 5, MaxElapsed: 5 * time.Second, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkstore.Store {
		return New(mem.New(t.Name()), fast, zaptest.NewLogger(t))
	})
}

func setup(t *testing.T, cfg Config) (*Store, *fault.Store, *observer.ObservedLogs) {
	core, logs := observer.New(zap.WarnLevel)
	f := fault.New(mem.New(t.Name()))
	return New(f, cfg, zap.New(core)), f, logs
}

func TestTransientRetried(t *testing.T) {
	ctx := context.Background()
	for _, transient := range []error{
		io.ErrUnexpectedEOF,
		syscall.ECONNRESET,
		errors.New("503 Slow Down"),
		context.DeadlineExceeded, // a per-attempt timeout, the caller's ctx is live
	} {
		s, f, logs := setup(t, fast)
		f.Add(fault.Rule{Ops: fault.OpPut, Err: transient, Times: 2})
		if _, err := s.Put(ctx, "k", []byte("v"), chunkstore.Cond{}); err != nil {
			t.Errorf("%v: put after 2 transient failures: %v", transient, err)
		}
		if n := f.Calls(fault.OpPut); n != 3 {
			t.Errorf("%v: %d put attempts, want 3", transient, n)
		}
		if n := logs.FilterMessage("store call failed, retrying").Len(); n != 2 {
			t.Errorf("%v: %d retry log lines, want 2", transient, n)
		}
	}
}

func TestPermanentNotRetried(t *testing.T) {
	ctx := context.Background()
	for _, perm := range []error{
		&chunkstore.Permanent{Err: errors.New("403 Forbidden")},
		chunkstore.ErrNotFound,
		chunkstore.ErrPrecondition,
	} {
		s, f, _ := setup(t, fast)
		f.FailPrefix(fault.OpGet, "", perm)
		if _, _, err := s.Get(ctx, "k"); !errors.Is(err, perm) {
			t.Errorf("get: %v, want %v", err, perm)
		}
		if n := f.Calls(fault.OpGet); n != 1 {
			t.Errorf("%v: %d attempts, want 1", perm, n)
		}
	}
}

func TestBounds(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("500 Internal Error")
	s, f, _ := setup(t, fast)
	f.FailPrefix(fault.OpStat, "", boom)
	_, err := s.Stat(ctx, "k")
	if !errors.Is(err, boom) {
		t.Errorf("stat: %v, want boom", err)
	}
	if n := f.Calls(fault.OpStat); n != int(fast.MaxAttempts) {
		t.Errorf("%d attempts, want %d", n, fast.MaxAttempts)
	}

	slow := Config{MaxAttempts: 1000, MaxElapsed: 100 * time.Millisecond, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond}
	s, f, _ = setup(t, slow)
	f.FailPrefix(fault.OpDelete, "", boom)
	start := time.Now()
	if err := s.Delete(ctx, "k"); !errors.Is(err, boom) {
		t.Errorf("delete: %v, want boom", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("retrying took %v, bounded by 100ms", d)
	}
	if n := f.Calls(fault.OpDelete); n < 2 || n > 20 {
		t.Errorf("%d delete attempts in 100ms", n)
	}
}

func TestCancelStops(t *testing.T) {
	slow := Config{MaxAttempts: 100, MaxElapsed: 10 * time.Hour, InitialInterval: time.Hour, MaxInterval: time.Hour}
	s, f, _ := setup(t, slow)
	f.FailPrefix(0, "", errors.New("502 Bad Gateway"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := s.Get(ctx, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get: %v, want DeadlineExceeded", err)
	}
	if n := f.Calls(fault.OpGet); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// TestLostReplyConditionalPut: the first attempt writes but its reply is
// lost; the retry fails its condition against our own write, which must
// count as success.
func TestLostReplyConditionalPut(t *testing.T) {
	ctx := context.Background()
	s, f, _ := setup(t, fast)
	f.Add(fault.Rule{Ops: fault.OpPut, Err: syscall.ECONNRESET, AfterCall: true, Times: 1})
	etag, err := s.Put(ctx, "cloudfs.json", []byte("mine"), chunkstore.Cond{IfNoneMatch: true})
	if err != nil {
		t.Fatalf("put with a lost reply: %v", err)
	}
	if info, err := s.Stat(ctx, "cloudfs.json"); err != nil || info.ETag != etag {
		t.Errorf("stat = %+v, %v; want etag %s", info, err, etag)
	}
	// Someone else's object still fails the condition.
	f.Add(fault.Rule{Ops: fault.OpPut, Err: syscall.ECONNRESET, Times: 1})
	if _, err := s.Put(ctx, "cloudfs.json", []byte("theirs"), chunkstore.Cond{IfNoneMatch: true}); !errors.Is(err, chunkstore.ErrPrecondition) {
		t.Errorf("put over another object: %v, want ErrPrecondition", err)
	}
}

func TestListResumes(t *testing.T) {
	ctx := context.Background()
	s, f, _ := setup(t, fast)
	for i := range 5 {
		if _, err := s.Put(ctx, fmt.Sprintf("l/%d", i), []byte{byte(i)}, chunkstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	// The first listing runs to the end and then fails.
	f.Add(fault.Rule{Ops: fault.OpList, Err: syscall.ECONNRESET, AfterCall: true, Times: 1})
	var keys []string
	if err := s.List(ctx, "l/", func(in chunkstore.Info) error { keys = append(keys, in.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[l/0 l/1 l/2 l/3 l/4]" {
		t.Errorf("keys %v, want each once", keys)
	}
	if n := f.Calls(fault.OpList); n != 2 {
		t.Errorf("%d list calls, want 2", n)
	}
	stop := errors.New("stop")
	if err := s.List(ctx, "l/", func(chunkstore.Info) error { return stop }); err != stop {
		t.Errorf("list with failing fn: %v, want stop itself", err)
	}
	if n := f.Calls(fault.OpList); n != 3 {
		t.Errorf("an fn error was retried: %d list calls, want 3", n)
	}
}
