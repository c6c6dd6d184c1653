package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkstore.Store { return newStore(t) })
}

func TestBadKeys(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for _, key := range []string{"", "/abs", "a/../b", "..", "a//b", "a/", ".locks/00", "a/.tmp-1", "./a", `a\b`} {
		if _, err := s.Put(ctx, key, []byte("x"), chunkstore.Cond{}); !errors.Is(err, ErrBadKey) {
			t.Errorf("put %q: %v, want ErrBadKey", key, err)
		}
		if !chunkstore.IsPermanent(ErrBadKey) {
			t.Errorf("ErrBadKey is not permanent")
		}
		if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrBadKey) {
			t.Errorf("get %q: %v, want ErrBadKey", key, err)
		}
	}
}

// TestListSkipsInternalFiles checks that temp files, lock files and
// directories never appear as objects.
func TestListSkipsInternalFiles(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Put(ctx, "chunks/ab/obj", []byte("x"), chunkstore.Cond{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.root, "chunks", "ab", ".tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(in chunkstore.Info) error { keys = append(keys, in.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "chunks/ab/obj" {
		t.Errorf("list = %v, want [chunks/ab/obj]", keys)
	}
	if _, _, err := s.Get(ctx, "chunks/ab"); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("get of a directory: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "chunks"); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("stat of a directory: %v, want ErrNotFound", err)
	}
}

// TestConditionalAcrossStores runs an IfMatch race between two Store values
// on one directory, as two processes would.
func TestConditionalAcrossStores(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	etag, err := a.Put(ctx, "head", []byte("base"), chunkstore.Cond{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { _, err := a.Put(ctx, "head", []byte("from a"), chunkstore.Cond{IfMatch: etag}); errs <- err }()
	go func() { _, err := b.Put(ctx, "head", []byte("from b"), chunkstore.Cond{IfMatch: etag}); errs <- err }()
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) {
		t.Fatalf("want exactly one winner, got %v and %v", e1, e2)
	}
	for _, e := range []error{e1, e2} {
		if e != nil && !errors.Is(e, chunkstore.ErrPrecondition) {
			t.Errorf("loser: %v, want ErrPrecondition", e)
		}
	}
}
