package fs

import (
	"fmt"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spaceGuard keeps a reserve of free space on the cache disk: staged
// writes fail with ENOSPC once they would eat into it, so the index (whose
// WAL needs room for every transaction, even an unlink) and the chunk
// cache can still work and the user can free space through the mount.
type spaceGuard struct {
	dir string

	mu      sync.Mutex
	reserve int64     // 0: computed from the disk size at the first check
	free    int64     // free bytes at the last statfs, minus writes since
	checked time.Time // time of the last statfs
}

// spaceRecheck bounds how stale the free-space estimate may get.
const spaceRecheck = 100 * time.Millisecond

// reserveFor is the default reserve of a disk of total bytes: 5%, at least
// 1 MiB and at most 64 MiB.
func reserveFor(total int64) int64 { return min(64<<20, max(total/20, 1<<20)) }

// roomy reports whether the disk has more than extra bytes free beyond
// the reserve (passthrough sessions write without take).
func (g *spaceGuard) roomy(extra int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checkLocked(extra) == nil
}

// take accounts for n bytes about to be written, or returns ENOSPC if that
// would leave less than the reserve free.
func (g *spaceGuard) take(n int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.checkLocked(n); err != nil {
		return err
	}
	g.free -= n
	return nil
}

// checkLocked returns ENOSPC if n bytes more would leave less than the
// reserve free, asking the disk again when the estimate is stale or short.
func (g *spaceGuard) checkLocked(n int64) error {
	if time.Since(g.checked) > spaceRecheck || g.free-n < g.reserve {
		var st unix.Statfs_t
		if err := unix.Statfs(g.dir, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", g.dir, err)
		}
		g.free = int64(st.Bavail) * st.Bsize
		g.checked = time.Now()
		if g.reserve == 0 {
			g.reserve = reserveFor(int64(st.Blocks) * st.Bsize)
		}
	}
	if g.free-n < g.reserve {
		return syscall.ENOSPC
	}
	return nil
}
