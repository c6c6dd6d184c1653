package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/fs"
	"github.com/cloudfs/cloudfs/index"
)

// cmdRecover runs `cloudfs recover --cache-dir DIR DEST`: it copies every
// file of DIR's index with changes not yet uploaded out to DEST as plain
// files (symlinks as symlinks; see candidates), from the staging files and the chunk
// cache only, so it works when the remote cannot be mounted (its settings
// were replaced or are unreadable, the bucket is gone). Bytes that are in
// neither (uploaded and evicted, or lost with the cache dir's files)
// cannot be had here: they are left as zeros, each such file is named,
// and the exit code is 1.
func cmdRecover(args []string) error {
	fl := pflag.NewFlagSet("recover", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs recover --cache-dir DIR DEST\n\n"+
			"Copies every file with changes not yet uploaded out of the cache dir\n"+
			"DIR (of an unmounted volume) into DEST, at its path in the volume.\n\n%s", fl.FlagUsages())
	}
	cacheDir := fl.String("cache-dir", "", "the cache dir to recover from (required)")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if *cacheDir == "" || fl.NArg() != 1 {
		fl.Usage()
		return userError("recover wants --cache-dir DIR and DEST")
	}
	dir, err := filepath.Abs(*cacheDir)
	if err != nil {
		return userError("--cache-dir: %v", err)
	}
	indexPath := filepath.Join(dir, "index.db")
	if _, err := os.Stat(indexPath); err != nil {
		return userError("cache dir %s has no index: %v", dir, unwrapPath(err))
	}
	lock, err := prepareCacheDir(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := os.MkdirAll(fl.Arg(0), 0o755); err != nil {
		return userError("%s: %v", fl.Arg(0), unwrapPath(err))
	}
	dest, err := os.OpenRoot(fl.Arg(0))
	if err != nil {
		return userError("%s: %v", fl.Arg(0), unwrapPath(err))
	}
	defer dest.Close()

	ctx := context.Background()
	idx, err := index.Open(ctx, indexPath, index.Options{}, zap.NewNop())
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", dir, err)
	}
	defer idx.Close()
	// No store: only what this machine holds is read; nothing is evicted.
	chunks, err := cache.Open(filepath.Join(dir, "chunks"), math.MaxInt64, nil, nil)
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", dir, err)
	}
	r := &recoverer{idx: idx, chunks: chunks, staging: filepath.Join(dir, "staging"), dest: dest, out: os.Stdout}
	if err := r.run(ctx); err != nil {
		return err
	}
	if n, b, err := fs.Recovered(filepath.Join(dir, "recovered")); err == nil && n > 0 {
		fmt.Printf("also: %s (%s) that an earlier mount found unaccounted for, in %s\n",
			plural(n, "staging file"), human(b), filepath.Join(dir, "recovered"))
	}
	fmt.Printf("%s with changes not uploaded copied to %s\n", plural(r.files, "file"), fl.Arg(0))
	if r.incomplete > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%s incomplete: bytes not in this cache dir are zeros in the copy",
			plural(r.incomplete, "file"))}
	}
	return nil
}

// recoverer copies the queued files of one index.
type recoverer struct {
	idx     *index.DB
	chunks  *cache.Cache
	staging string    // the staging dir
	dest    *os.Root  // where copies go; no path leaves it
	out     io.Writer // a line per file

	files, incomplete int
}

// candidates returns the inodes to copy: every regular file and symlink
// on the queue, and the symlinks and empty files of queued directories
// (a new one queues only its directory; copying an old one costs
// nothing), each once.
func (r *recoverer) candidates(ctx context.Context) ([]index.Attr, error) {
	queued, err := r.idx.ListDirty(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[uint64]bool{}
	var out []index.Attr
	add := func(a index.Attr) {
		if !seen[a.Ino] && (a.IsRegular() || a.IsSymlink()) {
			seen[a.Ino] = true
			out = append(out, a)
		}
	}
	for _, it := range queued {
		a, err := r.idx.GetAttr(ctx, it.Ino)
		if errors.Is(err, index.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !a.IsDir() {
			add(a)
			continue
		}
		for after := uint64(0); ; {
			ents, err := r.idx.ReadDir(ctx, a.Ino, after, 1024)
			if err != nil {
				return nil, err
			}
			if len(ents) == 0 {
				break
			}
			for _, e := range ents {
				if e.Attr.IsSymlink() || (e.Attr.IsRegular() && e.Attr.Size == 0) {
					add(e.Attr)
				}
			}
			after = ents[len(ents)-1].Cookie
		}
	}
	return out, nil
}

func (r *recoverer) run(ctx context.Context) error {
	todo, err := r.candidates(ctx)
	if err != nil {
		return err
	}
	for _, a := range todo {
		p, err := r.idx.PathOf(ctx, a.Ino)
		if err != nil {
			return err
		}
		if p == "" {
			continue // deleted while open: nothing to bring back
		}
		rel := strings.TrimPrefix(p, "/")
		if err := r.dest.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if a.IsSymlink() {
			if err := r.dest.Symlink(a.Target, rel); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			r.files++
			fmt.Fprintf(r.out, "%s -> %s\n", p, a.Target)
			continue
		}
		missing, err := r.copyFile(ctx, a, rel)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		r.files++
		if missing > 0 {
			r.incomplete++
			fmt.Fprintf(r.out, "%s (%s): %s not in this cache dir (staging files, chunk cache), zeros in the copy\n",
				p, human(a.Size), human(missing))
		} else {
			fmt.Fprintf(r.out, "%s (%s)\n", p, human(a.Size))
		}
	}
	return nil
}

// copyFile writes the content of file a to rel: its extents' chunks from
// the cache, then its staged ranges (newer) over them. It returns the
// bytes it could not find.
func (r *recoverer) copyFile(ctx context.Context, a index.Attr, rel string) (missing int64, err error) {
	st, err := r.idx.Staging(ctx, a.Ino)
	if err != nil {
		return 0, err
	}
	exts, err := r.idx.Extents(ctx, a.Ino, 0, max(a.Size, 1))
	if err != nil {
		return 0, err
	}
	out, err := r.dest.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(a.Mode&0o777))
	if err != nil {
		return 0, err
	}
	defer out.Close()
	for _, e := range exts {
		e, ok := e.Clip(0, a.Size)
		if !ok {
			continue
		}
		data, ok, err := r.chunks.Cached(e.Chunk)
		if err != nil {
			return 0, err
		}
		if !ok || e.ChunkOff+e.Len > int64(len(data)) {
			missing += index.Ranges{}.Add(e.Off, e.Len).RemoveAll(st.Ranges).Bytes()
			continue
		}
		if _, err := out.WriteAt(data[e.ChunkOff:e.ChunkOff+e.Len], e.Off); err != nil {
			return 0, err
		}
	}
	if staged := st.Ranges.Clip(0, a.Size); len(staged) > 0 {
		sf, err := os.OpenFile(filepath.Join(r.staging, st.Name), os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if errors.Is(err, os.ErrNotExist) {
			// Gone with the rest of the cache dir's files: its bytes
			// are missing, the other files are still worth copying.
			missing += staged.Bytes()
			staged = nil
		} else if err != nil {
			return 0, fmt.Errorf("staging file: %w", err)
		} else {
			defer sf.Close()
		}
		for _, rg := range staged {
			if _, err := io.Copy(io.NewOffsetWriter(out, rg.Off), io.NewSectionReader(sf, rg.Off, rg.Len)); err != nil {
				return 0, fmt.Errorf("staging file: %w", err)
			}
		}
	}
	if err := out.Truncate(a.Size); err != nil {
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	mtime := time.Unix(0, a.Mtime)
	return missing, r.dest.Chtimes(rel, mtime, mtime)
}
