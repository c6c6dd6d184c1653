package tree

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Entry flag bits (see the package doc).
const (
	flagXattrs   = 1 << 0
	flagManifest = 1 << 1
	flagLink     = 1 << 2
	flagPacked   = 1 << 3
	flagsKnown   = flagXattrs | flagManifest | flagLink | flagPacked
)

const (
	minEntrySize = 8  // name "x", type, flags, mode, uid, gid, mtime
	minRefSize   = 33 // ID and a one-byte length
	minXattrSize = 3  // one-byte name and an empty value
	minLocSize   = 35 // ref, pack ID, offset and length of one byte each
)

// initialEntries and initialRefs are the capacities decoders start from
// before growing with what they decode (by four times what has decoded, to
// keep the copies few): a decoded count only says how much may follow, so
// it sizes nothing beyond them.
const (
	initialEntries = 64
	initialRefs    = 256
)

// EmptyTreeID is the ID of the tree of an empty directory.
var EmptyTreeID = mustEmptyID()

func mustEmptyID() chunkstore.ID {
	_, id, err := Encode(&Tree{})
	if err != nil {
		panic(err) // unreachable: the empty tree is valid
	}
	return id
}

// isEmptyRoot reports whether id stands for an empty directory without
// being loaded: the zero ID (no tree) or EmptyTreeID.
func isEmptyRoot(id chunkstore.ID) bool { return id.IsZero() || id == EmptyTreeID }

// Encode returns the canonical encoding of t and its ID. It first sorts
// t.Entries and every entry's Xattrs by name, in place, when they are not
// sorted already; then it validates every entry (Entry.Check) and rejects
// duplicate names, a tree of more than MaxTreeEntries entries, and one
// whose encoding would exceed
// chunkstore.MaxTreeSize (a reader refuses it). Errors wrap ErrInvalid. The
// same directory contents give the same bytes whatever the input order.
func Encode(t *Tree) ([]byte, chunkstore.ID, error) {
	if len(t.Entries) > MaxTreeEntries {
		return nil, chunkstore.ID{}, fmt.Errorf("encode tree: %w: %d entries (max %d)", ErrInvalid, len(t.Entries), MaxTreeEntries)
	}
	t.normalize()
	size := 3
	for i := range t.Entries {
		e := &t.Entries[i]
		if err := e.Check(); err != nil {
			return nil, chunkstore.ID{}, fmt.Errorf("encode tree: %w", err)
		}
		if i > 0 && t.Entries[i-1].Name == e.Name {
			return nil, chunkstore.ID{}, fmt.Errorf("encode tree: %w: duplicate name %q", ErrInvalid, e.Name)
		}
		size += 16 + len(e.Name) + len(e.Target) + 38*len(e.Chunks)
		if e.Type == TypeDir || !e.Manifest.IsZero() {
			size += chunkstore.IDSize + 4*binary.MaxVarintLen64
		}
		if e.LinkID != 0 {
			size += binary.MaxVarintLen64 + binary.MaxVarintLen32
		}
		size += 48 * len(e.Locs)
		for _, x := range e.Xattrs {
			size += 6 + len(x.Name) + len(x.Value)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, byte(KindTree), formatVersion)
	b = binary.AppendUvarint(b, uint64(len(t.Entries)))
	for i := range t.Entries {
		b = appendEntry(b, &t.Entries[i])
	}
	if len(b) > chunkstore.MaxTreeSize {
		return nil, chunkstore.ID{}, fmt.Errorf("encode tree: %w: %d entries encode to %d bytes (max %d)",
			ErrInvalid, len(t.Entries), len(b), chunkstore.MaxTreeSize)
	}
	return b, chunkstore.Hash(b), nil
}

func appendEntry(b []byte, e *Entry) []byte {
	var flags byte
	if len(e.Xattrs) > 0 {
		flags |= flagXattrs
	}
	if !e.Manifest.IsZero() {
		flags |= flagManifest
	}
	if e.LinkID != 0 {
		flags |= flagLink
	}
	if len(e.Locs) > 0 {
		flags |= flagPacked
	}
	b = appendString(b, e.Name)
	b = append(b, byte(e.Type), flags)
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.MtimeNs)
	switch e.Type {
	case TypeFile:
		b = binary.AppendUvarint(b, e.Size)
		if flags&flagManifest != 0 {
			b = append(b, e.Manifest[:]...)
			b = binary.AppendUvarint(b, e.ManifestChunks)
		} else {
			b = appendRefs(b, e.Chunks)
		}
	case TypeDir:
		b = append(b, e.Subtree[:]...)
		b = appendStats(b, e.Totals)
	case TypeSymlink:
		b = appendString(b, e.Target)
	case TypeCharDev, TypeBlockDev:
		b = binary.AppendUvarint(b, e.Rdev)
	}
	if flags&flagXattrs != 0 {
		b = appendXattrs(b, e.Xattrs)
	}
	if flags&flagLink != 0 {
		b = binary.AppendUvarint(b, e.LinkID)
		b = binary.AppendUvarint(b, uint64(e.Nlink))
	}
	if flags&flagPacked != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Locs)))
		for _, l := range e.Locs {
			b = binary.AppendUvarint(b, uint64(l.Ref))
			b = append(b, l.Pack[:]...)
			b = binary.AppendUvarint(b, l.Off)
			b = binary.AppendUvarint(b, uint64(l.Len))
		}
	}
	return b
}

// Decode parses an encoded tree and validates it strictly: every rule that
// Encode enforces, sorted unique names, canonical varints, no trailing bytes,
// at most chunkstore.MaxTreeSize bytes. A malformed object is an error
// wrapping ErrCorrupt, never a panic. Memory grows with the entries
// actually decoded, not with the count the object claims. The result does
// not share memory with data.
func Decode(data []byte) (*Tree, error) {
	r, err := newReader(data, KindTree)
	if err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	if len(data) > chunkstore.MaxTreeSize {
		return nil, fmt.Errorf("decode tree: %w: %d bytes (max %d)", ErrCorrupt, len(data), chunkstore.MaxTreeSize)
	}
	n := r.count(minEntrySize)
	if r.err != nil {
		return nil, fmt.Errorf("decode tree: %w", r.err)
	}
	if n > MaxTreeEntries {
		return nil, fmt.Errorf("decode tree: %w: %d entries (max %d)", ErrCorrupt, n, MaxTreeEntries)
	}
	r.s = string(data) // one copy; names and targets are substrings of it
	// The entries, and the backing array shared by their inline chunks,
	// grow as entries decode (from room for a small directory's).
	t := &Tree{Entries: make([]Entry, 0, min(n, initialEntries))}
	refs := make([]ChunkRef, 0, min(2*n, initialRefs))
	for i := 0; i < n && r.err == nil; i++ {
		if len(t.Entries) == cap(t.Entries) {
			// Four times what decoded so far, at most what is claimed.
			t.Entries = slices.Grow(t.Entries, min(n, 4*len(t.Entries))-len(t.Entries))
		}
		t.Entries = append(t.Entries, Entry{})
		e := &t.Entries[i]
		refs = r.entry(e, refs)
		if r.err != nil {
			break
		}
		if err := e.check(); err != nil {
			r.fail("entry %d (%q): %v", i, e.Name, err)
		} else if i > 0 && t.Entries[i-1].Name >= e.Name {
			r.fail("entry %d (%q): names not sorted or not unique", i, e.Name)
		}
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("decode tree: %w", err)
	}
	return t, nil
}

// entry reads one entry into e. Inline chunk refs are appended to refs and
// e.Chunks is a capacity-limited window of it.
func (r *reader) entry(e *Entry, refs []ChunkRef) []ChunkRef {
	e.Name = r.str(MaxNameLen)
	e.Type = Type(r.byte())
	flags := r.byte()
	if flags&^flagsKnown != 0 {
		r.fail("unknown flags %#x", flags)
	}
	e.Mode = r.uint32("mode")
	e.UID = r.uint32("uid")
	e.GID = r.uint32("gid")
	e.MtimeNs = r.varint()
	if flags&flagManifest != 0 && e.Type != TypeFile {
		r.fail("manifest flag on a %s", e.Type)
	}
	switch e.Type {
	case TypeFile:
		e.Size = r.uvarint()
		if flags&flagManifest != 0 {
			if e.Manifest = r.id(); r.err == nil && e.Manifest.IsZero() {
				r.fail("zero manifest id")
			}
			e.ManifestChunks = r.uvarint()
			break
		}
		n := r.count(minRefSize)
		start := len(refs)
		refs = r.readRefs(refs, n)
		if n > 0 {
			e.Chunks = refs[start:len(refs):len(refs)]
		}
	case TypeDir:
		e.Subtree = r.id()
		e.Totals = r.stats()
	case TypeSymlink:
		e.Target = r.str(MaxTargetLen)
	case TypeCharDev, TypeBlockDev:
		e.Rdev = r.uvarint()
	}
	if flags&flagXattrs != 0 {
		if e.Xattrs = r.xattrs(); r.err == nil && len(e.Xattrs) == 0 {
			r.fail("xattr flag with no xattrs")
		}
	}
	if flags&flagLink != 0 {
		if e.LinkID = r.uvarint(); r.err == nil && e.LinkID == 0 {
			r.fail("link flag with link id 0")
		}
		e.Nlink = r.uint32("link count")
	}
	if flags&flagPacked != 0 {
		if flags&flagManifest == 0 && len(e.Chunks) == 0 || e.Type != TypeFile {
			r.fail("packed flag on an entry without chunks")
		}
		n := r.count(minLocSize)
		if r.err == nil && n == 0 {
			r.fail("packed flag with no locations")
		}
		if r.err == nil {
			e.Locs = make([]Loc, 0, min(n, initialRefs))
		}
		for i := 0; i < n && r.err == nil; i++ {
			ref := r.uint32("location ref")
			pack := r.id()
			off := r.uvarint()
			e.Locs = append(e.Locs, Loc{Ref: ref, Pack: pack, Off: off, Len: r.uint32("location length")})
		}
	}
	return refs
}
