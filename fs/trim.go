package fs

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Staging files of uploaded files. After an upload a file's staging file
// still holds the bytes just uploaded: they stay staged but clean (see the
// index's schema 5), so reads of a file written here are served from the
// local file (and, when the file is wholly staged, by the kernel through
// passthrough) instead of chunks that each need a hash check. The trimmer
// drops such a staging file once it has been clean for Config.StagingKeep
// and no handle uses it, or at once when the cache disk runs short; the
// file's content is then read from its chunks.

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
