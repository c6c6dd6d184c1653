package cache

import (
	"fmt"
	"maps"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// packBuf is a pack being filled: the stored forms of its chunks end to
// end, and where each one is.
type packBuf struct {
	data  []byte
	items []packItem
}

type packItem struct {
	id       chunkstore.ID
	off, len int64
}

// addPacked uploads small chunk id (plain, and buf as in AddFrom) in a
// pack: counted present when the locator already places it in one, else
// appended to the pack being filled, which is sent once it reaches
// chunkstore.PackTarget. A packed chunk is never a delta: a hint for it is
// dropped.
func (u *Uploads) addPacked(id chunkstore.ID, plain, buf []byte) error {
	c := u.c
	c.mu.Lock()
	delete(c.bases, id)
	c.mu.Unlock()
	l, ok, err := c.locate(u.gctx, id)
	if err != nil {
		return u.fail(fmt.Errorf("upload %s: %w", id, err))
	}
	if ok {
		u.mu.Lock()
		u.located[id] = l
		u.st.Present++
		u.st.PresentBytes += l.Len
		u.mu.Unlock()
		return c.markCleanIfCached(id)
	}
	var stored []byte
	if buf != nil {
		stored, _ = chunkstore.EncodeChunkFrom(buf)
	} else {
		stored, _ = chunkstore.EncodeChunk(plain)
	}
	u.mu.Lock()
	if u.pack == nil {
		u.pack = &packBuf{data: make([]byte, 0, chunkstore.PackTarget+len(stored))}
	}
	p := u.pack
	p.items = append(p.items, packItem{id: id, off: int64(len(p.data)), len: int64(len(stored))})
	p.data = append(p.data, stored...)
	full := len(p.data) >= chunkstore.PackTarget
	if full {
		u.pack = nil
	}
	u.mu.Unlock()
	if full {
		return u.sendPack(p)
	}
	return nil
}

// fail stops the upload with err (returned by Wait) and returns it.
func (u *Uploads) fail(err error) error {
	u.g.Go(func() error { return err })
	return err
}

// sendPack puts pack p under its ID in an upload slot of its own; each of
// its chunks is then placed (Located), counted uploaded and marked clean.
func (u *Uploads) sendPack(p *packBuf) error {
	if err := u.slots.Acquire(u.gctx, smallPerSlot); err != nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.stoppedLocked()
	}
	id := chunkstore.Hash(p.data)
	key := chunkstore.PackKey(id)
	u.mu.Lock()
	u.packs = append(u.packs, key)
	u.mu.Unlock()
	u.g.Go(func() error {
		defer u.slots.Release(smallPerSlot)
		// Content-addressed: a put of a pack present already is harmless.
		if _, err := u.c.store.Put(u.gctx, key, p.data, chunkstore.Cond{}); err != nil {
			return fmt.Errorf("upload pack %s of %d chunks: %w", id, len(p.items), err)
		}
		u.mu.Lock()
		for _, it := range p.items {
			u.located[it.id] = chunkstore.Loc{Pack: id, Off: it.off, Len: it.len}
			u.sent = append(u.sent, it.id)
		}
		u.st.Uploaded += len(p.items)
		u.st.UploadedBytes += int64(len(p.data))
		u.st.Packs++
		u.st.Packed += len(p.items)
		u.mu.Unlock()
		for _, it := range p.items {
			if err := u.c.markCleanIfCached(it.id); err != nil {
				return err
			}
		}
		return nil
	})
	return nil
}

// Located returns where the chunks added so far that are in packs are:
// those put in packs by this upload, and those the locator placed.
func (u *Uploads) Located() map[chunkstore.ID]chunkstore.Loc {
	u.mu.Lock()
	defer u.mu.Unlock()
	return maps.Clone(u.located)
}

// PackKeys returns the keys of the packs this upload started to put.
func (u *Uploads) PackKeys() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.packs...)
}
