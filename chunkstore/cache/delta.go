package cache

import (
	"context"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// SetBase suggests base, a chunk already in the store, as the dictionary
// for uploading the dirty chunk id as a delta (chunkstore.EncodeDelta): the
// chunk an in-place edit replaced. It is a hint kept in memory until id is
// uploaded; Upload stores id whole when the delta is not worth it, base is
// itself a delta, or base cannot be read.
func (c *Cache) SetBase(id, base chunkstore.ID) {
	if id == base {
		return
	}
	c.mu.Lock()
	c.bases[id] = base
	c.mu.Unlock()
}

// baseOf returns the base hint of id.
func (c *Cache) baseOf(id chunkstore.ID) (chunkstore.ID, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	base, ok := c.bases[id]
	return base, ok
}

// encodeDelta returns plain (chunk id) stored as a delta against base, or
// nil when it should be stored whole (otherLen is that form's size). Only a
// base stored whole qualifies, so a read needs at most one more object.
func (c *Cache) encodeDelta(ctx context.Context, id, base chunkstore.ID, plain []byte, otherLen int) []byte {
	if len(plain) < chunkstore.DeltaMinSize {
		return nil
	}
	skip := func(why string, err error) []byte {
		c.log.Debug("chunk stored whole, not as a delta", zap.Stringer("chunk", id), zap.Stringer("base", base),
			zap.String("why", why), zap.Error(err))
		return nil
	}
	head, err := chunkstore.GetRange(ctx, c.store, chunkstore.ChunkKey(base), 0, 1)
	if err != nil || len(head) != 1 {
		return skip("base unreadable", err)
	}
	if chunkstore.IsDeltaKind(head[0]) {
		return skip("base is a delta", nil)
	}
	basePlain, err := c.View(ctx, base)
	if err != nil {
		return skip("base unreadable", err)
	}
	d, err := chunkstore.EncodeDelta(plain, base, basePlain, otherLen)
	if err != nil {
		return skip("encode", err)
	}
	return d
}

// maxReadDeltas bounds readDeltas: ReadRange asks right after the fetch.
const maxReadDeltas = 4096

// noteDelta records that chunk id was fetched as a delta.
func (c *Cache) noteDelta(id chunkstore.ID) {
	if c.readDeltasN.Add(1) > maxReadDeltas {
		c.readDeltas.Clear()
		c.readDeltasN.Store(1)
	}
	c.readDeltas.Store(id, struct{}{})
}
