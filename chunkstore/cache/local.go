package cache

import "github.com/cloudfs/cloudfs/chunkstore"

// Cached returns the plaintext of chunk id if this machine's cache holds
// it (verified against id, as every read), without asking the store: ok
// is false for a chunk that is not cached. It serves readers that must not
// or cannot reach the store (`cloudfs recover`); they may Open the cache
// with a nil store as long as they call nothing that fetches.
func (c *Cache) Cached(id chunkstore.ID) (data []byte, ok bool, err error) {
	return c.readCached(id, false)
}
