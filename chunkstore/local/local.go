// Package local is a chunkstore.Store in a local directory, one file per
// object at <root>/<key>.
//
// Durability: Put writes a temp file (".tmp-*") in the object's directory,
// fsyncs it, renames it over the key and fsyncs the directory, so a crash
// leaves the old object or the new one. Newly created directories are
// fsynced into their parents too.
//
// ETags are the lower-case hex BLAKE3-256 of the content, unquoted, so Get
// and Stat hash the object (Stat reads it). List leaves Info.ETag empty to
// stay cheap over many objects; Stat an object to learn its ETag.
//
// Conditional writes are atomic across processes: every Put and Delete
// holds a flock(2) on one of 64 lock files under <root>/.locks (chosen by
// the key's hash) while it changes the key's name, shared for unconditional
// writes and exclusive for conditional ones, so a condition cannot change
// between its check and the rename. IfNoneMatch uses link(2), which fails
// if the key exists.
//
// Keys are relative slash paths; elements may not be empty, ".", "..", or
// start with "." (names starting with "." are the store's own temp and lock
// files, which List skips).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cloudfs/cloudfs/chunkstore"

	"github.com/cloudfs/cloudfs/chunkstore/internal/durable"
)

// Store is a chunkstore.Store in a directory. It is safe for concurrent use
// by goroutines and processes.
type Store struct {
	root string
}

var (
	_ chunkstore.Store       = (*Store)(nil)
	_ chunkstore.RangeGetter = (*Store)(nil)
)

// ErrBadKey is returned (wrapped) for a key the store cannot hold.
var ErrBadKey = &chunkstore.Permanent{Err: errors.New("invalid object key")}

// Open returns the store in dir, creating the directory (and its lock
// directory) when missing.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, lockDir), 0o755); err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	return &Store{root: abs}, nil
}

// String returns the store's root directory.
func (s *Store) String() string { return s.root }

// path returns the file of key, or an error for an invalid key.
func (s *Store) path(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, "\\\x00") {
		return "", fmt.Errorf("key %q: %w", key, ErrBadKey)
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el[0] == '.' {
			return "", fmt.Errorf("key %q: element %q: %w", key, el, ErrBadKey)
		}
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func etagOf(data []byte) string { return chunkstore.Hash(data).String() }

// notFound maps a missing file (or a directory in its place) to
// chunkstore.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", chunkstore.ErrNotFound, err)
	}
	return err
}

// Get reads the whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("local get %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return nil, "", fmt.Errorf("local get: %w", err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, "", fmt.Errorf("local get %s: %w", key, notFound(err))
	}
	return data, etagOf(data), nil
}

// GetRange reads up to length bytes at off; at or past the end it returns
// no bytes.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return nil, fmt.Errorf("local get range: %w", err)
	}
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("local get range %s: negative offset %d or length %d: %w", key, off, length, ErrBadKey)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, notFound(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("local get range %s: %w", key, chunkstore.ErrNotFound)
	}
	n := max(min(length, fi.Size()-off), 0)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	return buf, nil
}

// Stat reads and hashes the object to return its Info.
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	if err := ctx.Err(); err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat: %w", err)
	}
	f, err := os.Open(p)
	if err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, notFound(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && fi.IsDir() {
		err = syscall.EISDIR
	}
	var data []byte
	if err == nil {
		data, err = io.ReadAll(f)
	}
	if err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, notFound(err))
	}
	return chunkstore.Info{Key: key, Size: int64(len(data)), ETag: etagOf(data), ModTime: fi.ModTime()}, nil
}

// Delete removes the object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	p, err := s.path(key)
	if err != nil {
		return fmt.Errorf("local delete: %w", err)
	}
	unlock, err := s.lock(key, false)
	if err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	err = os.Remove(p)
	unlock()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	if err == nil {
		if err := durable.SyncDir(filepath.Dir(p)); err != nil {
			return fmt.Errorf("local delete %s: %w", key, err)
		}
	}
	return nil
}
