package fs

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// Staging files of uploaded files. After an upload a file's staging file
// still holds the bytes just uploaded: they stay staged but clean (see the
// index's schema 5), so reads of a file written here are served from the
// local file (and, when the file is wholly staged, by the kernel through
// passthrough) instead of chunks that each need a hash check. The trimmer
// drops such a staging file once it has been clean for Config.StagingKeep
// and no handle uses it, or at once when the cache disk runs short; the
// file's content is then read from its chunks. Before it drops one with
// room on the disk, it hands the file's whole chunks to the chunk cache
// (ChunkReader.KeepChunk), so the file stays readable without the remote:
// the uploader does not write a copy of each chunk it puts (that copy was
// half of the daemon's CPU in `cloudfs sync` of a large file), and a file
// removed or rewritten before StagingKeep never pays for one.

// trimInterval is how often the trimmer looks for staging files to drop.
const trimInterval = 30 * time.Second

// trimBatch bounds the staging files one pass drops.
const trimBatch = 512

// startTrimmer runs trimStaging every trimInterval for the life of the
// process (a mount lives as long as its daemon).
func (f *FS) startTrimmer() {
	go func() {
		for {
			f.trimStaging(context.Background())
			time.Sleep(trimInterval)
		}
	}()
}

// trimStaging drops staging files clean for longer than StagingKeep (all
// clean ones when the cache disk is short of space) that no handle uses.
// It returns how many it dropped.
func (f *FS) trimStaging(ctx context.Context) int {
	cutoff := time.Now().Add(-f.cfg.StagingKeep)
	roomy := f.space.roomy(ptMinFree)
	if !roomy {
		cutoff = time.Now()
	}
	if b := f.cfg.Ballast; b != nil && roomy {
		if err := b.allocate(); err != nil {
			f.log.Warn("ballast", zap.Error(err))
		}
	}
	clean, err := f.idx.CleanStagings(ctx, cutoff, trimBatch)
	if err != nil {
		f.log.Warn("trim staging files", zap.Error(err))
		return 0
	}
	dropped := 0
	for _, c := range clean {
		if roomy {
			f.mu.Lock()
			open := f.files[c.Ino] != nil
			f.mu.Unlock()
			if open {
				continue
			}
			f.keepChunks(ctx, c)
		}
		f.mu.Lock()
		if f.files[c.Ino] != nil { // open: its handles read the file
			f.mu.Unlock()
			continue
		}
		name, err := f.idx.DropCleanStaging(ctx, c.Ino)
		f.mu.Unlock()
		if err != nil {
			f.log.Warn("trim staging file", zap.Uint64("ino", c.Ino), zap.Error(err))
			continue
		}
		if name != "" {
			f.removeStaging(name)
			dropped++
		}
	}
	if dropped > 0 {
		f.log.Debug("dropped clean staging files", zap.Int("count", dropped))
	}
	return dropped
}

// keepChunks hands the chunks that c's file maps from their start to the
// chunk cache, read from its staging file (wholly clean: identical to the
// chunks), which checks them against their ids. A chunk the file maps only
// in part, or bytes changed meanwhile, do not match and are skipped; the
// chunk is then fetched when read.
func (f *FS) keepChunks(ctx context.Context, c index.CleanStaging) {
	exts, err := f.idx.Extents(ctx, c.Ino, 0, math.MaxInt64)
	if err != nil {
		f.log.Warn("trim: extents", zap.Uint64("ino", c.Ino), zap.Error(err))
		return
	}
	file, err := os.Open(filepath.Join(f.stagingDir, c.Name))
	if err != nil {
		f.log.Warn("trim: open staging file", zap.Uint64("ino", c.Ino), zap.Error(err))
		return
	}
	defer file.Close()
	var buf []byte
	for _, e := range exts {
		if e.ChunkOff != 0 || e.Len > chunkstore.MaxChunkSize {
			continue
		}
		buf = slices.Grow(buf[:0], int(e.Len))[:e.Len]
		if _, err := file.ReadAt(buf, e.Off); err != nil {
			f.log.Warn("trim: read staging file", zap.Uint64("ino", c.Ino), zap.Error(err))
			return
		}
		// A part of a chunk does not match the chunk's id: ErrCorrupt.
		if err := f.cfg.Chunks.KeepChunk(ctx, e.Chunk, buf); err != nil && !errors.Is(err, chunkstore.ErrCorrupt) {
			f.log.Warn("trim: keep chunk", zap.Stringer("chunk", e.Chunk), zap.Error(err))
		}
	}
}
