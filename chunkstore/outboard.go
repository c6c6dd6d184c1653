package chunkstore

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"

	"lukechampine.com/blake3/guts"
)

// A chunk's ID is the BLAKE3 hash of its plaintext, and BLAKE3 is a Merkle
// tree over 1 KiB pieces. The outboard of a chunk is the chaining values
// (CVs) of its 256 KiB groups: aligned, complete subtrees of that tree (the
// last group may be short). They let a reader verify one group against the
// ID without the rest of the chunk: the group hashes to its CV, and the CVs
// combine to the ID. This is Bao's outboard mode cut at one level, small
// enough to ride along with the object as S3 user metadata (2 KiB at most):
// a ranged GET of a group returns the group's bytes and every CV at once.
// Only raw-stored chunks of more than one group carry it; a compressed
// chunk cannot be read by range anyway.
const (
	// GroupSize is the span of one outboard CV (a power of two).
	GroupSize = 256 << 10
	// maxGroups bounds the outboard (32 CVs are 1 KiB, 1,371 bytes of
	// base64): chunks of more than 8 MiB carry none.
	maxGroups = 32
	// MetaOutboard is the user-metadata name of the outboard. Its value is
	// "g<log2 GroupSize>:" and the base64 (standard, unpadded) of the CVs.
	MetaOutboard = "cloudfs-cv"
)

var groupShift = bits.TrailingZeros(GroupSize)

// outboardPrefix is the version tag of the metadata value.
var outboardPrefix = fmt.Sprintf("g%d:", groupShift)

// EncodeChunk returns Encode(plain) and the metadata to store with it: the
// outboard when the stored form is raw and plain spans 2 to 32 groups,
// else nil.
func EncodeChunk(plain []byte) ([]byte, Meta) { return encodeChunk(plain, nil) }

// EncodeChunkFrom is EncodeChunk of the plaintext buf[1:], whose first byte
// is free: a chunk stored raw is then buf itself, header byte set, rather
// than a copy of the plaintext (the uploader's copies of 1 MiB per chunk
// were a tenth of its CPU). buf must not be used otherwise afterwards.
func EncodeChunkFrom(buf []byte) ([]byte, Meta) { return encodeChunk(buf[1:], buf) }

func encodeChunk(plain, buf []byte) ([]byte, Meta) {
	stored := encodeWith(plain, buf)
	if stored[0] != encRaw || len(plain) <= GroupSize || len(plain) > maxGroups*GroupSize {
		return stored, nil
	}
	n := numGroups(int64(len(plain)))
	raw := make([]byte, 0, n*32)
	for i := range n {
		lo := i * GroupSize
		cv := groupCV(plain[lo:min(lo+GroupSize, len(plain))], uint64(lo))
		raw = append(raw, cvBytes(cv)...)
	}
	return stored, Meta{MetaOutboard: outboardPrefix + base64.RawStdEncoding.EncodeToString(raw)}
}

func numGroups(size int64) int { return int((size + GroupSize - 1) / GroupSize) }

// GroupSpan returns the whole groups that cover [off, off+n) of a chunk:
// the ranged read that VerifyGroups can check.
func GroupSpan(off, n int64) (start, end int64) {
	return off &^ (GroupSize - 1), (off + n + GroupSize - 1) &^ (GroupSize - 1)
}

// VerifyGroups checks data, the plaintext of chunk id from offset start
// (a multiple of GroupSize) to the end of a group or of the chunk, against
// id, with the outboard in meta; size is the chunk's plaintext length. It
// reports ok false, without an error, when meta holds no outboard of this
// format (the chunk must be read whole); an outboard or data that does not
// match id is an error matching ErrCorrupt.
func VerifyGroups(id ID, size int64, meta Meta, start int64, data []byte) (ok bool, err error) {
	v, found := meta[MetaOutboard]
	if !found || !strings.HasPrefix(v, outboardPrefix) {
		return false, nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("chunk %s: outboard: %s: %w", id, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	raw, err := base64.RawStdEncoding.DecodeString(v[len(outboardPrefix):])
	if err != nil {
		return false, bad("%v", err)
	}
	n := numGroups(size)
	if size <= GroupSize || n > maxGroups || len(raw) != n*32 {
		return false, bad("%d bytes of CVs for a chunk of %d bytes", len(raw), size)
	}
	cvs := make([][8]uint32, n)
	for i := range cvs {
		cvs[i] = bytesCV(raw[i*32:])
	}
	if cvBytes32(rootOf(cvs, size)) != id {
		return false, bad("the CVs do not combine to the ID")
	}
	if start%GroupSize != 0 || start < 0 || start >= size {
		return false, fmt.Errorf("chunk %s: verify groups at %d of %d bytes: not a group start", id, start, size)
	}
	end := min(start+int64(len(data)), size)
	if end < size && (end-start)%GroupSize != 0 || len(data) == 0 || start+int64(len(data)) > size {
		return false, bad("%d bytes at %d are not whole groups of a %d-byte chunk", len(data), start, size)
	}
	for lo := start; lo < end; lo += GroupSize {
		g := data[lo-start : min(lo+GroupSize, end)-start]
		if groupCV(g, uint64(lo)) != cvs[lo/GroupSize] {
			return false, bad("group at %d does not match its CV", lo)
		}
	}
	return true, nil
}

// rootOf combines the CVs of the groups of a size-byte input into its
// BLAKE3 hash: BLAKE3's left subtree always holds the largest power of two
// of 1 KiB pieces that leaves some for the right one, so the tree over the
// groups is the same recursion at group granularity.
func rootOf(cvs [][8]uint32, size int64) [8]uint32 {
	var rec func(pos, n int64, flags uint32) [8]uint32
	rec = func(pos, n int64, flags uint32) [8]uint32 {
		if n <= GroupSize {
			return cvs[pos/GroupSize] // never the root: size > GroupSize
		}
		mid := int64(1) << (bits.Len64(uint64(n-1)) - 1)
		l, r := rec(pos, mid, 0), rec(pos+mid, n-mid, 0)
		return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, flags))
	}
	return rec(0, size, guts.FlagRoot)
}

// groupCV is the chaining value of the (non-root) subtree over p, which
// starts at byte off of the input (a multiple of 1 KiB) and is at most
// GroupSize long. It follows compressGroup of lukechampine.com/blake3/bao.
func groupCV(p []byte, off uint64) [8]uint32 {
	counter := off / guts.ChunkSize
	var stack [64][8]uint32
	var sc uint64
	push := func(cv [8]uint32) {
		i := 0
		for sc&(1<<i) != 0 {
			cv = guts.ChainingValue(guts.ParentNode(stack[i], cv, &guts.IV, 0))
			i++
		}
		stack[i] = cv
		sc++
	}
	var buf [guts.MaxSIMD * guts.ChunkSize]byte
	var buflen int
	for len(p) > 0 {
		if buflen == len(buf) {
			push(guts.ChainingValue(guts.CompressBuffer(&buf, buflen, &guts.IV, counter+sc*guts.MaxSIMD, 0)))
			buflen = 0
		}
		c := copy(buf[buflen:], p)
		buflen += c
		p = p[c:]
	}
	node := guts.CompressBuffer(&buf, buflen, &guts.IV, counter+sc*guts.MaxSIMD, 0)
	for i := bits.TrailingZeros64(sc); i < bits.Len64(sc); i++ {
		if sc&(1<<i) != 0 {
			node = guts.ParentNode(stack[i], guts.ChainingValue(node), &guts.IV, 0)
		}
	}
	return guts.ChainingValue(node)
}

func cvBytes(cv [8]uint32) []byte {
	b := cvBytes32(cv)
	return b[:]
}

func cvBytes32(cv [8]uint32) (b ID) {
	for i, w := range cv {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

func bytesCV(b []byte) (cv [8]uint32) {
	for i := range cv {
		cv[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return cv
}
