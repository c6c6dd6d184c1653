package fs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Staging files the index does not account for. A staging file that no
// index row names is left by a crash between taking an empty file from
// the pool and the first commit naming it, by a crash between purging an
// orphan's row and removing its file, or by an index.db that was lost or
// recreated: then it may be the only copy of data that was never
// uploaded. So at mount an empty one is removed and any other is moved,
// never deleted, to a folder of the recovery dir named after the time of
// the mount, with a log line; `cloudfs status` counts what the recovery
// dir holds until the user has looked at it and removed it.

// sweepStaging moves the staging files no index row names to the recovery
// dir (empty ones are removed).
func (f *FS) sweepStaging(ctx context.Context) error {
	known, err := f.idx.StagingNames(ctx)
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(f.stagingDir)
	if err != nil {
		return fmt.Errorf("sweep staging: %w", err)
	}
	var dest string
	moved, bytes := 0, int64(0)
	for _, e := range ents {
		if known[e.Name()] {
			continue
		}
		path := filepath.Join(f.stagingDir, e.Name())
		info, err := os.Lstat(path)
		if err != nil {
			return fmt.Errorf("sweep staging: %w", err)
		}
		if info.Mode().IsRegular() && info.Size() == 0 {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("sweep staging: %w", err)
			}
			f.log.Debug("removed empty stale staging file", zap.String("name", e.Name()))
			continue
		}
		if dest == "" {
			dest = filepath.Join(f.cfg.RecoveryDir, time.Now().UTC().Format("2006-01-02T150405.000000000Z"))
			if err := os.MkdirAll(dest, 0o700); err != nil {
				return fmt.Errorf("recovery folder: %w", err)
			}
		}
		if err := os.Rename(path, filepath.Join(dest, e.Name())); err != nil {
			return fmt.Errorf("recovery folder: %w", err)
		}
		moved++
		bytes += info.Size()
	}
	if moved == 0 {
		return nil
	}
	if err := syncDir(dest); err != nil {
		return err
	}
	if err := syncDir(f.stagingDir); err != nil {
		return err
	}
	f.log.Warn("staging files the index does not account for were moved to the recovery folder: "+
		"they may hold changes that were never uploaded (their names are not known)",
		zap.String("folder", dest), zap.Int("files", moved), zap.Int64("bytes", bytes))
	return nil
}

// Recovered counts the files in a recovery dir and their bytes (apparent
// size). A missing dir holds nothing.
func Recovered(dir string) (files int, bytes int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == dir {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += info.Size()
		}
		return nil
	})
	return files, bytes, err
}
