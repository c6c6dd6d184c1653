package tree

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// MaxParents is the most parents a commit has: two, for a merge.
const MaxParents = 2

// RootAttrs are the attributes of the root directory, which has no entry
// of its own: a commit carries them beside the root tree's ID.
type RootAttrs struct {
	Mode     uint32 // permission bits plus setuid, setgid, sticky (ModeMask)
	UID, GID uint32
	MtimeNs  int64   // modification time, ns since the Unix epoch
	Xattrs   []Xattr // sorted by Name, unique
}

// Equal reports whether a and o are the same attributes (a nil and an
// empty Xattrs are equal).
func (a *RootAttrs) Equal(o *RootAttrs) bool {
	return a.Mode == o.Mode && a.UID == o.UID && a.GID == o.GID && a.MtimeNs == o.MtimeNs &&
		xattrsEqual(a.Xattrs, o.Xattrs)
}

// Commit is one version of the volume.
//
// Encoding (after the header 'c', 2): root ID, parent count (0..MaxParents)
// and the parent IDs in order, device string, time (zig-zag varint ns),
// generation, then Files, Dirs, Bytes, Chunks as varints, then the root's
// attributes: mode, uid, gid, mtime (zig-zag) and an xattr count (may be 0)
// with (name string, value string) pairs sorted by name.
type Commit struct {
	Root       chunkstore.ID   // root tree; never zero
	Parents    []chunkstore.ID // distinct, non-zero; first the commit this one was built on, then the merged one
	Device     string          // name of the device that wrote it: 1..255 bytes of UTF-8
	TimeNs     int64           // wall-clock time of the commit, ns since the Unix epoch
	Generation uint64          // 1 without parents, else NextGeneration of the parents
	Stats      Stats           // the root tree's totals (Dirs >= 1: the root)
	RootAttrs  RootAttrs
}

// NextGeneration returns the generation of a commit whose parents are
// parents: one more than the largest parent generation, or 1 for none.
func NextGeneration(parents ...*Commit) uint64 {
	var g uint64
	for _, p := range parents {
		g = max(g, p.Generation)
	}
	return g + 1
}

func (c *Commit) check() error {
	switch {
	case c.Root.IsZero():
		return fmt.Errorf("%w: zero root", ErrInvalid)
	case len(c.Parents) > MaxParents:
		return fmt.Errorf("%w: %d parents (max %d)", ErrInvalid, len(c.Parents), MaxParents)
	case !validDevice(c.Device):
		return fmt.Errorf("%w: device %q (want 1..%d bytes of UTF-8)", ErrInvalid, c.Device, MaxNameLen)
	case c.Generation == 0:
		return fmt.Errorf("%w: generation 0", ErrInvalid)
	case len(c.Parents) == 0 && c.Generation != 1:
		return fmt.Errorf("%w: commit without parents has generation %d, want 1", ErrInvalid, c.Generation)
	case len(c.Parents) > 0 && c.Generation < 2:
		return fmt.Errorf("%w: commit with parents has generation %d", ErrInvalid, c.Generation)
	case c.Stats.Dirs == 0:
		return fmt.Errorf("%w: stats count no directory (the root counts)", ErrInvalid)
	case c.RootAttrs.Mode&^ModeMask != 0:
		return fmt.Errorf("%w: root mode %#o has bits outside %#o", ErrInvalid, c.RootAttrs.Mode, ModeMask)
	}
	if err := checkXattrs(c.RootAttrs.Xattrs); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	for i, p := range c.Parents {
		if p.IsZero() {
			return fmt.Errorf("%w: zero parent", ErrInvalid)
		}
		if slices.Contains(c.Parents[:i], p) {
			return fmt.Errorf("%w: parent %s twice", ErrInvalid, p)
		}
	}
	return nil
}

// CheckParents verifies c against its parent commits, given in the order of
// c.Parents: each one's ID matches and c.Generation is NextGeneration of
// them. The error wraps ErrCorrupt.
func (c *Commit) CheckParents(parents []*Commit) error {
	if len(parents) != len(c.Parents) {
		return fmt.Errorf("%w: commit has %d parents, %d given", ErrCorrupt, len(c.Parents), len(parents))
	}
	for i, p := range parents {
		_, id, err := EncodeCommit(p)
		if err != nil {
			return fmt.Errorf("%w: parent %d: %v", ErrCorrupt, i, err)
		}
		if id != c.Parents[i] {
			return fmt.Errorf("%w: parent %d is %s, given %s", ErrCorrupt, i, c.Parents[i], id)
		}
	}
	if want := NextGeneration(parents...); c.Generation != want {
		return fmt.Errorf("%w: generation %d, parents make it %d", ErrCorrupt, c.Generation, want)
	}
	return nil
}

// EncodeCommit returns the canonical encoding of c and its ID. It first
// sorts c.RootAttrs.Xattrs by name, in place, when they are not sorted
// already. A commit may encode to at most chunkstore.MaxCommitSize bytes
// (the root's xattrs take the room). Errors wrap ErrInvalid.
func EncodeCommit(c *Commit) ([]byte, chunkstore.ID, error) {
	sortXattrs(c.RootAttrs.Xattrs)
	if err := c.check(); err != nil {
		return nil, chunkstore.ID{}, fmt.Errorf("encode commit: %w", err)
	}
	size := 2 + chunkstore.IDSize*(1+len(c.Parents)) + len(c.Device) + 14*binary.MaxVarintLen64
	for _, x := range c.RootAttrs.Xattrs {
		size += 2*binary.MaxVarintLen32 + len(x.Name) + len(x.Value)
	}
	b := make([]byte, 0, size)
	b = append(b, byte(KindCommit), formatVersion)
	b = append(b, c.Root[:]...)
	b = binary.AppendUvarint(b, uint64(len(c.Parents)))
	for _, p := range c.Parents {
		b = append(b, p[:]...)
	}
	b = appendString(b, c.Device)
	b = binary.AppendVarint(b, c.TimeNs)
	b = binary.AppendUvarint(b, c.Generation)
	b = appendStats(b, c.Stats)
	a := &c.RootAttrs
	b = binary.AppendUvarint(b, uint64(a.Mode))
	b = binary.AppendUvarint(b, uint64(a.UID))
	b = binary.AppendUvarint(b, uint64(a.GID))
	b = binary.AppendVarint(b, a.MtimeNs)
	b = appendXattrs(b, a.Xattrs)
	if len(b) > chunkstore.MaxCommitSize {
		return nil, chunkstore.ID{}, fmt.Errorf("encode commit: %w: %d bytes (max %d)", ErrInvalid, len(b), chunkstore.MaxCommitSize)
	}
	return b, chunkstore.Hash(b), nil
}

// DecodeCommit parses an encoded commit and validates it strictly (at most
// chunkstore.MaxCommitSize bytes). A malformed object is an error wrapping
// ErrCorrupt.
func DecodeCommit(data []byte) (*Commit, error) {
	r, err := newReader(data, KindCommit)
	if err != nil {
		return nil, fmt.Errorf("decode commit: %w", err)
	}
	if len(data) > chunkstore.MaxCommitSize {
		return nil, fmt.Errorf("decode commit: %w: %d bytes (max %d)", ErrCorrupt, len(data), chunkstore.MaxCommitSize)
	}
	c := &Commit{Root: r.id()}
	n := r.uvarint()
	if r.err == nil && n > MaxParents {
		r.fail("%d parents", n)
	}
	for i := uint64(0); i < n && r.err == nil; i++ {
		c.Parents = append(c.Parents, r.id())
	}
	c.Device = r.str(MaxNameLen)
	c.TimeNs = r.varint()
	c.Generation = r.uvarint()
	c.Stats = r.stats()
	c.RootAttrs = RootAttrs{Mode: r.uint32("root mode"), UID: r.uint32("root uid"), GID: r.uint32("root gid"),
		MtimeNs: r.varint(), Xattrs: r.xattrs()}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("decode commit: %w", err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("decode commit: %w: %v", ErrCorrupt, err)
	}
	return c, nil
}
