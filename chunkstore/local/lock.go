package local

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore"
)

const (
	// lockDir under the root holds the lock files; tmpPrefix starts temp
	// file names. Keys cannot name either (no element starts with ".").
	lockDir   = ".locks"
	tmpPrefix = ".tmp-"
	// lockStripes is the number of lock files keys are spread over.
	lockStripes = 64
)

// lock takes the flock of key's stripe, exclusive or shared, and returns
// the function that releases it. Each call opens its own file description,
// so goroutines of one process exclude each other like processes do.
func (s *Store) lock(key string, exclusive bool) (unlock func(), err error) {
	h := chunkstore.Hash([]byte(key))
	name := filepath.Join(s.root, lockDir, fmt.Sprintf("%02x", h[0]%lockStripes))
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
