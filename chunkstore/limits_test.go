package chunkstore

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestMaxObjectSize(t *testing.T) {
	id := Hash([]byte("x"))
	for _, tc := range []struct {
		key  string
		kind string
		max  int64
	}{
		{HeadKey, "head", MaxHeadSize},
		{VolumeKey, "settings", MaxVolumeSize},
		{DeviceKey("laptop"), "device record", MaxDeviceSize},
		{CommitKey(id), "commit", MaxCommitSize + 1},
		{TreeKey(id), "tree", MaxTreeSize + 1},
		{ChunkKey(id), "chunk", MaxChunkSize + 1},
		{GCPrefix + "1700000000000000000-ab", "gc mark", MaxMarkSize},
		{"elsewhere/x", "object", MaxChunkSize + 1},
	} {
		if k := ObjectKind(tc.key); k != tc.kind {
			t.Errorf("ObjectKind(%q) = %q, want %q", tc.key, k, tc.kind)
		}
		if m := MaxObjectSize(tc.key); m != tc.max {
			t.Errorf("MaxObjectSize(%q) = %d, want %d", tc.key, m, tc.max)
		}
	}
}

// endless yields zero bytes forever and counts them.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += int64(len(p))
	return len(p), nil
}

func TestReadLimit(t *testing.T) {
	// An endless body stops one byte past the limit.
	r := &endless{}
	_, err := ReadLimit(r, HeadKey, -1, MaxHeadSize)
	if !errors.Is(err, ErrTooLarge) || !IsPermanent(err) {
		t.Fatalf("endless head: %v, want a permanent ErrTooLarge", err)
	}
	if r.n > MaxHeadSize+1 {
		t.Errorf("read %d bytes of an endless head, want at most %d", r.n, MaxHeadSize+1)
	}
	if want := "object head is larger than its kind (head) allows (65537 > 65536)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	// A claimed size above the limit fails before reading.
	r = &endless{}
	if _, err := ReadLimit(r, HeadKey, 3<<30, MaxHeadSize); !errors.Is(err, ErrTooLarge) || r.n != 0 {
		t.Errorf("claimed 3 GiB: %v after %d bytes, want ErrTooLarge after none", err, r.n)
	}
	// A claim above what comes is a short body; below, too much.
	if _, err := ReadLimit(strings.NewReader("abc"), "k", 10, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("short body: %v, want io.ErrUnexpectedEOF", err)
	}
	// A claim at or below what comes only sizes the buffer.
	for _, size := range []int64{-1, 0, 3, 5} {
		if got, err := ReadLimit(strings.NewReader("abcde"), "k", size, 5); err != nil || string(got) != "abcde" {
			t.Errorf("size %d: %q, %v; want abcde", size, got, err)
		}
	}
	if _, err := ReadLimit(strings.NewReader("abcdef"), "k", -1, 5); !errors.Is(err, ErrTooLarge) {
		t.Errorf("6 bytes of at most 5: %v, want ErrTooLarge", err)
	}
	big := bytes.Repeat([]byte("z"), 300<<10) // grows past the first buffer
	if got, err := ReadLimit(bytes.NewReader(big), "k", -1, 1<<20); err != nil || !bytes.Equal(got, big) {
		t.Errorf("300 KiB of unknown size: %d bytes, %v", len(got), err)
	}
}

// TestDecodeRawBounded: a raw stored form is bounded like a zstd one, even
// when it hashes right.
func TestDecodeRawBounded(t *testing.T) {
	plain := make([]byte, MaxChunkSize+1)
	stored := append([]byte{encRaw}, plain...)
	if _, err := Decode(stored, Hash(plain)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("raw chunk of MaxChunkSize+1 bytes: %v, want ErrCorrupt", err)
	}
	if got, err := Decode(stored[:len(stored)-1], Hash(plain[:MaxChunkSize])); err != nil || len(got) != MaxChunkSize {
		t.Errorf("raw chunk of MaxChunkSize bytes: %d, %v", len(got), err)
	}
}

func TestDecodeLimit(t *testing.T) {
	zeros := make([]byte, MaxCommitSize+1)
	stored := Encode(zeros) // zstd: a few hundred bytes
	if stored[0] != encZstd || len(stored) > 1<<10 {
		t.Fatalf("zeros stored as %d, %d bytes", stored[0], len(stored))
	}
	if _, err := DecodeLimit(stored, Hash(zeros), MaxCommitSize); !errors.Is(err, ErrCorrupt) {
		t.Errorf("zstd of MaxCommitSize+1 bytes under MaxCommitSize: %v, want ErrCorrupt", err)
	}
	raw := Encode([]byte("abc"))
	if _, err := DecodeLimit(raw, Hash([]byte("abc")), 2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("raw 3 bytes under 2: %v, want ErrCorrupt", err)
	}
	if got, err := DecodeLimit(stored, Hash(zeros), MaxCommitSize+1); err != nil || len(got) != len(zeros) {
		t.Errorf("at the limit: %d bytes, %v", len(got), err)
	}
}
