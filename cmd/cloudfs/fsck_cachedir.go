package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/index"
)

// fsckCacheDir checks an unmounted cache dir: its index passes SQLite's
// integrity check, every queued file's staged ranges are in its staging
// file, and every chunk in the chunk cache holds its bytes (a bad dirty
// chunk is a problem: not uploaded yet; a bad clean one a warning: it is
// fetched again). Staging files the index does not name are not reported:
// most are the mount's pool of files made ahead, and a mount sweeps the
// others into recovered/.
func fsckCacheDir(arg string) (*fsckReply, error) {
	dir, err := filepath.Abs(arg)
	if err != nil {
		return nil, userError("--cache-dir: %v", err)
	}
	indexPath := filepath.Join(dir, "index.db")
	if _, err := os.Stat(indexPath); err != nil {
		return nil, userError("cache dir %s has no index: %v", dir, unwrapPath(err))
	}
	lock, err := prepareCacheDir(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	ctx := context.Background()
	idx, err := index.Open(ctx, indexPath, index.Options{}, zap.NewNop())
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("cache dir %s: %v", dir, err)}
	}
	defer idx.Close()
	rep := &fsckReply{CacheDir: dir, Problems: []string{}}
	bad, err := idx.IntegrityCheck(ctx)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("cache dir %s: %v", dir, err)}
	}
	for _, b := range bad {
		rep.Problems = append(rep.Problems, "index: "+b)
	}
	chunks, err := cache.Open(filepath.Join(dir, "chunks"), math.MaxInt64, nil, nil)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("cache dir %s: %v", dir, err)}
	}
	staging := filepath.Join(dir, "staging")
	r := &recoverer{idx: idx, chunks: chunks, staging: staging}
	files, err := r.candidates(ctx)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("cache dir %s: %v", dir, err)}
	}
	for _, a := range files {
		st, err := idx.Staging(ctx, a.Ino)
		if err != nil {
			return nil, &exitError{code: 1, msg: err.Error()}
		}
		staged := st.Ranges.Clip(0, a.Size)
		if len(staged) == 0 {
			continue
		}
		p, _ := idx.PathOf(ctx, a.Ino)
		if p == "" {
			p = fmt.Sprintf("inode %d (deleted while open)", a.Ino)
		}
		end := staged[len(staged)-1].Off + staged[len(staged)-1].Len
		info, err := os.Stat(filepath.Join(staging, st.Name))
		switch {
		case err != nil:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %s of changes not uploaded are in staging file %s, which is missing: %v",
				p, human(staged.Bytes()), st.Name, unwrapPath(err)))
		case info.Size() < end:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: staging file %s holds %d bytes, its changes reach %d",
				p, st.Name, info.Size(), end))
		}
	}
	checked, damaged, err := chunks.Verify()
	if err != nil {
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	rep.Chunks = checked
	for _, d := range damaged {
		if d.Dirty {
			rep.Problems = append(rep.Problems, fmt.Sprintf("chunk %s (%s), not uploaded yet: %v", d.ID, d.Path, d.Err))
		} else {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("cached chunk %s (%s): %v; it is fetched again when read", d.ID, d.Path, d.Err))
		}
	}
	return rep, nil
}
