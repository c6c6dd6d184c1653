package chunkstore

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/restic/chunker"
)

// benchData returns 64 MiB of random bytes (about 45 chunks), made once.
var benchData = sync.OnceValue(func() []byte { return randomData(42, 64<<20) })

// BenchmarkChunkAndHash measures cutting and BLAKE3-hashing with the default
// Params. Run with -cpu 1 for the one-core figure.
func BenchmarkChunkAndHash(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c, err := NewChunker(bytes.NewReader(data), 0, DefaultParams(TestPol))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := c.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkChunkOnly is restic/chunker without hashing, for comparison.
func BenchmarkChunkOnly(b *testing.B) {
	data := benchData()
	b.SetBytes(int64(len(data)))
	buf := make([]byte, 0, DefaultMaxSize)
	for b.Loop() {
		c := chunker.NewWithBoundaries(bytes.NewReader(data), TestPol, DefaultMinSize, DefaultMaxSize)
		for {
			ch, err := c.Next(buf)
			if err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			buf = ch.Data
		}
	}
}

// BenchmarkHash is BLAKE3-256 over 1 MiB.
func BenchmarkHash(b *testing.B) {
	data := benchData()[:1<<20]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Hash(data)
	}
}

func benchCodec(b *testing.B, name string, plain []byte) {
	b.Run("Encode/"+name, func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			Encode(plain)
		}
	})
	stored := Encode(plain)
	id := Hash(plain)
	b.Run("Decode/"+name, func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := Decode(stored, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Logf("%s: %d bytes stored as %d", name, len(plain), len(stored))
}

// BenchmarkCodec measures Encode and Decode (hash check included) on a
// 1 MiB chunk of incompressible and of text-like data.
func BenchmarkCodec(b *testing.B) {
	benchCodec(b, "random", benchData()[:1<<20])
	phrase := []byte("cloudfs mounts a bucket as an ordinary directory; files appear at once. ")
	text := bytes.Repeat(phrase, (1<<20)/len(phrase)+1)[:1<<20]
	for i := 0; i < len(text); i += 4096 { // some variety
		text[i] = byte(i >> 12)
	}
	benchCodec(b, "text", text)
}
