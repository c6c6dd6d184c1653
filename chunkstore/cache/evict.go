package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// evictLocked removes least recently used clean, unpinned chunks until need
// more bytes fit within the limit, and reports whether they do.
func (c *Cache) evictLocked(need int64) bool {
	for c.used+need > c.limit {
		back := c.lru.Back()
		if back == nil {
			return false
		}
		c.dropLocked(back.Value.(*entry))
		c.evictions++
	}
	return true
}

// freeLocked evicts clean, unpinned chunks totalling at least n bytes, or
// all of them; used when the disk is full whatever the limit says.
func (c *Cache) freeLocked(n int64) int64 {
	var freed int64
	for freed < n {
		back := c.lru.Back()
		if back == nil {
			break
		}
		e := back.Value.(*entry)
		freed += e.size
		c.dropLocked(e)
		c.evictions++
	}
	return freed
}

// dropLocked forgets e and removes its file.
func (c *Cache) dropLocked(e *entry) {
	delete(c.bases, e.id)
	if err := os.Remove(c.pathOf(e)); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("chunk cache: cannot remove file", zap.Stringer("chunk", e.id), zap.Error(err))
	}
	if e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
	delete(c.entries, e.id)
	c.used -= e.size
	if e.dirty {
		c.dirty -= e.size
	}
}

// writeTemp writes data to a new file under tmp/ and returns its name. On
// ENOSPC it evicts clean chunks and tries again; if the disk is still full
// the error matches syscall.ENOSPC.
func (c *Cache) writeTemp(id chunkstore.ID, data []byte, sync bool) (string, error) {
	name := filepath.Join(c.dir, "tmp", fmt.Sprintf("%s-%d", id, c.seq.Add(1)))
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = c.writeFile(name, data, sync)
		if err == nil {
			return name, nil
		}
		os.Remove(name)
		if !errors.Is(err, syscall.ENOSPC) {
			break
		}
		c.mu.Lock()
		freed := c.freeLocked(2*int64(len(data)) + 1<<20)
		c.mu.Unlock()
		c.log.Warn("chunk cache disk full, evicted clean chunks",
			zap.Stringer("chunk", id), zap.Int64("freed", freed), zap.Int("attempt", attempt+1))
		if freed == 0 {
			break
		}
	}
	return "", fmt.Errorf("write %s to the chunk cache: %w", id, err)
}
