package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// List calls fn in lexical key order for every object whose key starts with
// prefix. Temp and lock files and symbolic links are skipped, and a link
// on the way to the prefix's directory is ErrSymlink; Info.ETag is empty
// (see the package doc). An error from fn is returned as is.
func (s *Store) List(ctx context.Context, prefix string, fn func(chunkstore.Info) error) error {
	// Start in the deepest directory the prefix names completely.
	dirKey := prefix[:strings.LastIndex(prefix, "/")+1]
	err := s.walk(ctx, dirKey, prefix, fn)
	if errors.Is(err, errStop) {
		return err.(stopError).err
	}
	if err != nil {
		return fmt.Errorf("local list %q: %w", prefix, err)
	}
	return nil
}

var errStop = errors.New("listing stopped by fn")

// stopError carries fn's error through walk unwrapped.
type stopError struct{ err error }

func (e stopError) Error() string        { return e.err.Error() }
func (e stopError) Is(target error) bool { return target == errStop }

// walk lists the directory of dirKey ("" or ending in "/"). Siblings are
// visited in the order of their keys, a directory's key being its name plus
// "/", which yields global lexical order.
func (s *Store) walk(ctx context.Context, dirKey, prefix string, fn func(chunkstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(s.root, filepath.FromSlash(dirKey))
	if err := s.checkDirs(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return err
	}
	type item struct {
		key string
		e   os.DirEntry
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue // temp and lock files
		}
		if e.Type()&os.ModeSymlink != 0 {
			continue // not an object: Get refuses it
		}
		key := dirKey + name
		if e.IsDir() {
			key += "/"
			if !strings.HasPrefix(key, prefix) && !strings.HasPrefix(prefix, key) {
				continue
			}
		} else if !strings.HasPrefix(key, prefix) {
			continue
		}
		items = append(items, item{key, e})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	for _, it := range items {
		if it.e.IsDir() {
			if err := s.walk(ctx, it.key, prefix, fn); err != nil {
				return err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := it.e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return err
		}
		if err := fn(chunkstore.Info{Key: it.key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return stopError{err}
		}
	}
	return nil
}
