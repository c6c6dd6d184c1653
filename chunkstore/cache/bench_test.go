package cache

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

// BenchmarkGetHit reads a cached 1 MiB chunk from disk and verifies it.
func BenchmarkGetHit(b *testing.B) {
	c, err := Open(b.TempDir(), 1<<30, mem.New("bench"), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	data := storetest.Data(1, 1<<20)
	id := chunkstore.Hash(data)
	if err := c.PutDirty(id, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := c.Get(context.Background(), id); err != nil {
			b.Fatal(err)
		}
	}
}
