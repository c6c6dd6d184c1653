package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// plant writes a file into the store behind its back, as anyone with the
// directory (or a sync tool) could, and returns its path.
func plant(t *testing.T, s *Store, key string, data []byte) string {
	t.Helper()
	p := filepath.Join(s.root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOversizedObjects: an object grown past its kind's bound is refused by
// Get, GetRange and Stat without reading (or allocating) its size.
func TestOversizedObjects(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	p := plant(t, s, chunkstore.HeadKey, nil)
	const size = 64 << 20 // sparse: no disk
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := s.Get(ctx, chunkstore.HeadKey)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("Get of a %d-byte head: %v, want ErrTooLarge", size, err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("Get of a %d-byte head allocated %d bytes", size, got)
	}
	if _, err := s.Stat(ctx, chunkstore.HeadKey); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("Stat of a %d-byte head: %v, want ErrTooLarge", size, err)
	}
	if _, err := s.GetRange(ctx, chunkstore.HeadKey, 0, 10); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("GetRange of a %d-byte head: %v, want ErrTooLarge", size, err)
	}
	// At the bound it is still read.
	if err := os.Truncate(p, chunkstore.MaxHeadSize); err != nil {
		t.Fatal(err)
	}
	if data, _, err := s.Get(ctx, chunkstore.HeadKey); err != nil || len(data) != chunkstore.MaxHeadSize {
		t.Errorf("Get of a head at the bound: %d bytes, %v", len(data), err)
	}
	// An IfMatch put over an oversized object hashes it in pieces.
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&before)
	_, err = s.Put(ctx, chunkstore.HeadKey, []byte("x"), chunkstore.Cond{IfMatch: "nope"})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, chunkstore.ErrPrecondition) {
		t.Errorf("IfMatch put over an oversized head: %v, want ErrPrecondition", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("IfMatch put over a %d-byte head allocated %d bytes", size, got)
	}
}

// TestSymlinksRefused: a link in the store, to a file or a directory
// outside it, is not followed by any method.
func TestSymlinksRefused(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("outside the store"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := chunkstore.Hash([]byte("x"))
	key := chunkstore.ChunkKey(id)
	p := filepath.Join(s.root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, p); err != nil {
		t.Fatal(err)
	}
	if data, _, err := s.Get(ctx, key); !errors.Is(err, ErrSymlink) {
		t.Errorf("Get of a link to a file outside: %q, %v; want ErrSymlink", data, err)
	}
	if _, err := s.GetRange(ctx, key, 0, 5); !errors.Is(err, ErrSymlink) {
		t.Errorf("GetRange of a link: %v, want ErrSymlink", err)
	}
	if _, err := s.Stat(ctx, key); !errors.Is(err, ErrSymlink) {
		t.Errorf("Stat of a link: %v, want ErrSymlink", err)
	}
	var listed []string
	if err := s.List(ctx, chunkstore.ChunksPrefix, func(i chunkstore.Info) error {
		listed = append(listed, i.Key)
		return nil
	}); err != nil || len(listed) != 0 {
		t.Errorf("List lists %q, %v; want no link", listed, err)
	}

	// A linked directory on the way: "trees" -> outside.
	if err := os.Symlink(outside, filepath.Join(s.root, "trees")); err != nil {
		t.Fatal(err)
	}
	if data, _, err := s.Get(ctx, "trees/secret"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Get through a linked directory: %q, %v; want ErrSymlink", data, err)
	}
	if _, err := s.Put(ctx, "trees/planted", []byte("x"), chunkstore.Cond{}); !errors.Is(err, ErrSymlink) {
		t.Errorf("Put through a linked directory: %v, want ErrSymlink", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Put wrote outside the store: %v", err)
	}
	if err := s.Delete(ctx, "trees/secret"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Delete through a linked directory: %v, want ErrSymlink", err)
	}
	if data, err := os.ReadFile(secret); err != nil || !bytes.Equal(data, []byte("outside the store")) {
		t.Errorf("the file outside is %q, %v after Delete", data, err)
	}
	if err := s.List(ctx, "trees/", func(chunkstore.Info) error { return nil }); !errors.Is(err, ErrSymlink) {
		t.Errorf("List through a linked directory: %v, want ErrSymlink", err)
	}
	// The store works beside them.
	if _, err := s.Put(ctx, "commits/ok", []byte("fine"), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if data, _, err := s.Get(ctx, "commits/ok"); err != nil || string(data) != "fine" {
		t.Errorf("Get beside the links: %q, %v", data, err)
	}
}

// TestSpecialFileRefused: a FIFO in the store is refused at once rather
// than blocking the reader.
func TestSpecialFileRefused(t *testing.T) {
	s := newStore(t)
	if err := syscall.Mkfifo(filepath.Join(s.root, "head"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Get(context.Background(), chunkstore.HeadKey)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Errorf("Get of a FIFO: %v, want ErrNotRegular", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Get of a FIFO blocks")
	}
}
