package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/index"
)

// warmBatch is how many chunks a warm-up hands the cache at a time (its
// progress moves by batch).
const warmBatch = 16

// warmResult is the reply to a warm-up: the regular files found under the
// paths, the chunks they name and the bytes of file content those hold;
// Fetched counts the chunks the cache fetched meanwhile (the others were
// cached already).
type warmResult struct {
	Files   int   `json:"files"`
	Chunks  int   `json:"chunks"`
	Bytes   int64 `json:"bytes"`
	Fetched int64 `json:"fetched_chunks"`
}

// warmProgress is a warm-up in flight, for status: bytes of file content
// to warm and warmed so far.
type warmProgress struct {
	Bytes int64 `json:"bytes"`
	Done  int64 `json:"done"`
}

// warmer fetches the chunks of files into the chunk cache (cloudfs
// warmup), loading the directories on the way from the remote tree.
type warmer struct {
	idx     *index.DB
	cache   *cache.Cache
	loadDir func(ctx context.Context, dir uint64) error

	mu       sync.Mutex // guards progress
	progress *warmProgress
}

// Progress returns the warm-up in flight, if any.
func (w *warmer) Progress() *warmProgress {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.progress == nil {
		return nil
	}
	p := *w.progress
	return &p
}

// warm fetches every chunk of the regular files at the paths (relative to
// the mount's root; a directory stands for the files under it) that the
// cache lacks. The whole set must fit the cache: a warm-up that would
// evict its own first chunks is refused before anything is fetched.
func (w *warmer) warm(ctx context.Context, paths []string) (warmResult, error) {
	var res warmResult
	seen := map[uint64]bool{}
	var files []index.Attr
	for _, p := range paths {
		a, err := w.resolve(ctx, p)
		if err != nil {
			return res, err
		}
		if files, err = w.collect(ctx, a, files, seen); err != nil {
			return res, fmt.Errorf("%s: %w", p, err)
		}
	}
	chunks := map[chunkstore.ID]int64{} // bytes of file content each holds
	var order []chunkstore.ID
	for _, f := range files {
		exts, err := w.idx.Extents(ctx, f.Ino, 0, f.Size)
		if err != nil {
			return res, err
		}
		for _, e := range exts {
			if _, ok := chunks[e.Chunk]; !ok {
				order = append(order, e.Chunk)
			}
			chunks[e.Chunk] += e.Len
			res.Bytes += e.Len
		}
	}
	res.Files, res.Chunks = len(files), len(order)
	if limit := w.cache.Usage().Limit; limit > 0 && res.Bytes > limit {
		return res, fmt.Errorf("the files hold %s, more than the chunk cache's bound of %s (--cache-size)", human(res.Bytes), human(limit))
	}
	w.mu.Lock()
	if w.progress != nil {
		w.mu.Unlock()
		return res, errors.New("a warm-up is already running on this mount")
	}
	w.progress = &warmProgress{Bytes: res.Bytes}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.progress = nil
		w.mu.Unlock()
	}()
	before := w.cache.Usage().Misses
	for i := 0; i < len(order); i += warmBatch {
		batch := order[i:min(i+warmBatch, len(order))]
		if err := w.cache.Prefetch(ctx, batch); err != nil {
			return res, err
		}
		var n int64
		for _, id := range batch {
			n += chunks[id]
		}
		w.mu.Lock()
		w.progress.Done += n
		w.mu.Unlock()
	}
	res.Fetched = w.cache.Usage().Misses - before
	return res, nil
}

// resolve returns the attributes of the inode at rel ("" or "." is the
// root), loading directories on the way.
func (w *warmer) resolve(ctx context.Context, rel string) (index.Attr, error) {
	a, err := w.retryLoad(ctx, func() (index.Attr, error) { return w.idx.GetAttr(ctx, index.RootIno) })
	if err != nil {
		return a, err
	}
	for name := range strings.SplitSeq(path.Clean("/" + rel)[1:], "/") {
		if name == "" {
			continue
		}
		if !a.IsDir() {
			return a, fmt.Errorf("%s: not a directory on the way", rel)
		}
		parent := a.Ino
		if a, err = w.retryLoad(ctx, func() (index.Attr, error) { return w.idx.Lookup(ctx, parent, name) }); err != nil {
			if errors.Is(err, index.ErrNotFound) {
				return a, fmt.Errorf("%s: no such file or directory", rel)
			}
			return a, err
		}
	}
	return a, nil
}

// retryLoad runs op, loading the directory it finds not loaded (a few
// times: a tree may need several levels).
func (w *warmer) retryLoad(ctx context.Context, op func() (index.Attr, error)) (index.Attr, error) {
	for i := 0; ; i++ {
		a, err := op()
		var nl *index.NotLoadedError
		if err == nil || i == 8 || !errors.As(err, &nl) {
			return a, err
		}
		if err := w.loadDir(ctx, nl.Dir); err != nil {
			return a, err
		}
	}
}

// collect appends the regular files at a (itself, or those under it) to
// files, each inode once.
func (w *warmer) collect(ctx context.Context, a index.Attr, files []index.Attr, seen map[uint64]bool) ([]index.Attr, error) {
	if seen[a.Ino] {
		return files, nil
	}
	seen[a.Ino] = true
	switch {
	case a.IsRegular():
		return append(files, a), nil
	case !a.IsDir():
		return files, nil
	}
	if err := w.loadDir(ctx, a.Ino); err != nil {
		return files, err
	}
	for after := uint64(0); ; {
		ents, err := w.idx.ReadDir(ctx, a.Ino, after, 1000)
		if err != nil {
			return files, err
		}
		if len(ents) == 0 {
			return files, nil
		}
		for _, e := range ents {
			if files, err = w.collect(ctx, e.Attr, files, seen); err != nil {
				return files, err
			}
		}
		after = ents[len(ents)-1].Cookie
	}
}
