package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
)

// chunkReader adapts the chunk cache to fs.ChunkReader: Prefetch runs in
// the background, at most a few batches at a time (readahead beyond that
// is dropped, not queued; the file system tries it again later).
type chunkReader struct {
	c    *cache.Cache
	log  *zap.Logger
	slot chan struct{}
}

func newChunkReader(c *cache.Cache, log *zap.Logger) *chunkReader {
	return &chunkReader{c: c, log: log, slot: make(chan struct{}, 8)}
}

func (r *chunkReader) ReadChunk(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	return r.c.View(ctx, id)
}

func (r *chunkReader) Prefetch(ctx context.Context, ids []chunkstore.ID) bool {
	select {
	case r.slot <- struct{}{}:
	default:
		return false
	}
	go func() {
		defer func() { <-r.slot }()
		if err := r.c.Prefetch(context.WithoutCancel(ctx), ids); err != nil {
			r.log.Warn("readahead", zap.Error(err))
		}
	}()
	return true
}

func (r *chunkReader) ReadChunkRange(ctx context.Context, id chunkstore.ID, off, n int64) ([]byte, bool, error) {
	return r.c.ReadRange(ctx, id, off, n)
}

func (r *chunkReader) KeepChunk(ctx context.Context, id chunkstore.ID, plain []byte) error {
	return r.c.PutClean(id, plain)
}
