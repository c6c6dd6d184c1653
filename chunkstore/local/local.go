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
//
// What the directory holds is untrusted, like a bucket's objects: no read
// returns more than the object's kind allows (chunkstore.MaxObjectSize;
// chunkstore.ErrTooLarge), reads open each element below the root with
// O_NOFOLLOW so that a symbolic link planted in the store, or a linked
// directory on the way, is refused (ErrSymlink) rather than followed out
// of it, and only regular files are objects (ErrNotRegular). Put, Delete
// and List check the directories on the way for links before they act.
package local

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/zeebo/blake3"

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

// Get reads the whole object, at most chunkstore.MaxObjectSize(key) bytes
// of it (more is chunkstore.ErrTooLarge, found without reading past the
// bound). A link on the way is ErrSymlink, a special file ErrNotRegular.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("local get %s: %w", key, err)
	}
	f, fi, err := s.open(key)
	if err != nil {
		return nil, "", fmt.Errorf("local get %s: %w", key, err)
	}
	defer f.Close()
	data, err := chunkstore.ReadLimit(f, key, fi.Size(), chunkstore.MaxObjectSize(key))
	if err != nil {
		return nil, "", fmt.Errorf("local get %s: %w", key, err)
	}
	return data, etagOf(data), nil
}

// GetRange reads up to length bytes at off; at or past the end it returns
// no bytes. An object larger than its kind allows is chunkstore.ErrTooLarge
// whatever the range.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	if _, err := s.path(key); err != nil {
		return nil, fmt.Errorf("local get range: %w", err)
	}
	if off < 0 || length < 0 {
		return nil, fmt.Errorf("local get range %s: negative offset %d or length %d: %w", key, off, length, ErrBadKey)
	}
	f, fi, err := s.open(key)
	if err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	defer f.Close()
	if limit := chunkstore.MaxObjectSize(key); fi.Size() > limit {
		return nil, fmt.Errorf("local get range %s: %w", key, chunkstore.TooLarge(key, fi.Size(), limit))
	}
	n := max(min(length, fi.Size()-off), 0)
	data, err := chunkstore.ReadLimit(io.NewSectionReader(f, off, n), key, -1, n)
	if err != nil {
		return nil, fmt.Errorf("local get range %s: %w", key, err)
	}
	return data, nil
}

// Stat hashes the object (streaming it, nothing held) to return its Info.
// An object larger than its kind allows is chunkstore.ErrTooLarge, not
// hashed.
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	if err := ctx.Err(); err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	f, fi, err := s.open(key)
	if err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	defer f.Close()
	if limit := chunkstore.MaxObjectSize(key); fi.Size() > limit {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, chunkstore.TooLarge(key, fi.Size(), limit))
	}
	etag, n, err := etagOfFile(f)
	if err != nil {
		return chunkstore.Info{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	return chunkstore.Info{Key: key, Size: n, ETag: etag, ModTime: fi.ModTime()}, nil
}

// etagOfFile returns the ETag and size of the rest of f, read in pieces.
func etagOfFile(f *os.File) (string, int64, error) {
	h := blake3.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
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
	if err := s.checkDirs(filepath.Dir(p)); err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
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
