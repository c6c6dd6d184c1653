package index

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// loadBadRoot loads the root built from root as a fresh index's base and
// returns the error of loading the root directory, and the index.
func loadBadRoot(t *testing.T, l *memLoader, root *tree.Dir) (*DB, error) {
	t.Helper()
	ctx := context.Background()
	db, _ := openTest(t)
	if err := db.LoadRemote(ctx, chunkstore.Hash([]byte("c")), rootCommit(l, l.add(t, root))); err != nil {
		t.Fatal(err)
	}
	return db, db.EnsureLoaded(ctx, RootIno, l)
}

// A directory whose entry claims other totals than its tree holds is
// refused when it is loaded (ErrBadRemote: EIO), and nothing of it is kept.
func TestLoadRefusesWrongTotals(t *testing.T) {
	ctx := context.Background()
	l := newMemLoader()
	sub := tree.NewDir()
	if err := sub.Set(tree.Entry{Name: "f", Type: tree.TypeFile, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	subID := l.add(t, sub)
	root := tree.NewDir()
	if err := root.Set(tree.Entry{Name: "d", Type: tree.TypeDir, Mode: 0o755, Subtree: subID,
		Totals: tree.Stats{Files: 1 << 40, Dirs: 1}}); err != nil {
		t.Fatal(err)
	}
	db, err := loadBadRoot(t, l, root)
	if err != nil {
		t.Fatalf("the root, consistent with its commit: %v", err)
	}
	d, err := db.Lookup(ctx, RootIno, "d")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.EnsureLoaded(ctx, d.Ino, l); !errors.Is(err, ErrBadRemote) {
		t.Fatalf("load of a tree with a wrong claim: %v, want ErrBadRemote", err)
	}
	if loaded, err := db.Loaded(ctx, d.Ino); err != nil || loaded {
		t.Fatalf("the refused directory is loaded: %v, %v", loaded, err)
	}
}

// Totals that overflow when summed cannot be true.
func TestLoadRefusesOverflowingTotals(t *testing.T) {
	l := newMemLoader()
	sub := l.add(t, tree.NewDir())
	root := tree.NewDir()
	for _, name := range []string{"a", "b", "c"} {
		if err := root.Set(tree.Entry{Name: name, Type: tree.TypeDir, Mode: 0o755, Subtree: sub,
			Totals: tree.Stats{Files: math.MaxInt64, Dirs: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := loadBadRoot(t, l, root); !errors.Is(err, ErrBadRemote) {
		t.Fatalf("load of a tree whose totals overflow: %v, want ErrBadRemote", err)
	}
}

// A file cannot claim more links than this file system gives an inode:
// a write of it would search the whole volume for its other names.
func TestLoadRefusesHugeLinkCounts(t *testing.T) {
	l := newMemLoader()
	root := tree.NewDir()
	if err := root.Set(tree.Entry{Name: "f", Type: tree.TypeFile, Mode: 0o644, LinkID: 7, Nlink: 4_000_000_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadBadRoot(t, l, root); !errors.Is(err, ErrBadRemote) {
		t.Fatalf("load of a file claiming 4e9 links: %v, want ErrBadRemote", err)
	}
	ok := tree.NewDir()
	if err := ok.Set(tree.Entry{Name: "f", Type: tree.TypeFile, Mode: 0o644, LinkID: 7, Nlink: MaxLink}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadBadRoot(t, newMemLoader(), ok); err != nil {
		t.Fatalf("load of a file claiming %d links: %v", MaxLink, err)
	}
}
