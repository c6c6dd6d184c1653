package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// PutDirty stores plain as dirty chunk id. plain must hash to id. It is
// idempotent; a clean copy becomes dirty. Dirty chunks may exceed the
// limit; clean ones are evicted to make room. A full disk, after evicting
// what it can, is an error matching syscall.ENOSPC. The file is not
// fsynced (see the package doc).
func (c *Cache) PutDirty(id chunkstore.ID, plain []byte) error {
	if got := chunkstore.Hash(plain); got != id {
		return fmt.Errorf("cache put dirty %s: data hashes to %s", id, got)
	}
	done, err := c.makeDirty(id)
	if done || err != nil {
		return err
	}
	tmp, err := c.writeTemp(id, plain, false)
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

// DiscardDirty drops the chunks among ids that are still dirty and not
// pinned, and returns how many it dropped. It is for a caller that wrote
// dirty chunks it keeps another copy of and will not upload (a failed
// upload round: its files are cut again from their staging files), so
// that they do not stay in the cache for good.
func (c *Cache) DiscardDirty(ids []chunkstore.ID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range ids {
		if e := c.entries[id]; e != nil && e.dirty && !c.pins[id] {
			c.dropLocked(e)
			n++
		}
	}
	return n
}

// UploadStats counts the work of Upload.
type UploadStats struct {
	// Uploaded chunks and the bytes sent (their stored, encoded form).
	Uploaded      int
	UploadedBytes int64
	// Present chunks were already in the store, and their stored size.
	Present      int
	PresentBytes int64
	// Packs put, holding Packed of the uploaded chunks.
	Packs, Packed int
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
	u := c.StartUpload(ctx)
	for _, id := range ids {
		if u.Add(id, nil) != nil {
			break // Wait returns the failure
		}
	}
	return u.Wait()
}

// Uploads is an Upload whose chunks are given one at a time while the
// caller is still finding them (cutting a file into chunks), so that the
// first chunks are on their way while the rest are cut. Add and Wait may
// not be called after Wait.
type Uploads struct {
	c    *Cache
	ctx  context.Context
	g    *errgroup.Group
	gctx context.Context // canceled by the first failure

	mu      sync.Mutex // guards the fields below
	st      UploadStats
	seen    map[chunkstore.ID]bool
	ids     []chunkstore.ID // every distinct chunk added, in order
	sent    []chunkstore.ID // the chunks put (not found present)
	skipped bool            // a chunk was added after ctx was done
	pack    *packBuf        // the pack being filled (nil: none)
	packs   []string        // keys of the packs whose put started
	located map[chunkstore.ID]chunkstore.Loc

	slots *semaphore.Weighted // the upload concurrency, in units (smallPerSlot)
}

// StartUpload begins an Upload of the chunks to be added.
func (c *Cache) StartUpload(ctx context.Context) *Uploads {
	g, gctx := errgroup.WithContext(ctx)
	units := int64(c.uploadConc) * smallPerSlot
	return &Uploads{c: c, ctx: ctx, g: g, gctx: gctx, seen: map[chunkstore.ID]bool{},
		located: map[chunkstore.ID]chunkstore.Loc{}, slots: semaphore.NewWeighted(units)}
}

// smallPerSlot is how many uploads of small chunks (at most directPutMax,
// put in one request) share one slot of the upload concurrency. A small
// file's upload is one round trip of latency for a few KiB: with eight in
// flight, `cloudfs sync` of Go's source tree (11,478 files) over a 20 ms
// link took one round trip per 8 files. Larger chunks take a whole slot,
// which bounds the bytes in memory as before.
const smallPerSlot = 8

// Add starts the upload of dirty chunk id (a chunk added before is not
// uploaded twice). plain, unless nil, is its plaintext, which the caller
// has checked hashes to id and leaves unchanged from then on: the upload
// sends it instead of reading the cached copy back. Add blocks while the
// upload concurrency is in use (a small chunk takes an eighth of a slot),
// which paces the caller to the uploads.
// After an upload failed (or once ctx is done) it records id, uploads
// nothing and returns the failure, so that the caller can stop cutting;
// Wait returns it too.
func (u *Uploads) Add(id chunkstore.ID, plain []byte) error { return u.add(id, plain, nil) }

// AddFrom is Add with the plaintext at buf[1:] and buf[0] free, so that a
// chunk stored raw is sent from buf without a copy
// (chunkstore.EncodeChunkFrom). buf is the upload's from then on.
func (u *Uploads) AddFrom(id chunkstore.ID, buf []byte) error { return u.add(id, buf[1:], buf) }

func (u *Uploads) add(id chunkstore.ID, plain, buf []byte) error {
	u.mu.Lock()
	if u.seen[id] {
		u.mu.Unlock()
		return nil
	}
	u.seen[id] = true
	u.ids = append(u.ids, id)
	if u.gctx.Err() != nil {
		defer u.mu.Unlock()
		return u.stoppedLocked()
	}
	u.mu.Unlock()
	if u.c.locate != nil && plain != nil && len(plain) <= chunkstore.PackChunkMax {
		return u.addPacked(id, plain, buf)
	}
	units := int64(smallPerSlot)
	if putsDirectly(plain) {
		units = 1
	}
	if err := u.slots.Acquire(u.gctx, units); err != nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.stoppedLocked()
	}
	u.g.Go(func() error {
		defer u.slots.Release(units)
		sent, n, base, err := u.c.uploadOne(u.gctx, id, plain, buf)
		if err != nil {
			return err
		}
		u.mu.Lock()
		defer u.mu.Unlock()
		if base != nil {
			u.st.Bases = append(u.st.Bases, *base)
		}
		if sent {
			u.st.Uploaded++
			u.st.UploadedBytes += n
			u.sent = append(u.sent, id)
		} else {
			u.st.Present++
			u.st.PresentBytes += n
		}
		return nil
	})
	return nil
}

// stoppedLocked records that a chunk was added after the upload stopped
// and returns why it stopped. u.mu is held.
func (u *Uploads) stoppedLocked() error {
	u.skipped = true
	return fmt.Errorf("upload stopped: %w", context.Cause(u.gctx))
}

// Wait sends the pack being filled, waits for the uploads started and
// returns their stats and the first error. After a failure Wait still
// waits for every upload in flight.
func (u *Uploads) Wait() (UploadStats, error) {
	u.mu.Lock()
	p := u.pack
	u.pack = nil
	u.mu.Unlock()
	if p != nil {
		u.sendPack(p) // a failure is the group's, or ctx's (skipped)
	}
	err := u.g.Wait()
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil && u.skipped {
		// Skipped with no upload failing: ctx ended.
		err = fmt.Errorf("upload: %w", context.Cause(u.ctx))
	}
	return u.st, err
}

// IDs returns every distinct chunk added so far, in the order added,
// whether or not its upload ran.
func (u *Uploads) IDs() []chunkstore.ID {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.ids)
}

// Sent returns the chunks put so far (not those the store already held),
// in the order their puts finished.
func (u *Uploads) Sent() []chunkstore.ID {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.sent)
}

// directPutMax is the largest plaintext uploadOne puts without asking the
// store first whether it holds it: one request instead of two for each
// small file's chunk.
const directPutMax = 256 << 10

// putsDirectly reports whether uploadOne puts plain (nil: a cached copy
// to read back) without asking the store first.
func putsDirectly(plain []byte) bool { return plain != nil && len(plain) <= directPutMax }

// uploadOne makes sure the store holds id, putting plain (or, if nil, the
// cached copy; buf, unless nil, holds plain at buf[1:], see AddFrom); sent
// says whether it put it, n is the stored size, base the chunk it was put
// as a delta of.
func (c *Cache) uploadOne(ctx context.Context, id chunkstore.ID, plain, buf []byte) (sent bool, n int64, base *chunkstore.ID, err error) {
	key := chunkstore.ChunkKey(id)
	// A small chunk is put at once with If-None-Match: a second request to
	// ask first costs more than sending it for nothing, and most of them
	// are new. A larger one is asked about first.
	direct := putsDirectly(plain)
	if !direct {
		info, err := c.store.Stat(ctx, key)
		switch {
		case err == nil:
			return false, info.Size, nil, c.markCleanIfCached(id)
		case !errors.Is(err, chunkstore.ErrNotFound):
			return false, 0, nil, fmt.Errorf("upload %s: %w", id, err)
		}
	}
	if plain == nil {
		cached, ok, err := c.readCached(id, false)
		if err != nil {
			return false, 0, nil, fmt.Errorf("upload: %w", err)
		}
		if !ok {
			return false, 0, nil, fmt.Errorf("upload %s: missing from %s: %w", id, c.store, ErrNotCached)
		}
		plain = cached
	}
	var stored []byte
	var meta chunkstore.Meta
	if buf != nil {
		stored, meta = chunkstore.EncodeChunkFrom(buf)
	} else {
		stored, meta = chunkstore.EncodeChunk(plain)
	}
	if b, ok := c.baseOf(id); ok {
		if d := c.encodeDelta(ctx, id, b, plain, len(stored)); d != nil {
			stored, meta, base = d, chunkstore.Meta{chunkstore.MetaDelta: b.String()}, &b
		}
	}
	if _, err := chunkstore.PutMeta(ctx, c.store, key, stored, chunkstore.Cond{IfNoneMatch: direct}, meta); err != nil {
		if !direct || !errors.Is(err, chunkstore.ErrPrecondition) {
			return false, 0, nil, fmt.Errorf("upload %s: %w", id, err)
		}
		// Present already: as if Stat had found it.
		info, err := c.store.Stat(ctx, key)
		if err != nil {
			return false, 0, nil, fmt.Errorf("upload %s: %w", id, err)
		}
		return false, info.Size, nil, c.markCleanIfCached(id)
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
