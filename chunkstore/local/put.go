package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cloudfs/cloudfs/chunkstore"

	"github.com/cloudfs/cloudfs/chunkstore/internal/durable"
)

// Put writes data durably under key (temp file, fsync, rename, fsync of the
// directory) and returns its ETag. Conditional puts check cond and rename
// while holding the key's lock exclusively.
func (s *Store) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return "", fmt.Errorf("local put: %w", err)
	}
	dir := filepath.Dir(p)
	if err := s.checkDirs(dir); err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	if err := s.mkdirs(dir); err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	tmp, err := writeTemp(dir, data)
	if err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	conditional := cond.IfNoneMatch || cond.IfMatch != ""
	unlock, err := s.lock(key, conditional)
	if err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	err = s.commit(key, p, tmp, cond)
	unlock()
	if err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	if err := durable.SyncDir(dir); err != nil {
		return "", fmt.Errorf("local put %s: %w", key, err)
	}
	return etagOf(data), nil
}

// commit moves the temp file to p, the file of key, if cond holds; the
// caller holds the lock. The current object is hashed as it is read, not
// held.
func (s *Store) commit(key, p, tmp string, cond chunkstore.Cond) error {
	if cond.IfMatch != "" {
		f, _, err := s.open(key)
		if errors.Is(err, chunkstore.ErrNotFound) {
			return fmt.Errorf("object missing, want etag %s: %w", cond.IfMatch, chunkstore.ErrPrecondition)
		}
		if err != nil {
			return err
		}
		got, _, err := etagOfFile(f)
		f.Close()
		if err != nil {
			return err
		}
		if got != cond.IfMatch {
			return fmt.Errorf("etag is %s, want %s: %w", got, cond.IfMatch, chunkstore.ErrPrecondition)
		}
	}
	if cond.IfNoneMatch {
		// link fails with EEXIST if p exists, even for writers that do not
		// take the lock.
		if err := os.Link(tmp, p); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("object exists: %w", chunkstore.ErrPrecondition)
			}
			return err
		}
		return nil
	}
	return os.Rename(tmp, p)
}

// writeTemp writes data to a new fsynced temp file in dir and returns its
// name.
func writeTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, tmpPrefix+"*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// mkdirs creates dir and its missing parents below the root, fsyncing each
// parent that gained an entry.
func (s *Store) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	rel, err := filepath.Rel(s.root, dir)
	if err != nil {
		return err
	}
	cur := s.root
	for _, el := range strings.Split(rel, string(filepath.Separator)) {
		next := filepath.Join(cur, el)
		err := os.Mkdir(next, 0o755)
		switch {
		case err == nil:
			if err := durable.SyncDir(cur); err != nil {
				return err
			}
		case errors.Is(err, os.ErrExist):
			// Made by another writer, or a file in the way (Rename fails).
		default:
			return err
		}
		cur = next
	}
	return nil
}
