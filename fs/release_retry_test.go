package fs

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// failCommits makes the next n commits of f fail and returns a channel
// that receives each attempt of the release retrier.
func failCommits(t *testing.T, f *FS, n int32) <-chan bool {
	t.Helper()
	oldInitial := releaseRetryInitial
	releaseRetryInitial = 5 * time.Millisecond
	t.Cleanup(func() { releaseRetryInitial = oldInitial })
	var left atomic.Int32
	left.Store(n)
	attempts := make(chan bool, 100)
	f.faults = faultHooks{
		commit: func(uint64) error {
			if left.Add(-1) >= 0 {
				return errors.New("injected: database or disk is full")
			}
			return nil
		},
		retried: func(_ uint64, still bool) { attempts <- still },
	}
	return attempts
}

// stagedRanges returns what the index records as staged for ino.
func stagedBytes(t *testing.T, f *FS, ino uint64) int64 {
	t.Helper()
	st, err := f.idx.Staging(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	return st.Ranges.Bytes()
}

func waitAttempt(t *testing.T, attempts <-chan bool) bool {
	t.Helper()
	select {
	case still := <-attempts:
		return still
	case <-time.After(30 * time.Second):
		t.Fatal("the release retrier made no attempt")
		return false
	}
}

// A write committed only by the last release (as a mapping's writes after
// the last close are) whose commit fails is retried until it lands.
func TestFailedReleaseCommitIsRetried(t *testing.T) {
	ctx := context.Background()
	f, _, ino, content := newTestFS(t)
	attempts := failCommits(t, f, 3) // the release and two retries fail
	fd := acquireT(t, f, ino)
	if _, err := fd.write([]byte("XY"), 10, false); err != nil {
		t.Fatal(err)
	}
	f.release(ctx, fd)
	if n := stagedBytes(t, f, ino); n != 0 {
		t.Fatalf("the failed commit recorded %d staged bytes", n)
	}
	if !waitAttempt(t, attempts) || !waitAttempt(t, attempts) {
		t.Fatal("a failing retry was not parked again")
	}
	if waitAttempt(t, attempts) {
		t.Fatal("the retry that could commit left the release parked")
	}
	if n := stagedBytes(t, f, ino); n != 2 {
		t.Fatalf("after the retry the index records %d staged bytes, want 2", n)
	}
	f.mu.Lock()
	_, open := f.files[ino]
	f.mu.Unlock()
	if open {
		t.Fatal("the committed release kept its file data")
	}
	copy(content[10:], "XY")
	fd = acquireT(t, f, ino)
	defer f.release(ctx, fd)
	if got := readAll(t, fd); !bytes.Equal(got, content) {
		t.Fatalf("read after the retried commit = %q\nwant %q", got, content)
	}
}

// A parked release whose file is opened again is committed by that open's
// release, and the retrier lets it go.
func TestReopenTakesOverParkedRelease(t *testing.T) {
	ctx := context.Background()
	f, _, ino, _ := newTestFS(t)
	attempts := failCommits(t, f, 1)
	releaseRetryInitial = time.Hour // no retry before the reopen
	fd := acquireT(t, f, ino)
	if _, err := fd.write([]byte("XY"), 10, false); err != nil {
		t.Fatal(err)
	}
	f.release(ctx, fd)
	again := acquireT(t, f, ino)
	if again != fd {
		t.Fatal("the reopen did not find the parked file data with its pending write")
	}
	f.release(ctx, again)
	if n := stagedBytes(t, f, ino); n != 2 {
		t.Fatalf("the reopen's release recorded %d staged bytes, want 2", n)
	}
	f.mu.Lock()
	left := f.retryParkedLocked(ctx)
	f.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d releases still parked", left)
	}
	select {
	case <-attempts:
		t.Fatal("the retrier retried a release that an open had taken over")
	default:
	}
}
