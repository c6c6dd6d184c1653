package index

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

func benchDB(b *testing.B) *DB {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "index.db"), Options{}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func BenchmarkCreate(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Create(ctx, RootIno, fmt.Sprint("f", i), NewNode{Mode: modeFile}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCommitDurable(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	a, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if _, err := db.CommitData(ctx, a.Ino, DataCommit{Size: 4096, StagingName: "s", AddStaged: Ranges{{0, 4096}}, Durable: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetAttr(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := db.GetAttr(ctx, RootIno); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupMiss(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Lookup(ctx, RootIno, fmt.Sprint("nx", i)); err == nil {
			b.Fatal("found")
		}
	}
}

// BenchmarkCloseCommit is the commit of a small file's close (not durable).
func BenchmarkCloseCommit(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	a, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.CommitData(ctx, a.Ino, DataCommit{Size: 4096, StagingName: "s", AddStaged: Ranges{{0, 4096}}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtents looks up the extents under a 128 KiB read (what one
// FUSE read asks for) in a 1 GiB file of 1024 one-MiB extents.
func BenchmarkExtents(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	a, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile})
	if err != nil {
		b.Fatal(err)
	}
	const n, size = 1024, 1 << 20
	exts := make([]Extent, n)
	for i := range exts {
		exts[i] = Extent{Off: int64(i) * size, Len: size, Chunk: chunkstore.Hash([]byte(fmt.Sprint(i)))}
	}
	if _, err := db.CommitData(ctx, a.Ino, DataCommit{Size: n * size, Insert: exts}); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		off := int64(i*7919%n)*size + 512<<10 // the middle of an extent
		got, err := db.Extents(ctx, a.Ino, off, 128<<10)
		if err != nil || len(got) != 1 {
			b.Fatalf("extents at %d: %d, %v", off, len(got), err)
		}
	}
}
