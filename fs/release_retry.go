package fs

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Release retries. The last release of a file commits what a mapping
// wrote after the last close (finalReleaseLocked). When that commit fails
// (the index's disk is full, an I/O error) nobody may open the file again
// to retry it, so the file data is parked: it stays in FS.files (its
// staging file is kept and no trim drops it) and a retrier commits it
// again with backoff until the commit lands or the file is opened again
// (whose own close or release then commits). Close makes a last attempt
// and names what is still parked in the log: its bytes are in its staging
// file, and the index is unchanged, so a remount serves the file as it
// was at its last successful commit.

// Backoff of the release retrier: the first retry after
// releaseRetryInitial, doubling up to releaseRetryMax.
var (
	releaseRetryInitial = time.Second
	releaseRetryMax     = time.Minute
)

// releaseRetrier holds the parked file datas; guarded by FS.mu.
type releaseRetrier struct {
	parked  map[uint64]*fileData
	running bool
}

// parkLocked parks fd after a failed commit at its last release and
// starts the retrier if it is not running. f.mu is held.
func (f *FS) parkLocked(fd *fileData) {
	if f.retry.parked == nil {
		f.retry.parked = map[uint64]*fileData{}
	}
	f.retry.parked[fd.ino] = fd
	if !f.retry.running {
		f.retry.running = true
		go f.retryReleases(releaseRetryInitial)
	}
}

// retryReleases retries the parked releases with backoff until none is
// left.
func (f *FS) retryReleases(delay time.Duration) {
	for {
		time.Sleep(delay)
		f.mu.Lock()
		left := f.retryParkedLocked(context.Background())
		if left == 0 {
			f.retry.running = false
		}
		f.mu.Unlock()
		if left == 0 {
			return
		}
		delay = min(2*delay, releaseRetryMax)
	}
}

// retryParkedLocked makes one attempt at each parked release and returns
// how many are parked again. f.mu is held.
func (f *FS) retryParkedLocked(ctx context.Context) int {
	parked := f.retry.parked
	f.retry.parked = nil // a failed attempt parks its file data anew
	for ino, fd := range parked {
		if f.files[ino] != fd || fd.refs > 0 || fd.ptHandles > 0 {
			continue // open again: its own last release commits
		}
		f.finalReleaseLocked(ctx, fd)
		if hook := f.faults.retried; hook != nil {
			_, still := f.retry.parked[ino]
			hook(ino, still)
		}
	}
	return len(f.retry.parked)
}

// flushParked is Close's last attempt at the parked releases; what still
// fails is logged.
func (f *FS) flushParked() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryParkedLocked(context.Background())
	for ino := range f.retry.parked {
		f.log.Error("unmounted with an uncommitted write of a mapping: the file keeps its last committed content",
			zap.Uint64("ino", ino))
	}
}

// faultHooks inject failures in tests; nil hooks do nothing.
type faultHooks struct {
	// commit, when it returns an error, fails a commit of inode ino.
	commit func(ino uint64) error
	// retried reports each attempt of the release retrier: still is true
	// if the release stays parked.
	retried func(ino uint64, still bool)
}
