package cache

import (
	"fmt"
	"os"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Damage is a cached chunk whose file does not hold its bytes.
type Damage struct {
	ID    chunkstore.ID
	Dirty bool   // not yet in the store: its bytes are lost
	Path  string // the chunk's file
	Err   error  // why (unreadable, or the bytes hash to another id)
}

// Verify reads every chunk in the cache and checks it against its id,
// changing nothing (a read through Get drops a bad copy). It returns the
// chunks checked and the damaged ones.
func (c *Cache) Verify() (checked int, bad []Damage, err error) {
	c.mu.Lock()
	type item struct {
		id    chunkstore.ID
		dirty bool
		path  string
	}
	items := make([]item, 0, len(c.entries))
	for _, e := range c.entries {
		items = append(items, item{e.id, e.dirty, c.pathOf(e)})
	}
	c.mu.Unlock()
	for _, it := range items {
		data, err := os.ReadFile(it.path)
		switch {
		case err != nil && os.IsNotExist(err):
			err = fmt.Errorf("file missing")
		case err == nil && chunkstore.Hash(data) != it.id:
			err = fmt.Errorf("%d bytes that hash to %s", len(data), chunkstore.Hash(data))
		}
		if err != nil {
			bad = append(bad, Damage{ID: it.id, Dirty: it.dirty, Path: it.path, Err: err})
		}
		checked++
	}
	return checked, bad, nil
}
