package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"

	"github.com/cloudfs/cloudfs/chunkstore/internal/durable"
)

// PutDirty stores plain as dirty chunk id, durably (fsynced) before it
// returns. plain must hash to id. It is idempotent; a clean copy becomes
// dirty. Dirty chunks may exceed the limit; clean ones are evicted to make
// room. A full disk, after evicting what it can, is an error matching
// syscall.ENOSPC.
func (c *Cache) PutDirty(id chunkstore.ID, plain []byte) error {
	if got := chunkstore.Hash(plain); got != id {
		return fmt.Errorf("cache put dirty %s: data hashes to %s", id, got)
	}
	done, err := c.makeDirty(id)
	if done || err != nil {
		return err
	}
	tmp, err := c.writeTemp(id, plain, true)
	if err != nil {
		return fmt.Errorf("cache put dirty: %w", err)
	}
	name := c.path("dirty", id)
	c.mu.Lock()
	e := c.entries[id]
	if e != nil && e.dirty {
		c.mu.Unlock()
		os.Remove(tmp)
		return nil
	}
	if e != nil { // a clean copy arrived meanwhile
		c.dropLocked(e)
	}
	if err := os.Rename(tmp, name); err != nil {
		c.mu.Unlock()
		os.Remove(tmp)
		return fmt.Errorf("cache put dirty %s: %w", id, err)
	}
	size := int64(len(plain))
	c.entries[id] = &entry{id: id, size: size, dirty: true}
	c.used += size
	c.dirty += size
	c.evictLocked(0)
	c.mu.Unlock()
	if err := durable.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("cache put dirty %s: %w", id, err)
	}
	return nil
}

// makeDirty turns a cached copy of id dirty; done reports whether id is now
// dirty.
func (c *Cache) makeDirty(id chunkstore.ID) (done bool, err error) {
	c.mu.Lock()
	e := c.entries[id]
	if e == nil {
		c.mu.Unlock()
		return false, nil
	}
	if !e.dirty {
		if err := os.Rename(c.path("clean", id), c.path("dirty", id)); err != nil {
			c.mu.Unlock()
			return false, fmt.Errorf("cache put dirty %s: %w", id, err)
		}
		if e.elem != nil {
			c.lru.Remove(e.elem)
			e.elem = nil
		}
		e.dirty = true
		c.dirty += e.size
	}
	c.mu.Unlock()
	if err := durable.SyncDir(filepath.Dir(c.path("dirty", id))); err != nil {
		return false, fmt.Errorf("cache put dirty %s: %w", id, err)
	}
	return true, nil
}

// MarkClean records that the store holds id, making it evictable (unless
// pinned). Marking a clean chunk is a no-op; an uncached one is
// ErrNotCached.
func (c *Cache) MarkClean(id chunkstore.ID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[id]
	if e == nil {
		return fmt.Errorf("cache mark clean %s: %w", id, ErrNotCached)
	}
	if !e.dirty {
		return nil
	}
	if err := os.Rename(c.path("dirty", id), c.path("clean", id)); err != nil {
		return fmt.Errorf("cache mark clean %s: %w", id, err)
	}
	e.dirty = false
	c.dirty -= e.size
	if !c.pins[id] {
		e.elem = c.lru.PushFront(e)
	}
	c.evictLocked(0)
	return nil
}

// UploadStats counts the work of Upload.
type UploadStats struct {
	// Uploaded chunks and the bytes sent (their stored, encoded form).
	Uploaded      int
	UploadedBytes int64
	// Present chunks were already in the store, and their stored size.
	Present      int
	PresentBytes int64
	// Bases are the chunks that the deltas put depend on (SetBase).
	Bases []chunkstore.ID
}

// Upload makes sure the store holds every chunk in ids: it checks each with
// Stat and puts (encoded, as a delta where SetBase named a base and that
// pays) those the store lacks from their cached copies,
// the upload concurrency at a time. Each chunk found or put is marked
// clean. A chunk neither in the store nor in the cache is an error matching
// ErrNotCached. On error the first error is returned and the rest are
// cancelled; the stats count what was done.
func (c *Cache) Upload(ctx context.Context, ids []chunkstore.ID) (UploadStats, error) {
	var (
		mu sync.Mutex
		st UploadStats
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.uploadConc)
	seen := make(map[chunkstore.ID]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		g.Go(func() error {
			sent, n, base, err := c.uploadOne(gctx, id)
			if err != nil {
				return err
			}
			mu.Lock()
			if base != nil {
				st.Bases = append(st.Bases, *base)
			}
			if sent {
				st.Uploaded++
				st.UploadedBytes += n
			} else {
				st.Present++
				st.PresentBytes += n
			}
			mu.Unlock()
			return nil
		})
	}
	err := g.Wait()
	return st, err
}

// uploadOne makes sure the store holds id; sent says whether it put it, n
// is the stored size, base the chunk it was put as a delta of.
func (c *Cache) uploadOne(ctx context.Context, id chunkstore.ID) (sent bool, n int64, base *chunkstore.ID, err error) {
	key := chunkstore.ChunkKey(id)
	info, err := c.store.Stat(ctx, key)
	switch {
	case err == nil:
		return false, info.Size, nil, c.markCleanIfCached(id)
	case !errors.Is(err, chunkstore.ErrNotFound):
		return false, 0, nil, fmt.Errorf("upload %s: %w", id, err)
	}
	plain, ok, err := c.readCached(id, false)
	if err != nil {
		return false, 0, nil, fmt.Errorf("upload: %w", err)
	}
	if !ok {
		return false, 0, nil, fmt.Errorf("upload %s: missing from %s: %w", id, c.store, ErrNotCached)
	}
	stored, meta := chunkstore.EncodeChunk(plain)
	if b, ok := c.baseOf(id); ok {
		if d := c.encodeDelta(ctx, id, b, plain, len(stored)); d != nil {
			stored, meta, base = d, chunkstore.Meta{chunkstore.MetaDelta: b.String()}, &b
		}
	}
	if _, err := chunkstore.PutMeta(ctx, c.store, key, stored, chunkstore.Cond{}, meta); err != nil {
		return false, 0, nil, fmt.Errorf("upload %s: %w", id, err)
	}
	if base != nil {
		c.mu.Lock()
		c.deltas++
		c.mu.Unlock()
	}
	return true, int64(len(stored)), base, c.markCleanIfCached(id)
}

func (c *Cache) markCleanIfCached(id chunkstore.ID) error {
	c.mu.Lock()
	delete(c.bases, id) // in the store now
	c.mu.Unlock()
	if err := c.MarkClean(id); err != nil && !errors.Is(err, ErrNotCached) {
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}
