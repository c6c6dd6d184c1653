package cache

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// ReadRange returns n bytes at off of chunk id's plaintext (fewer at its
// end), verified against id, for a random reader. A chunk in memory or on
// disk is read from there, and a packed one (of one group) whole.
// Otherwise, when the store keeps object metadata, only the 256 KiB groups
// that cover the range are fetched, with one ranged GET, and checked with
// the chunk's outboard (chunkstore.VerifyGroups); nothing is cached on
// disk, as a sequential
// reader would fetch the chunk whole anyway. A raw chunk of one group has
// no outboard: that GET returned all of it, checked against id. Any other
// chunk without an outboard costs a second request, for all of it: a delta
// (an edited chunk) says nothing of its file, but a compressed chunk, or
// one stored by an older cloudfs, likely stands for the file's others, and
// noOutboard then advises the caller to read the rest of the file whole.
// The caller must not modify the result.
func (c *Cache) ReadRange(ctx context.Context, id chunkstore.ID, off, n int64) (data []byte, noOutboard bool, err error) {
	c.mu.Lock()
	cached := c.entries[id] != nil
	c.mu.Unlock()
	_, inMem := c.mem.get(id)
	packed := false
	if !inMem && !cached {
		// A packed chunk is one group: its fetch is the whole of it.
		var err error
		if _, packed, err = c.packed(ctx, id); err != nil {
			return nil, false, fmt.Errorf("cache fetch %s: %w", id, err)
		}
	}
	if inMem || cached || packed || !chunkstore.KeepsMeta(c.store) {
		data, err := c.View(ctx, id)
		return clip(data, off, n), false, err
	}
	start, end := chunkstore.GroupSpan(off, n)
	r, err := chunkstore.GetRangeMeta(ctx, c.store, chunkstore.ChunkKey(id), 1+start, end-start)
	if err != nil {
		return nil, false, fmt.Errorf("cache fetch %s bytes %d-%d from %s: %w", id, start, end, c.store, err)
	}
	ok, err := chunkstore.VerifyGroups(id, r.Size-1, r.Meta, start, r.Data)
	if err != nil {
		c.log.Error("chunk range from the store failed verification", zap.Stringer("chunk", id), zap.Int64("offset", start), zap.Error(err))
		return nil, false, fmt.Errorf("cache fetch %s from %s: %w", id, c.store, err)
	}
	if !ok {
		size := r.Size - 1
		if start == 0 && int64(len(r.Data)) == size && chunkstore.Hash(r.Data) == id {
			// A chunk of one group, stored raw: the range was all of it.
			c.mem.put(id, r.Data)
			c.countRanged(len(r.Data))
			return clip(r.Data, off, n), false, nil
		}
		// A delta (an edited chunk) says nothing of the file's other
		// chunks; a chunk without an outboard that is not raw and small
		// (compressed, or stored by an older cloudfs) likely does.
		_, delta := r.Meta[chunkstore.MetaDelta]
		data, err := c.View(ctx, id)
		if _, ok := c.readDeltas.Load(id); ok {
			delta = true // shorter than the range's start: no metadata came
		}
		return clip(data, off, n), !delta, err
	}
	c.countRanged(len(r.Data))
	return clip(r.Data, off-start, n), false, nil
}

func (c *Cache) countRanged(n int) {
	c.mu.Lock()
	c.ranged++
	c.rangedBytes += int64(n)
	c.mu.Unlock()
}

// clip returns data[off:off+n], shorter at its end.
func clip(data []byte, off, n int64) []byte {
	if off >= int64(len(data)) {
		return nil
	}
	return data[off:min(off+n, int64(len(data)))]
}
