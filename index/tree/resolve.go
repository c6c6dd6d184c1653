package tree

import (
	"slices"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// The merge rules for one name. Merge applies them to three trees; the
// index applies them to its live namespace when it pulls another machine's
// commit (index.DB.ApplyPull). Both call Resolve, so the rules are written
// once:
//
//   - A name only one side changed takes that side's version; a change
//     made identically on both sides is taken once.
//   - The remote (already committed) version keeps the name. When both
//     sides changed a non-directory's content differently, local's
//     version becomes a conflict copy beside it, so no other machine ever
//     sees its file renamed under it (ContentConflict).
//   - Attributes merge by group (mode; owner; xattrs): a group one side
//     changed takes that side's value; a group both changed differently
//     takes remote's (MetadataConflict); of two different mtimes the
//     later wins. So a chmod here and an edit there both survive.
//   - Edit vs delete keeps the edit (DeleteModifyConflict), recursively
//     for directories: what the editing side left unchanged inside a
//     directory the other deleted is deleted, what it changed survives,
//     and the directory itself goes only if nothing survives and its
//     attributes are unchanged. So a new file in a directory deleted
//     elsewhere keeps the directory and the file.
//   - A directory against a non-directory under one name keeps both: the
//     remote version keeps the name, local's becomes a conflict copy
//     (FileDirConflict). A directory the remote replaced by a file keeps,
//     in local's copy, only what local changed inside it.
//   - Two directories merge entry by entry with these rules.

// Action says what happens to a name in a merge (see Decision).
type Action uint8

// Actions.
const (
	// Keep: local's version stays as it is (the remote changed nothing,
	// made the same change, or deleted what local changed).
	Keep Action = iota + 1
	// Take: remote's version replaces local's (it is added, replaced or
	// removed): local changed nothing here.
	Take
	// SetAttrs: local's non-directory keeps its content and takes the
	// merged attributes Attrs.
	SetAttrs
	// SetContent: remote's non-directory content with the merged
	// attributes Attrs (local changed only attributes).
	SetContent
	// MergeDirs: both sides have a directory: its entries merge
	// recursively against the base directory (Base: the empty directory
	// when the base was none), and it takes the merged attributes Attrs.
	MergeDirs
	// Prune: local's directory against remote's deletion of it (or of
	// its contents, when the remote put a non-directory there): its
	// entries merge recursively against the base directory with an empty
	// remote directory, so only what local changed survives. When
	// nothing survives and local left the directory's attributes as they
	// were, the deletion stands (and remote's version, if any, takes the
	// name); otherwise the directory stays, as a conflict copy when the
	// remote has a version of its own.
	Prune
	// Restore: remote's directory against local's deletion of it (or its
	// replacement by a non-directory): its entries merge recursively
	// against the base directory with an empty local directory, so only
	// what the remote changed comes back. When nothing does and the
	// remote left the directory's attributes as they were, local's
	// deletion stands.
	Restore
)

var actionNames = [...]string{"invalid", "keep", "take", "set-attrs", "set-content", "merge-dirs", "prune", "restore"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(?)"
}

// Attrs are the attributes a merge decides for an entry: mode, owner,
// mtime and xattrs.
type Attrs struct {
	Mode     uint32
	UID, GID uint32
	MtimeNs  int64
	Xattrs   []Xattr
}

// AttrsOf returns e's attributes.
func AttrsOf(e *Entry) Attrs {
	return Attrs{Mode: e.Mode, UID: e.UID, GID: e.GID, MtimeNs: e.MtimeNs, Xattrs: e.Xattrs}
}

// Apply sets e's attributes to a.
func (a Attrs) Apply(e *Entry) {
	e.Mode, e.UID, e.GID, e.MtimeNs, e.Xattrs = a.Mode, a.UID, a.GID, a.MtimeNs, a.Xattrs
}

// Equal reports whether a and o are the same attributes.
func (a Attrs) Equal(o Attrs) bool {
	return a.Mode == o.Mode && a.UID == o.UID && a.GID == o.GID && a.MtimeNs == o.MtimeNs && xattrsEqual(a.Xattrs, o.Xattrs)
}

// Decision is the outcome of Resolve for one name.
type Decision struct {
	Action Action
	// CopyLocal: local's version moves to a conflict copy beside the
	// name before remote's version takes it (with Take, SetContent never,
	// Restore: local's non-directory; with Prune it is decided by what
	// survives, see Prune).
	CopyLocal bool
	// Attrs are the merged attributes (SetAttrs, SetContent, MergeDirs).
	Attrs Attrs
	// Base is the base directory's tree for MergeDirs, Prune and Restore
	// (the zero ID: the empty directory).
	Base chunkstore.ID
	// Conflict is the disagreement to report (0: none). A Prune or
	// Restore reports its DeleteModifyConflict itself, for what survives.
	Conflict ConflictKind
}

// Resolve decides one name of a merge from its base version o, local
// version l and remote version n (nil: absent there). localUnknown says
// that local's content is changed but not known (a file being written or
// not uploaded yet): it is then neither base's nor remote's. Link ids and
// counts follow the content: a remote change of only the link count is
// taken when local left the name as it was, and otherwise they are not
// compared.
func Resolve(o, l, n *Entry, localUnknown bool) Decision {
	switch {
	case o == nil && n == nil || o != nil && n != nil && o.Equal(n):
		return Decision{Action: Keep} // the remote changed nothing, not even a link count
	case isDir(l) && isDir(o) && !isDir(n):
		// Local's directory, which the remote deleted or replaced: keep
		// what local changed inside it (also when local changed nothing:
		// the prune then finds nothing to keep).
		return Decision{Action: Prune, Base: o.Subtree}
	case !localUnknown && sameVersion(o, l, true) && !isDir(l):
		return Decision{Action: Take}
	case !localUnknown && sameVersion(l, n, false):
		return Decision{Action: Keep}
	case isDir(l) && isDir(n):
		d := Decision{Action: MergeDirs}
		if isDir(o) {
			d.Base = o.Subtree
		} else {
			o = nil // no common directory: every attribute is new on both sides
		}
		d.Attrs, d.Conflict = mergeAttrs(o, l, n)
		return d
	case l == nil:
		if isDir(o) && isDir(n) {
			return Decision{Action: Restore, Base: o.Subtree}
		}
		return Decision{Action: Take, Conflict: DeleteModifyConflict}
	case n == nil:
		return Decision{Action: Keep, Conflict: DeleteModifyConflict}
	case isDir(l) || isDir(n):
		// One directory, one non-directory: both stay, remote's under the
		// name.
		if isDir(n) && isDir(o) {
			return Decision{Action: Restore, Base: o.Subtree, CopyLocal: true, Conflict: FileDirConflict}
		}
		return Decision{Action: Take, CopyLocal: true, Conflict: FileDirConflict}
	}
	// Two non-directories, both changed.
	if isDir(o) {
		o = nil // a directory replaced by files on both sides: no common base
	}
	ln := !localUnknown && l.sameContentOf(n)
	lo := !localUnknown && o != nil && l.sameContentOf(o)
	on := o != nil && o.sameContentOf(n)
	switch {
	case ln || on:
		a, c := mergeAttrs(o, l, n)
		return Decision{Action: SetAttrs, Attrs: a, Conflict: c}
	case lo:
		a, c := mergeAttrs(o, l, n)
		return Decision{Action: SetContent, Attrs: a, Conflict: c}
	}
	return Decision{Action: Take, CopyLocal: true, Conflict: ContentConflict}
}

// sameVersion reports whether a and b are the same version of a name: both
// absent, or the same entry apart from the link id and count (and, with
// attrsOnlyForDirs, for two directories only their attributes: what is
// inside is merged entry by entry).
func sameVersion(a, b *Entry, attrsOnlyForDirs bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	if attrsOnlyForDirs && a.Type == TypeDir && b.Type == TypeDir {
		return a.sameMeta(b)
	}
	return a.sameMeta(b) && a.sameContentOf(b)
}

// sameContentOf compares what e's data is, as sameContent does, but
// ignores the hard link (link id and count), which follows the content,
// and where packed chunks are: the same chunks in other packs are the same
// data.
func (e *Entry) sameContentOf(o *Entry) bool {
	return e.Type == o.Type && e.Size == o.Size && e.Manifest == o.Manifest &&
		e.ManifestChunks == o.ManifestChunks && e.Subtree == o.Subtree && e.Totals == o.Totals &&
		e.Target == o.Target && e.Rdev == o.Rdev && slices.Equal(e.Chunks, o.Chunks)
}

// SameVersion reports whether a and b (nil: absent) are the same version
// of a name for a merge: equal but for the hard link.
func SameVersion(a, b *Entry) bool { return sameVersion(a, b, false) }

// SameContent reports whether a and b hold the same data (type, size,
// chunks or manifest, subtree, target, device number), whatever their
// attributes and hard links.
func SameContent(a, b *Entry) bool { return a.sameContentOf(b) }

// mergeAttrs merges the attribute groups of l and n against o (nil: no
// base, so every group differs on both sides unless l and n agree). A
// group both sides set differently takes n's and is a MetadataConflict;
// of two different mtimes the later one wins, without a conflict.
func mergeAttrs(o, l, n *Entry) (Attrs, ConflictKind) {
	conflict := false
	pick := func(eq func(x, y *Entry) bool) *Entry {
		switch {
		case eq(l, n), o != nil && eq(o, l):
			return n
		case o != nil && eq(o, n):
			return l
		}
		conflict = true
		return n
	}
	var a Attrs
	a.Mode = pick(func(x, y *Entry) bool { return x.Mode == y.Mode }).Mode
	owner := pick(func(x, y *Entry) bool { return x.UID == y.UID && x.GID == y.GID })
	a.UID, a.GID = owner.UID, owner.GID
	a.Xattrs = pick(func(x, y *Entry) bool { return xattrsEqual(x.Xattrs, y.Xattrs) }).Xattrs
	switch {
	case l.MtimeNs == n.MtimeNs, o != nil && o.MtimeNs == l.MtimeNs:
		a.MtimeNs = n.MtimeNs
	case o != nil && o.MtimeNs == n.MtimeNs:
		a.MtimeNs = l.MtimeNs
	default:
		a.MtimeNs = max(l.MtimeNs, n.MtimeNs)
	}
	if conflict {
		return a, MetadataConflict
	}
	return a, 0
}
