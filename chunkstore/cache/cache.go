// Package cache is the local chunk cache: chunk plaintexts in files on the
// machine's disk, bounded by a byte limit.
//
// Terms:
//
//   - clean chunk: one the store holds (fetched from it, or uploaded). It
//     may be evicted, least recently used first, to stay within the limit.
//   - dirty chunk: one written locally (PutDirty) and not yet known to be in
//     the store. It survives restarts and is never evicted; MarkClean (or
//     Upload) makes it clean. It is not fsynced: the uploader keeps a
//     chunk's bytes in its file's staging file until the chunk is in the
//     store, so a dirty chunk that a power loss tore or lost costs a
//     refetch at most (reads check every chunk against its id, and drop
//     one that fails).
//   - pinned chunk: one the user wants available offline. Pins are kept in
//     marker files, survive restarts, and may name chunks not yet cached;
//     a pinned chunk is never evicted.
//
// Layout under the cache directory: clean/ab/<id> and dirty/ab/<id> hold
// plaintexts, pins/<id> are pin markers, tmp/ holds files being written
// (cleared by Open). Every chunk read from disk or the store is checked
// against its ID; bytes that do not match are never returned.
//
// The limit counts clean and dirty bytes. Dirty and pinned chunks may push
// the usage past it; a fetched chunk that cannot fit is returned without
// being cached. After a restart the LRU order starts from the files' mtimes.
//
// All methods are safe for concurrent use. One process uses a directory at
// a time.
package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/cloudfs/cloudfs/chunkstore"

	"github.com/cloudfs/cloudfs/chunkstore/internal/durable"
)

// ErrNotCached is returned (wrapped) for a chunk the cache does not hold
// where it must (MarkClean, Upload of a chunk missing from the store).
var ErrNotCached = errors.New("chunk not in the cache")

// Default concurrencies of Prefetch and Upload.
const (
	DefaultPrefetchConcurrency = 4
	DefaultUploadConcurrency   = 8
)

// Option configures Open.
type Option func(*Cache)

// WithPrefetchConcurrency bounds the parallel fetches of one Prefetch call.
func WithPrefetchConcurrency(n int) Option { return func(c *Cache) { c.prefetchConc = max(n, 1) } }

// WithUploadConcurrency bounds the parallel uploads of one Upload call.
func WithUploadConcurrency(n int) Option { return func(c *Cache) { c.uploadConc = max(n, 1) } }

// Locator returns where chunk id is in a pack (chunkstore pack.go), ok
// false when it is an object of its own. The index is one.
type Locator func(ctx context.Context, id chunkstore.ID) (l chunkstore.Loc, ok bool, err error)

// WithLocator makes the cache read the chunks l places from their packs,
// and Uploads put small chunks in packs (and count one l places as
// present). Without a locator every chunk is an object of its own.
func WithLocator(l Locator) Option { return func(c *Cache) { c.locate = l } }

type entry struct {
	id    chunkstore.ID
	size  int64
	dirty bool
	elem  *list.Element // in lru iff clean and not pinned
}

// Cache is the chunk cache. Lock order: Cache.mu is a leaf lock; it is
// held while renaming or unlinking cache files, never during store calls.
type Cache struct {
	dir          string
	limit        int64
	store        chunkstore.Store
	log          *zap.Logger
	prefetchConc int
	uploadConc   int
	locate       Locator // nil: no packs
	group        singleflight.Group
	// writeFile writes a new file; tests replace it to simulate ENOSPC.
	writeFile func(name string, data []byte, sync bool) error
	// readDeltas holds the IDs of deltas fetched (ID -> struct{}), for
	// ReadRange; it starts over past maxReadDeltas entries.
	readDeltas  sync.Map
	readDeltasN atomic.Int64
	seq         atomic.Uint64 // names temp files
	mem         memLRU        // verified plaintexts for View

	mu        sync.Mutex // guards the fields below and the file namespace
	entries   map[chunkstore.ID]*entry
	lru       *list.List // of *entry; front is most recently used
	pins      map[chunkstore.ID]bool
	used      int64
	dirty     int64 // bytes of dirty chunks, included in used
	hits      int64
	misses    int64
	evictions int64
	// ranged counts ReadRange's verified ranged fetches and their bytes.
	ranged, rangedBytes int64
	// bases holds SetBase's hints: dirty chunk -> the chunk to store it
	// as a delta of.
	bases map[chunkstore.ID]chunkstore.ID
	// deltas counts chunks uploaded as deltas.
	deltas int64
}

// Open opens (creating if needed) the cache in dir, holding at most limit
// bytes of clean chunks, fetching misses from store. Dirty chunks and pins
// of an earlier run are kept. log receives corruption errors and disk-full
// warnings (nil: discarded).
func Open(dir string, limit int64, store chunkstore.Store, log *zap.Logger, opts ...Option) (*Cache, error) {
	if log == nil {
		log = zap.NewNop()
	}
	c := &Cache{
		dir: dir, limit: limit, store: store, log: log,
		prefetchConc: DefaultPrefetchConcurrency, uploadConc: DefaultUploadConcurrency,
		writeFile: durable.WriteFile, mem: memLRU{limit: DefaultMemoryLimit},
		entries: make(map[chunkstore.ID]*entry), lru: list.New(), pins: make(map[chunkstore.ID]bool),
		bases: make(map[chunkstore.ID]chunkstore.ID),
	}
	for _, o := range opts {
		o(c)
	}
	if err := c.init(); err != nil {
		return nil, fmt.Errorf("open chunk cache %s: %w", dir, err)
	}
	c.mu.Lock()
	c.evictLocked(0)
	c.mu.Unlock()
	c.log.Debug("chunk cache opened", zap.String("dir", dir), zap.Int64("limit", limit),
		zap.Int("chunks", len(c.entries)), zap.Int64("used", c.used), zap.Int64("dirty", c.dirty))
	return c, nil
}

// init creates the layout and loads the state of an earlier run.
func (c *Cache) init() error {
	if err := os.RemoveAll(filepath.Join(c.dir, "tmp")); err != nil {
		return err
	}
	for _, d := range []string{"tmp", "pins"} {
		if err := os.MkdirAll(filepath.Join(c.dir, d), 0o700); err != nil {
			return err
		}
	}
	for _, area := range []string{"clean", "dirty"} {
		for i := range 256 {
			if err := os.MkdirAll(filepath.Join(c.dir, area, fmt.Sprintf("%02x", i)), 0o700); err != nil {
				return err
			}
		}
	}
	if err := durable.SyncDir(c.dir); err != nil {
		return err
	}
	if err := c.scan("dirty"); err != nil {
		return err
	}
	if err := c.scan("clean"); err != nil {
		return err
	}
	pins, err := os.ReadDir(filepath.Join(c.dir, "pins"))
	if err != nil {
		return err
	}
	for _, p := range pins {
		if id, err := chunkstore.ParseID(p.Name()); err == nil {
			c.pins[id] = true
		}
	}
	for _, e := range c.entries {
		if e.elem != nil && c.pins[e.id] {
			c.lru.Remove(e.elem)
			e.elem = nil
		}
	}
	return nil
}

// scan loads the chunks of one area; clean ones enter the LRU by mtime.
func (c *Cache) scan(area string) error {
	type found struct {
		e   *entry
		mod int64
	}
	var clean []found
	for i := range 256 {
		sub := filepath.Join(c.dir, area, fmt.Sprintf("%02x", i))
		des, err := os.ReadDir(sub)
		if err != nil {
			return err
		}
		for _, de := range des {
			id, perr := chunkstore.ParseID(de.Name())
			fi, ierr := de.Info()
			if perr != nil || ierr != nil || !fi.Mode().IsRegular() {
				c.log.Warn("ignoring stray file in chunk cache", zap.String("path", filepath.Join(sub, de.Name())))
				continue
			}
			if _, dup := c.entries[id]; dup { // dirty wins over a clean copy
				os.Remove(filepath.Join(sub, de.Name()))
				continue
			}
			e := &entry{id: id, size: fi.Size(), dirty: area == "dirty"}
			c.entries[id] = e
			c.used += e.size
			if e.dirty {
				c.dirty += e.size
			} else {
				clean = append(clean, found{e, fi.ModTime().UnixNano()})
			}
		}
	}
	sort.Slice(clean, func(i, j int) bool { return clean[i].mod < clean[j].mod })
	for _, f := range clean {
		f.e.elem = c.lru.PushFront(f.e)
	}
	return nil
}

// path returns the file of id in area ("clean" or "dirty").
func (c *Cache) path(area string, id chunkstore.ID) string {
	h := id.String()
	return filepath.Join(c.dir, area, h[:2], h)
}

func (c *Cache) pathOf(e *entry) string {
	if e.dirty {
		return c.path("dirty", e.id)
	}
	return c.path("clean", e.id)
}

// Usage describes the cache's contents.
type Usage struct {
	Limit, Used           int64
	Chunks                int
	DirtyChunks           int
	DirtyBytes            int64
	Pins                  int   // pinned IDs, cached or not
	PinnedBytes           int64 // bytes of cached pinned chunks
	Hits, Misses, Evicted int64
	// Ranged counts the verified group fetches of ReadRange and
	// RangedBytes their bytes: misses served without the whole chunk.
	Ranged, RangedBytes int64
	// Deltas counts the chunks uploaded as deltas of the chunk they
	// replaced (see SetBase).
	Deltas int64
}

// Usage returns current figures.
func (c *Cache) Usage() Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := Usage{Limit: c.limit, Used: c.used, Chunks: len(c.entries), DirtyBytes: c.dirty,
		Pins: len(c.pins), Hits: c.hits, Misses: c.misses, Evicted: c.evictions,
		Ranged: c.ranged, RangedBytes: c.rangedBytes, Deltas: c.deltas}
	for _, e := range c.entries {
		if e.dirty {
			u.DirtyChunks++
		}
		if c.pins[e.id] {
			u.PinnedBytes += e.size
		}
	}
	return u
}

// DirtyIDs returns the dirty chunks, in no particular order.
func (c *Cache) DirtyIDs() []chunkstore.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []chunkstore.ID
	for _, e := range c.entries {
		if e.dirty {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// Pin keeps id in the cache from now on (once cached) until Unpin, across
// restarts. It does not fetch; pair it with Prefetch. Pinning twice is a
// no-op.
func (c *Cache) Pin(id chunkstore.ID) error {
	name := filepath.Join(c.dir, "pins", id.String())
	if err := c.writeFile(name, nil, true); err != nil {
		return fmt.Errorf("cache pin %s: %w", id, err)
	}
	if err := durable.SyncDir(filepath.Dir(name)); err != nil {
		return fmt.Errorf("cache pin %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pins[id] = true
	if e := c.entries[id]; e != nil && e.elem != nil {
		c.lru.Remove(e.elem)
		e.elem = nil
	}
	return nil
}

// Unpin makes id evictable again (when clean). Unpinning an unpinned chunk
// is a no-op.
func (c *Cache) Unpin(id chunkstore.ID) error {
	name := filepath.Join(c.dir, "pins", id.String())
	if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cache unpin %s: %w", id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pins, id)
	if e := c.entries[id]; e != nil && !e.dirty && e.elem == nil {
		e.elem = c.lru.PushFront(e)
	}
	c.evictLocked(0)
	return nil
}
