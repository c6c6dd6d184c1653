package cache

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Get returns the plaintext of chunk id: from disk when cached, else
// fetched from the store (chunkstore.ChunkKey), decoded, verified and
// cached. Concurrent misses of one id share a single fetch, which runs to
// completion even if the caller that started it gives up. A chunk that
// fails verification is an error matching chunkstore.ErrCorrupt and naming
// the chunk; it is neither cached nor returned. The result is the caller's
// to keep and modify.
func (c *Cache) Get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	if data, ok, err := c.readCached(id, true); ok || err != nil {
		return data, err
	}
	return c.fetch(ctx, id, false)
}

// getShared is Get for a caller that only reads the result (View,
// Prefetch): a fetch shared with other callers returns the one plaintext
// to all of them instead of a copy each. A sequential reader catches up
// with the readahead's fetch of the chunk it needs, and the copies of
// 1 MiB per chunk were a tenth of a cold read's CPU with the page faults
// and collections they caused.
func (c *Cache) getShared(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	if data, ok, err := c.readCached(id, true); ok || err != nil {
		return data, err
	}
	return c.fetch(ctx, id, true)
}

// readCached returns the cached plaintext of id, ok false when it is not
// cached (or its copy was bad and has been dropped).
func (c *Cache) readCached(id chunkstore.ID, countHit bool) ([]byte, bool, error) {
	for range 3 { // a file may move (MarkClean) or vanish (eviction) under us
		c.mu.Lock()
		e := c.entries[id]
		var name string
		if e != nil {
			name = c.pathOf(e)
			if e.elem != nil {
				c.lru.MoveToFront(e.elem)
			}
		}
		c.mu.Unlock()
		if e == nil {
			return nil, false, nil
		}
		data, err := os.ReadFile(name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("cache read %s: %w", id, err)
		}
		if chunkstore.Hash(data) != id {
			c.log.Error("cached chunk is corrupt, dropping it", zap.Stringer("chunk", id), zap.String("path", name))
			c.mu.Lock()
			if c.entries[id] == e {
				c.dropLocked(e)
			}
			c.mu.Unlock()
			return nil, false, nil
		}
		if countHit {
			c.mu.Lock()
			c.hits++
			c.mu.Unlock()
		}
		return data, true, nil
	}
	return nil, false, nil
}

// fetch gets id from the store through the singleflight group. Unless
// shared, a result that other callers also got is copied, so the caller
// may modify it.
func (c *Cache) fetch(ctx context.Context, id chunkstore.ID, shared bool) ([]byte, error) {
	ch := c.group.DoChan(id.String(), func() (any, error) {
		return c.fetchStore(context.WithoutCancel(ctx), id, true)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		data := r.Val.([]byte)
		if r.Shared && !shared {
			data = append([]byte(nil), data...)
		}
		return data, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cache get %s: %w", id, ctx.Err())
	}
}

// fetchStore downloads, verifies and caches id: from its pack when the
// locator places it in one, else its own object. With deltaOK a delta is
// decoded with its base, which it fetches the same way without deltaOK:
// a base is never itself a delta (chunkstore.Decode refuses one).
func (c *Cache) fetchStore(ctx context.Context, id chunkstore.ID, deltaOK bool) ([]byte, error) {
	// A fetch that just finished may have cached it.
	if data, ok, err := c.readCached(id, true); ok || err != nil {
		return data, err
	}
	c.mu.Lock()
	c.misses++
	c.mu.Unlock()
	l, packed, err := c.packed(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("cache fetch %s: %w", id, err)
	}
	var plain []byte
	if packed {
		plain, err = c.readPacked(ctx, id, l)
	} else {
		plain, err = c.readObject(ctx, id, deltaOK)
	}
	if err != nil {
		return nil, err
	}
	if err := c.insertClean(id, plain); err != nil {
		c.log.Warn("chunk not cached", zap.Stringer("chunk", id), zap.Error(err))
	}
	return plain, nil
}

// readObject downloads and verifies chunk id from its own object (see
// fetchStore for deltaOK).
func (c *Cache) readObject(ctx context.Context, id chunkstore.ID, deltaOK bool) ([]byte, error) {
	stored, _, err := c.store.Get(ctx, chunkstore.ChunkKey(id))
	if err != nil {
		return nil, fmt.Errorf("cache fetch %s from %s: %w", id, c.store, err)
	}
	var plain []byte
	if base, ok := chunkstore.IsDelta(stored); ok && deltaOK {
		c.noteDelta(id)
		basePlain, err := c.fetchStore(ctx, base, false)
		if err != nil {
			return nil, fmt.Errorf("base of delta %s: %w", id, err)
		}
		plain, err = chunkstore.DecodeDelta(stored, id, basePlain)
	} else {
		plain, err = chunkstore.Decode(stored, id)
	}
	if err != nil {
		c.log.Error("chunk from the store failed verification", zap.Stringer("chunk", id), zap.Error(err))
		return nil, fmt.Errorf("cache fetch %s from %s: %w", id, c.store, err)
	}
	return plain, nil
}

// packed returns where id is in a pack, if the locator knows.
func (c *Cache) packed(ctx context.Context, id chunkstore.ID) (chunkstore.Loc, bool, error) {
	if c.locate == nil {
		return chunkstore.Loc{}, false, nil
	}
	return c.locate(ctx, id)
}

// readPacked downloads and verifies chunk id from its pack, at l.
func (c *Cache) readPacked(ctx context.Context, id chunkstore.ID, l chunkstore.Loc) ([]byte, error) {
	plain, err := chunkstore.GetPacked(ctx, c.store, id, l)
	if err != nil {
		if errors.Is(err, chunkstore.ErrCorrupt) {
			c.log.Error("chunk from a pack failed verification", zap.Stringer("chunk", id), zap.Stringer("pack", l.Pack),
				zap.Int64("offset", l.Off), zap.Error(err))
		}
		return nil, fmt.Errorf("cache fetch %s from %s: %w", id, c.store, err)
	}
	return plain, nil
}

// PutClean caches plain as clean chunk id (one the store holds), after
// checking that plain hashes to id (an error matching chunkstore.ErrCorrupt
// if not); plain is not kept. A chunk cached already is left as it is,
// unhashed, and one that cannot fit is not cached. The file system hands
// over the chunks of an uploaded file whose staging file it is about to
// drop, so that the file stays readable from this disk.
func (c *Cache) PutClean(id chunkstore.ID, plain []byte) error {
	c.mu.Lock()
	cached := c.entries[id] != nil
	c.mu.Unlock()
	if cached {
		return nil
	}
	if got := chunkstore.Hash(plain); got != id {
		return fmt.Errorf("cache put clean %s: data hashes to %s: %w", id, got, chunkstore.ErrCorrupt)
	}
	return c.insertClean(id, plain)
}

// insertClean caches verified plain as a clean chunk, evicting others to
// make room; a chunk that cannot fit (and is not pinned) is not cached.
func (c *Cache) insertClean(id chunkstore.ID, plain []byte) error {
	size := int64(len(plain))
	c.mu.Lock()
	fits := c.pins[id] || size <= c.limit-c.dirty
	c.mu.Unlock()
	if !fits {
		return nil
	}
	tmp, err := c.writeTemp(id, plain, false) // clean chunks can be fetched again
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries[id] != nil { // cached meanwhile (PutDirty)
		os.Remove(tmp)
		return nil
	}
	pinned := c.pins[id]
	if !c.evictLocked(size) && !pinned {
		os.Remove(tmp)
		return nil
	}
	if err := os.Rename(tmp, c.path("clean", id)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cache insert %s: %w", id, err)
	}
	e := &entry{id: id, size: size}
	if !pinned {
		e.elem = c.lru.PushFront(e)
	}
	c.entries[id] = e
	c.used += size
	return nil
}

// Prefetch fetches the given chunks that are not cached yet, at most the
// prefetch concurrency at a time, and returns the first error after all
// have been tried. The fetched plaintexts also enter View's memory layer.
// It is meant for readahead; run it in its own goroutine to fire and
// forget (cancel ctx to stop it).
func (c *Cache) Prefetch(ctx context.Context, ids []chunkstore.ID) error {
	var g errgroup.Group
	g.SetLimit(c.prefetchConc)
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		c.mu.Lock()
		cached := c.entries[id] != nil
		c.mu.Unlock()
		if cached {
			continue
		}
		g.Go(func() error {
			data, err := c.getShared(ctx, id)
			if err == nil {
				// Verified by Get: View serves it without reading and
				// hashing the cached file again.
				c.mem.put(id, data)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("prefetch: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("prefetch: %w", err)
	}
	return nil
}
