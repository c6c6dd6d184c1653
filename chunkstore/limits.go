package chunkstore

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Every object read from a Store is untrusted, and so is every size a store
// reports (a file's length, a Content-Length, a Content-Range total). So
// that no read sizes a buffer by such a number, each kind of object has a
// bound, and readers enforce it while reading: they hold at most the bound
// plus one byte before failing with ErrTooLarge.
//
// Terms:
//
//   - kind: what an object is, told by its key (ObjectKind): the volume
//     settings (VolumeKey), head (HeadKey), a device record
//     (DevicesPrefix), a commit (CommitsPrefix), a tree or manifest
//     (TreesPrefix), a chunk (ChunksPrefix), a pack (PacksPrefix), a gc
//     mark (GCPrefix); any
//     other key is of kind "object".
//   - plaintext bound: the most bytes the decoded object may have:
//     MaxHeadSize, MaxVolumeSize, MaxDeviceSize (these three are stored as
//     they are), MaxCommitSize, MaxTreeSize and MaxChunkSize (these are in
//     the stored form), MaxPackSize (stored forms end to end). The encoders refuse to produce more, so a bound never
//     rejects an object a correct writer made.
//   - stored bound (MaxObjectSize): the most bytes the object may have in
//     the store. For the stored form it is the plaintext bound plus
//     StoredOverhead: Encode stores raw when zstd does not save, and a delta
//     is kept only when it is smaller than that. An object of kind "object"
//     has the largest bound of all, a chunk's.
const (
	// MaxHeadSize bounds head (a hex commit id; the parser is stricter).
	MaxHeadSize = 64 << 10
	// MaxVolumeSize bounds the volume settings (a small JSON object).
	MaxVolumeSize = 64 << 10
	// MaxDeviceSize bounds a device record (a small JSON object).
	MaxDeviceSize = 64 << 10
	// MaxMarkSize bounds a gc mark: a small header and 33 bytes for each
	// object it names, so about two million objects.
	MaxMarkSize = 64 << 20
	// MaxCommitSize bounds the plaintext of a commit: three IDs, a device
	// name, some varints and the root's extended attributes.
	MaxCommitSize = 1 << 20
	// MaxTreeSize bounds the plaintext of a tree or a manifest: the most a
	// stored-form object inflates to (Decode), so a directory of about a
	// million entries, or a manifest of about 1.8 million chunk refs.
	MaxTreeSize = MaxChunkSize
	// StoredOverhead is what the stored form may add to a plaintext: the
	// one-byte header of a raw object.
	StoredOverhead = 1
)

// ErrTooLarge is returned (wrapped, inside a Permanent: re-reading does not
// shrink the object) when an object is larger than its kind allows.
var ErrTooLarge = errors.New("object larger than its kind allows")

// ObjectKind names the kind of the object under key (see the terms above):
// "settings", "head", "device record", "commit", "tree", "chunk", "pack",
// "gc mark" or "object".
func ObjectKind(key string) string {
	switch {
	case key == VolumeKey:
		return "settings"
	case key == HeadKey:
		return "head"
	case strings.HasPrefix(key, DevicesPrefix):
		return "device record"
	case strings.HasPrefix(key, CommitsPrefix):
		return "commit"
	case strings.HasPrefix(key, TreesPrefix):
		return "tree"
	case strings.HasPrefix(key, ChunksPrefix):
		return "chunk"
	case strings.HasPrefix(key, PacksPrefix):
		return "pack"
	case strings.HasPrefix(key, GCPrefix):
		return "gc mark"
	}
	return "object"
}

// MaxObjectSize returns the stored bound of the object under key: the
// most bytes a read of it may return.
func MaxObjectSize(key string) int64 {
	switch ObjectKind(key) {
	case "settings":
		return MaxVolumeSize
	case "head":
		return MaxHeadSize
	case "device record":
		return MaxDeviceSize
	case "commit":
		return MaxCommitSize + StoredOverhead
	case "tree":
		return MaxTreeSize + StoredOverhead
	case "pack":
		return MaxPackSize
	case "gc mark":
		return MaxMarkSize
	}
	return MaxChunkSize + StoredOverhead
}

// TooLarge returns the error for the object under key found to hold n
// bytes (at least; a reader stops at max+1) when it may hold max.
func TooLarge(key string, n, max int64) error {
	return &Permanent{Err: fmt.Errorf("object %s is larger than its kind (%s) allows (%d > %d): %w",
		key, ObjectKind(key), n, max, ErrTooLarge)}
}

// ReadLimit reads all of r, the bytes of the object under key, which may
// hold at most limit bytes (MaxObjectSize(key) for a whole object, the
// length asked for a range): more is TooLarge, found after reading at most
// limit+1 bytes. size is what the store claims r holds (-1: unknown): a
// claim above limit fails at once, a body that ends before the claim is
// io.ErrUnexpectedEOF, and otherwise the claim only sizes the buffer,
// never beyond limit.
func ReadLimit(r io.Reader, key string, size, limit int64) ([]byte, error) {
	if size > limit {
		return nil, TooLarge(key, size, limit)
	}
	c := size
	if c < 0 {
		c = min(limit, 64<<10) // grown as the bytes come
	}
	buf := make([]byte, 0, c+1) // room to see EOF, or the byte too many
	lr := io.LimitReader(r, limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if int64(len(buf)) > limit {
		return nil, TooLarge(key, max(size, int64(len(buf))), limit)
	}
	if int64(len(buf)) < size {
		return nil, io.ErrUnexpectedEOF
	}
	return buf, nil
}
