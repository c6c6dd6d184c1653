package cache

import (
	"container/list"
	"context"
	"sync"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// DefaultMemoryLimit bounds the verified plaintexts View keeps in memory.
const DefaultMemoryLimit = 64 << 20

// WithMemoryLimit sets how many bytes of recently viewed chunk plaintexts
// View keeps in memory (0 disables the memory layer).
func WithMemoryLimit(n int64) Option { return func(c *Cache) { c.mem.limit = max(n, 0) } }

// memLRU holds verified plaintexts of recently viewed chunks. The file
// system reads a chunk in many small requests (the kernel asks for 128 KiB
// at a time); without this layer every request would read the whole chunk
// from disk and hash it again. Its mutex is a leaf lock, never held with
// Cache.mu.
type memLRU struct {
	mu    sync.Mutex
	limit int64
	used  int64
	lru   *list.List // of *memEntry; front is most recently used
	byID  map[chunkstore.ID]*list.Element
}

type memEntry struct {
	id   chunkstore.ID
	data []byte
}

func (m *memLRU) get(id chunkstore.ID) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.byID[id]
	if !ok {
		return nil, false
	}
	m.lru.MoveToFront(el)
	return el.Value.(*memEntry).data, true
}

func (m *memLRU) put(id chunkstore.ID, data []byte) {
	size := int64(len(data))
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > m.limit {
		return
	}
	if m.lru == nil {
		m.lru, m.byID = list.New(), map[chunkstore.ID]*list.Element{}
	}
	if el, ok := m.byID[id]; ok {
		m.lru.MoveToFront(el)
		return
	}
	for m.used+size > m.limit {
		back := m.lru.Back()
		e := back.Value.(*memEntry)
		m.lru.Remove(back)
		delete(m.byID, e.id)
		m.used -= int64(len(e.data))
	}
	m.byID[id] = m.lru.PushFront(&memEntry{id: id, data: data})
	m.used += size
}

// View returns the plaintext of chunk id like Get, but shared: the caller
// must not modify it, and may keep it. Recently viewed chunks are served
// from memory (see WithMemoryLimit) without touching the disk; every
// plaintext was verified against id when it entered memory.
func (c *Cache) View(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	if data, ok := c.mem.get(id); ok {
		c.mu.Lock()
		c.hits++
		c.mu.Unlock()
		return data, nil
	}
	data, err := c.getShared(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mem.put(id, data)
	return data, nil
}
