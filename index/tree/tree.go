package tree

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// ErrCorrupt is returned (wrapped) when an object cannot be decoded: it is
// truncated, has an unknown kind or version, or breaks a format rule. Check
// it with errors.Is.
var ErrCorrupt = errors.New("corrupt object")

// ErrInvalid is returned (wrapped) when a value to be encoded or added to a
// Dir breaks a format rule (a bad name, a file with both chunks and a
// manifest, ...). Check it with errors.Is.
var ErrInvalid = errors.New("invalid tree value")

// Format limits.
const (
	// MaxNameLen is the longest entry name in bytes (NAME_MAX).
	MaxNameLen = 255
	// MaxTargetLen is the longest symlink target in bytes (PATH_MAX - 1).
	MaxTargetLen = 4095
	// MaxXattrNameLen is the longest extended attribute name in bytes.
	MaxXattrNameLen = 255
	// MaxXattrValueLen is the largest extended attribute value in bytes.
	MaxXattrValueLen = 64 << 10
	// MaxInlineChunks is the largest number of chunk refs stored in a tree
	// entry. A file with more chunks stores them in a manifest object.
	MaxInlineChunks = 64
	// MaxTreeEntries is the most entries a tree may hold: a decoded entry
	// costs about 240 bytes of memory, so a hostile tree of minimal
	// entries within MaxTreeSize could otherwise cost 2 GB to decode.
	MaxTreeEntries = 1 << 20
	// ModeMask covers the bits of Entry.Mode: permissions, setuid, setgid
	// and sticky.
	ModeMask = 0o7777
)

// Type is the kind of file an entry names.
type Type uint8

// Entry types. The zero Type is invalid.
const (
	TypeFile Type = iota + 1
	TypeDir
	TypeSymlink
	TypeFIFO
	TypeSocket
	TypeCharDev
	TypeBlockDev
)

var typeNames = [...]string{"invalid", "file", "dir", "symlink", "fifo", "socket", "chardev", "blockdev"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func (t Type) valid() bool { return t >= TypeFile && t <= TypeBlockDev }

// ChunkRef is one chunk of a file: its ID and its length in bytes (> 0).
type ChunkRef struct {
	ID     chunkstore.ID
	Length uint32
}

// Loc says where one of a file's chunks is when it is in a pack rather
// than an object of its own (chunkstore.Loc): bytes [Off, Off+Len) of pack
// Pack hold the stored form of the file's chunk number Ref (in its inline
// chunk list or its manifest). Locations are in the entry, never in a
// manifest, so that equal content has one manifest whatever pack a machine
// put its chunks in.
type Loc struct {
	Ref  uint32
	Pack chunkstore.ID
	Off  uint64
	Len  uint32
}

// ChunkLoc returns l as a chunkstore.Loc.
func (l Loc) ChunkLoc() chunkstore.Loc {
	return chunkstore.Loc{Pack: l.Pack, Off: int64(l.Off), Len: int64(l.Len)}
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one name in a directory. Which content fields may be set depends
// on Type; all others must be zero:
//
//   - TypeFile: Size, and either Chunks (at most MaxInlineChunks refs whose
//     lengths sum to Size) or Manifest with ManifestChunks (the file has
//     more chunks, that many; Size is their total). An empty file has
//     neither. Locs, sorted by Ref and unique, place the packed ones
//     among those chunks; a chunk without one is an object of its own.
//   - TypeDir: Subtree, the ID of the directory's tree (never zero), and
//     Totals, what that subtree holds (Totals.Dirs >= 1: itself).
//   - TypeSymlink: Target (1..MaxTargetLen bytes).
//   - TypeCharDev, TypeBlockDev: Rdev.
//
// Mode, UID, GID, MtimeNs and Xattrs apply to every type. LinkID and Nlink
// describe a hard link, for non-directories only, both set or both zero:
// entries of one commit with the same LinkID are one inode (and so have
// equal content), and Nlink is that inode's link count in the commit
// (>= 2), so a reader that has found only some of the names (the others
// are in directories it has not loaded) still reports the right count. The
// writer picks a LinkID that stays the same for the inode's life and is
// unlikely to collide across devices, e.g. the first 8 bytes of
// BLAKE3(device ID, inode number). It is only a hint: a merge can give two
// entries of one group different content, so a reader links entries only
// when their content is equal too; a reader that ignores it sees
// independent copies, which is safe.
type Entry struct {
	Name           string
	Type           Type
	Mode           uint32 // permission bits plus setuid, setgid, sticky (ModeMask)
	UID, GID       uint32
	MtimeNs        int64 // modification time, ns since the Unix epoch
	Size           uint64
	Rdev           uint64
	Xattrs         []Xattr // sorted by Name, unique
	Target         string
	Chunks         []ChunkRef
	Locs           []Loc // packed chunks among Chunks or the manifest's
	Manifest       chunkstore.ID
	ManifestChunks uint64 // the number of chunk refs in Manifest
	Subtree        chunkstore.ID
	Totals         Stats // directories: the totals of Subtree
	LinkID         uint64
	Nlink          uint32
}

// Tree is one directory: its entries sorted by Name (bytewise), names unique.
type Tree struct {
	Entries []Entry
}

// Find returns the entry named name, or nil. t must be sorted (as Decode
// returns it).
func (t *Tree) Find(name string) *Entry {
	i, ok := slices.BinarySearchFunc(t.Entries, name, func(e Entry, n string) int {
		return strings.Compare(e.Name, n)
	})
	if !ok {
		return nil
	}
	return &t.Entries[i]
}

// CheckName reports whether name may be an entry name: 1..MaxNameLen bytes,
// no '/' or NUL, not "." or "..". The error wraps ErrInvalid.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalid)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: name of %d bytes (max %d)", ErrInvalid, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w: name %q", ErrInvalid, name)
	case strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: name %q contains '/' or NUL", ErrInvalid, name)
	}
	return nil
}

// Check validates e against the rules of the Entry type. Xattrs must already
// be sorted. The error wraps ErrInvalid and names the entry.
func (e *Entry) Check() error {
	if err := e.check(); err != nil {
		return fmt.Errorf("entry %q: %w", e.Name, err)
	}
	return nil
}

func (e *Entry) check() error {
	if err := CheckName(e.Name); err != nil {
		return err
	}
	if !e.Type.valid() {
		return fmt.Errorf("%w: unknown type %d", ErrInvalid, e.Type)
	}
	if e.Mode&^ModeMask != 0 {
		return fmt.Errorf("%w: mode %#o has bits outside %#o", ErrInvalid, e.Mode, ModeMask)
	}
	if e.Type != TypeFile && (e.Size != 0 || len(e.Chunks) != 0 || len(e.Locs) != 0 || !e.Manifest.IsZero() || e.ManifestChunks != 0) {
		return fmt.Errorf("%w: %s with size, chunks or manifest", ErrInvalid, e.Type)
	}
	if (e.Type == TypeDir) == e.Subtree.IsZero() {
		return fmt.Errorf("%w: %s: subtree must be set exactly for directories", ErrInvalid, e.Type)
	}
	if (e.Type == TypeSymlink) == (e.Target == "") {
		return fmt.Errorf("%w: %s: target must be set exactly for symlinks", ErrInvalid, e.Type)
	}
	if len(e.Target) > MaxTargetLen {
		return fmt.Errorf("%w: symlink target of %d bytes (max %d)", ErrInvalid, len(e.Target), MaxTargetLen)
	}
	if e.Rdev != 0 && e.Type != TypeCharDev && e.Type != TypeBlockDev {
		return fmt.Errorf("%w: %s with rdev", ErrInvalid, e.Type)
	}
	if e.Type != TypeDir && e.Totals != (Stats{}) || e.Type == TypeDir && e.Totals.Dirs == 0 {
		return fmt.Errorf("%w: %s: totals must be set exactly for directories (with Dirs >= 1)", ErrInvalid, e.Type)
	}
	if e.LinkID != 0 && e.Type == TypeDir {
		return fmt.Errorf("%w: directory with a link id", ErrInvalid)
	}
	if (e.LinkID == 0) != (e.Nlink == 0) || e.Nlink == 1 {
		return fmt.Errorf("%w: link id %d with link count %d (want both zero, or a link id and a count >= 2)", ErrInvalid, e.LinkID, e.Nlink)
	}
	if e.Type == TypeFile {
		if err := e.checkContent(); err != nil {
			return err
		}
	}
	return checkXattrs(e.Xattrs)
}

func (e *Entry) checkContent() error {
	if !e.Manifest.IsZero() {
		if len(e.Chunks) != 0 {
			return fmt.Errorf("%w: file with both chunks and a manifest", ErrInvalid)
		}
		if e.ManifestChunks <= MaxInlineChunks || e.ManifestChunks > e.Size {
			// More than MaxInlineChunks chunks of at least one byte each.
			return fmt.Errorf("%w: file of %d bytes with a manifest of %d chunks", ErrInvalid, e.Size, e.ManifestChunks)
		}
		return checkLocs(e.Locs, e.ManifestChunks, nil)
	}
	if e.ManifestChunks != 0 {
		return fmt.Errorf("%w: manifest chunk count without a manifest", ErrInvalid)
	}
	if len(e.Chunks) > MaxInlineChunks {
		return fmt.Errorf("%w: %d inline chunks (max %d; use a manifest)", ErrInvalid, len(e.Chunks), MaxInlineChunks)
	}
	sum, err := sumChunks(e.Chunks)
	if err != nil {
		return err
	}
	if sum != e.Size {
		return fmt.Errorf("%w: chunk lengths sum to %d, size is %d", ErrInvalid, sum, e.Size)
	}
	return checkLocs(e.Locs, uint64(len(e.Chunks)), e.Chunks)
}

// checkLocs checks a file's locations against its n chunk refs (refs: the
// inline ones, nil for a manifest's, checked by CheckLocs once it is
// read): ascending unique refs below n, each inside a pack's bounds, of a
// chunk small enough to be packed (stored in at most one byte more than
// its length).
func checkLocs(locs []Loc, n uint64, refs []ChunkRef) error {
	for i, l := range locs {
		if uint64(l.Ref) >= n || i > 0 && locs[i-1].Ref >= l.Ref {
			return fmt.Errorf("%w: location %d names chunk %d (of %d; ascending, unique)", ErrInvalid, i, l.Ref, n)
		}
		if err := l.ChunkLoc().Check(); err != nil {
			return fmt.Errorf("%w: location %d: %d+%d in pack %s", ErrInvalid, i, l.Off, l.Len, l.Pack)
		}
		if refs != nil {
			if err := checkPackedRef(refs[l.Ref], l); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkPackedRef(c ChunkRef, l Loc) error {
	if c.Length > chunkstore.PackChunkMax || uint64(l.Len) > uint64(c.Length)+chunkstore.StoredOverhead {
		return fmt.Errorf("%w: chunk %d of %d bytes located in %d bytes of a pack (max %d, and one byte more than the chunk)",
			ErrInvalid, l.Ref, c.Length, l.Len, chunkstore.PackChunkMax)
	}
	return nil
}

// CheckLocs checks the locations of a file entry with a manifest against
// the manifest's chunk refs, once it is read. The error wraps ErrCorrupt.
func CheckLocs(locs []Loc, refs []ChunkRef) error {
	for _, l := range locs {
		if uint64(l.Ref) >= uint64(len(refs)) {
			return fmt.Errorf("%w: location of chunk %d of a manifest of %d", ErrCorrupt, l.Ref, len(refs))
		}
		if err := checkPackedRef(refs[l.Ref], l); err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	return nil
}

// sumChunks returns the total length of refs; every length must be > 0 and
// at most chunkstore.MaxChunkSize (no chunk can be longer).
func sumChunks(refs []ChunkRef) (uint64, error) {
	var sum uint64
	for i, c := range refs {
		if c.Length == 0 {
			return 0, fmt.Errorf("%w: chunk %d has length 0", ErrInvalid, i)
		}
		if c.Length > chunkstore.MaxChunkSize {
			return 0, fmt.Errorf("%w: chunk %d has length %d (max %d)", ErrInvalid, i, c.Length, chunkstore.MaxChunkSize)
		}
		sum += uint64(c.Length) // cannot overflow: len(refs) * 2^32 < 2^64
	}
	return sum, nil
}

func checkXattrs(xs []Xattr) error {
	for i, x := range xs {
		if x.Name == "" || len(x.Name) > MaxXattrNameLen || strings.IndexByte(x.Name, 0) >= 0 {
			return fmt.Errorf("%w: xattr name %q", ErrInvalid, x.Name)
		}
		if len(x.Value) > MaxXattrValueLen {
			return fmt.Errorf("%w: xattr %q value of %d bytes (max %d)", ErrInvalid, x.Name, len(x.Value), MaxXattrValueLen)
		}
		if i > 0 && xs[i-1].Name >= x.Name {
			return fmt.Errorf("%w: xattrs not sorted or not unique at %q", ErrInvalid, x.Name)
		}
	}
	return nil
}

// Equal reports whether e and o are the same entry: every field equal (a nil
// and an empty slice are equal). Equal entries encode to the same bytes.
func (e *Entry) Equal(o *Entry) bool {
	return e.Name == o.Name && e.sameMeta(o) && e.sameContent(o)
}

// sameContent compares what the entry's data is: type, size, chunks and
// their locations, manifest, subtree and its totals, target, rdev and the
// hard link.
func (e *Entry) sameContent(o *Entry) bool {
	return e.Type == o.Type && e.Size == o.Size && e.Manifest == o.Manifest &&
		e.ManifestChunks == o.ManifestChunks && e.Subtree == o.Subtree && e.Totals == o.Totals &&
		e.Target == o.Target && e.Rdev == o.Rdev && e.LinkID == o.LinkID && e.Nlink == o.Nlink &&
		slices.Equal(e.Chunks, o.Chunks) && slices.Equal(e.Locs, o.Locs)
}

// sameMeta compares the attributes: mode, owner, mtime and xattrs.
func (e *Entry) sameMeta(o *Entry) bool {
	return e.Mode == o.Mode && e.UID == o.UID && e.GID == o.GID && e.MtimeNs == o.MtimeNs &&
		xattrsEqual(e.Xattrs, o.Xattrs)
}

func xattrsEqual(a, b []Xattr) bool {
	return slices.EqualFunc(a, b, func(x, y Xattr) bool {
		return x.Name == y.Name && bytes.Equal(x.Value, y.Value)
	})
}

// normalize sorts t.Entries by name and each entry's Xattrs by name, in
// place, when they are not sorted already.
func (t *Tree) normalize() {
	byName := func(a, b Entry) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(t.Entries, byName) {
		slices.SortFunc(t.Entries, byName)
	}
	for i := range t.Entries {
		sortXattrs(t.Entries[i].Xattrs)
	}
}

func sortXattrs(xs []Xattr) {
	byName := func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(xs, byName) {
		slices.SortFunc(xs, byName)
	}
}
