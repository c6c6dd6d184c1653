package tree

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Kind names the type of an encoded object; it is the object's first byte.
type Kind byte

// Object kinds.
const (
	KindTree     Kind = 't'
	KindManifest Kind = 'm'
	KindCommit   Kind = 'c'
)

func (k Kind) String() string {
	switch k {
	case KindTree:
		return "tree"
	case KindManifest:
		return "manifest"
	case KindCommit:
		return "commit"
	}
	return fmt.Sprintf("kind(%#x)", byte(k))
}

// formatVersion is the second byte of every object. Version 2 added
// directory totals, the chunk count of manifest files, hard-link counts and
// the root's attributes in commits; version 1 objects are refused.
const formatVersion = 2

// Object is an encoded object ready to be stored: Data is the canonical
// (uncompressed) encoding and ID its hash.
type Object struct {
	Kind Kind
	ID   chunkstore.ID
	Data []byte
}

// KindOf returns the kind of the encoded object data after checking its
// header (kind and version). It does not validate the rest.
func KindOf(data []byte) (Kind, error) {
	if len(data) < 2 {
		return 0, fmt.Errorf("%w: %d-byte object", ErrCorrupt, len(data))
	}
	k := Kind(data[0])
	switch k {
	case KindTree, KindManifest, KindCommit:
	default:
		return 0, fmt.Errorf("%w: unknown object kind %#x", ErrCorrupt, data[0])
	}
	if data[1] != formatVersion {
		return 0, fmt.Errorf("%w: %s format version %d (this build reads %d)", ErrCorrupt, k, data[1], formatVersion)
	}
	return k, nil
}

// Verify checks that data hashes to id. The error wraps ErrCorrupt.
func Verify(id chunkstore.ID, data []byte) error {
	if got := chunkstore.Hash(data); got != id {
		return fmt.Errorf("%w: object %s hashes to %s", ErrCorrupt, id, got)
	}
	return nil
}

// reader decodes the wire format. The first error sticks: later reads
// return zero values, and callers check r.err at the points that matter
// (before allocating by a decoded count, and at the end).
type reader struct {
	b   []byte
	s   string // the same bytes as b, for zero-copy substrings
	off int
	err error
}

// newReader checks the header of data for kind and returns a reader after it.
func newReader(data []byte, kind Kind) (*reader, error) {
	k, err := KindOf(data)
	if err != nil {
		return nil, err
	}
	if k != kind {
		return nil, fmt.Errorf("%w: want a %s object, have a %s", ErrCorrupt, kind, k)
	}
	return &reader{b: data, off: 2}, nil
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) left() int { return len(r.b) - r.off }

// uvarint reads a minimally encoded unsigned varint.
func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	if r.off < len(r.b) && r.b[r.off] < 0x80 { // fast path: one byte
		v := uint64(r.b[r.off])
		r.off++
		return v
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	if r.b[r.off+n-1] == 0 {
		r.fail("non-minimal varint")
		return 0
	}
	r.off += n
	return v
}

// varint reads a minimally encoded zig-zag varint.
func (r *reader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// uint32 reads a uvarint that must fit in 32 bits.
func (r *reader) uint32(what string) uint32 {
	v := r.uvarint()
	if v > 1<<32-1 {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return uint32(v)
}

// count reads an element count and checks that that many elements of at
// least minSize bytes each fit in what is left, so that a corrupt count
// cannot make the caller allocate more than the object's size.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(r.left()/minSize) {
		r.fail("count %d exceeds the object", n)
		return 0
	}
	return int(n)
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("truncated")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) id() chunkstore.ID {
	var id chunkstore.ID
	if r.err != nil {
		return id
	}
	if r.left() < len(id) {
		r.fail("truncated id")
		return id
	}
	copy(id[:], r.b[r.off:])
	r.off += len(id)
	return id
}

// span reads a length-prefixed byte string of at most max bytes and returns
// its bounds in r.b.
func (r *reader) span(max int) (int, int) {
	n := r.uvarint()
	if r.err != nil {
		return 0, 0
	}
	if n > uint64(max) || n > uint64(r.left()) {
		r.fail("string of %d bytes (max %d, %d left)", n, max, r.left())
		return 0, 0
	}
	start := r.off
	r.off += int(n)
	return start, r.off
}

// str reads a length-prefixed string of at most max bytes. When r.s is set
// the result shares its memory, so decoding many names costs one copy.
func (r *reader) str(max int) string {
	a, b := r.span(max)
	if r.s != "" {
		return r.s[a:b]
	}
	return string(r.b[a:b])
}

// end fails unless every byte was read, and returns the sticky error.
func (r *reader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRefs(b []byte, refs []ChunkRef) []byte {
	b = binary.AppendUvarint(b, uint64(len(refs)))
	for _, c := range refs {
		b = append(b, c.ID[:]...)
		b = binary.AppendUvarint(b, uint64(c.Length))
	}
	return b
}

// appendStats appends s as four varints: files, dirs, bytes, chunks.
func appendStats(b []byte, s Stats) []byte {
	for _, v := range [...]uint64{s.Files, s.Dirs, s.Bytes, s.Chunks} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func (r *reader) stats() Stats {
	return Stats{Files: r.uvarint(), Dirs: r.uvarint(), Bytes: r.uvarint(), Chunks: r.uvarint()}
}

// appendXattrs appends a counted list of (name, value) strings.
func appendXattrs(b []byte, xs []Xattr) []byte {
	b = binary.AppendUvarint(b, uint64(len(xs)))
	for _, x := range xs {
		b = appendString(b, x.Name)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

// xattrs reads a counted list of xattrs (nil for none), growing with the
// xattrs decoded. Values are copied; the caller checks names and order.
func (r *reader) xattrs() []Xattr {
	n := r.count(minXattrSize)
	if r.err != nil || n == 0 {
		return nil
	}
	xs := make([]Xattr, 0, min(n, 4))
	for i := 0; i < n && r.err == nil; i++ {
		name := r.str(MaxXattrNameLen)
		a, b := r.span(MaxXattrValueLen)
		xs = append(xs, Xattr{Name: name, Value: append([]byte{}, r.b[a:b]...)})
	}
	return xs
}

// readRefs reads a counted list of chunk refs, appending them to dst.
func (r *reader) readRefs(dst []ChunkRef, n int) []ChunkRef {
	for i := 0; i < n && r.err == nil; i++ {
		id := r.id()
		l := r.uint32("chunk length")
		if r.err == nil && (l == 0 || l > chunkstore.MaxChunkSize) {
			r.fail("chunk of length %d (want 1..%d)", l, chunkstore.MaxChunkSize)
		}
		dst = append(dst, ChunkRef{ID: id, Length: l})
	}
	return dst
}

// validDevice reports whether s may name a device in a commit.
func validDevice(s string) bool {
	return s != "" && len(s) <= MaxNameLen && utf8.ValidString(s)
}
