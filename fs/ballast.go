package fs

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Ballast is space held on the cache disk for the index. Writes that reach
// the disk without the daemon (passthrough sessions, see passthrough.go)
// can fill the disk past the reserve that spaceGuard keeps for the index;
// a full disk would then refuse the index's commits, unlink included, and
// the user could not free space through the mount. The index releases the
// ballast when a commit finds the disk full and retries
// (index.Options.OnFull); the trimmer allocates it again once the disk
// has room.
type Ballast struct {
	path string
	size int64

	mu   sync.Mutex
	held bool
}

// BallastSize returns the ballast for a cache disk of total bytes: the
// smaller of 16 MiB and the disk's reserve (see spaceGuard).
func BallastSize(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return min(16<<20, reserveFor(int64(st.Blocks)*st.Bsize)), nil
}

// NewBallast allocates a ballast of size bytes at path (a disk already
// too full to hold it starts without, and takes it when it has room).
func NewBallast(path string, size int64) (*Ballast, error) {
	b := &Ballast{path: path, size: size}
	if err := b.allocate(); err != nil {
		return nil, fmt.Errorf("ballast %s: %w", path, err)
	}
	return b, nil
}

// allocate takes the ballast's space unless it holds it already; a disk
// too full for it keeps it released (no error).
func (b *Ballast) allocate() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held {
		return nil
	}
	f, err := os.OpenFile(b.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, b.size); err != nil {
		f.Truncate(0)
		if errors.Is(err, syscall.ENOSPC) {
			return nil
		}
		return err
	}
	b.held = true
	return nil
}

// Release frees the ballast's space and reports whether it had any to
// free. The index calls it when a commit finds the disk full.
func (b *Ballast) Release() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.held {
		return false
	}
	if err := os.Truncate(b.path, 0); err != nil {
		return false
	}
	b.held = false
	return true
}
