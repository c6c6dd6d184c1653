package local

import (
	"context"
	"fmt"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

// BenchmarkPut writes 1 MiB objects (temp file, fsync, rename, dir fsync).
func BenchmarkPut(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := storetest.Data(1, 1<<20)
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		if _, err := s.Put(context.Background(), fmt.Sprintf("chunks/%02x/%d", i%256, i), data, chunkstore.Cond{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGet reads a 1 MiB object (and hashes it for the ETag).
func BenchmarkGet(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := storetest.Data(1, 1<<20)
	if _, err := s.Put(context.Background(), "chunks/ab/x", data, chunkstore.Cond{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := s.Get(context.Background(), "chunks/ab/x"); err != nil {
			b.Fatal(err)
		}
	}
}
