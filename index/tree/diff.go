package tree

import (
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Loader returns the decoded tree with the given ID. It is called only with
// IDs found in trees (or the roots passed in), never with the zero ID or
// EmptyTreeID. Errors are returned wrapped with the path being walked.
// Diff and Merge call it from the calling goroutine, one call at a time; the
// returned tree must not be modified while they run.
type Loader func(id chunkstore.ID) (*Tree, error)

// ChangeKind says how an entry differs between two trees.
type ChangeKind uint8

// Change kinds.
const (
	Added       ChangeKind = iota + 1 // only in the new tree
	Removed                           // only in the old tree
	Modified                          // in both, same type, different entry
	TypeChanged                       // in both, different types: the old one is gone, the new one is new
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	case TypeChanged:
		return "type-changed"
	}
	return fmt.Sprintf("change(%d)", uint8(k))
}

// Change is one difference between two trees. Path is relative to the root,
// slash-separated, without a leading slash. Old is nil for Added and New is
// nil for Removed. They point into the loaded trees: do not modify them.
type Change struct {
	Path string
	Kind ChangeKind
	Old  *Entry
	New  *Entry
}

// DiffStats counts the work of a diff.
type DiffStats struct {
	TreesLoaded     int // Loader calls
	SubtreesSkipped int // directory pairs (the roots included) not walked because their tree IDs are equal
}

// Diff returns the changes that turn the tree oldRoot into newRoot. See
// DiffFunc for what is reported.
func Diff(oldRoot, newRoot chunkstore.ID, load Loader) ([]Change, DiffStats, error) {
	var changes []Change
	st, err := DiffFunc(oldRoot, newRoot, load, func(c Change) error {
		changes = append(changes, c)
		return nil
	})
	return changes, st, err
}

// DiffFunc walks the trees oldRoot and newRoot (either may be the zero ID,
// an empty tree) and calls fn for each change, in depth-first pre-order
// with names sorted bytewise. Directories whose subtree IDs are equal are
// not loaded. An added or removed directory is one change: its contents are
// not listed (the caller walks e.g. New.Subtree when it needs them), and
// so is a TypeChanged entry. A directory present in both with a different
// entry (new metadata or only a new Subtree) is reported Modified before the
// changes inside it, so the caller can record its new Subtree. An error from
// fn stops the walk and is returned.
func DiffFunc(oldRoot, newRoot chunkstore.ID, load Loader, fn func(Change) error) (DiffStats, error) {
	d := differ{load: load, fn: fn}
	err := d.dir(oldRoot, newRoot, "")
	return d.stats, err
}

type differ struct {
	load  Loader
	fn    func(Change) error
	stats DiffStats
}

func (d *differ) get(id chunkstore.ID, path string) (*Tree, error) {
	if isEmptyRoot(id) {
		return &Tree{}, nil
	}
	d.stats.TreesLoaded++
	t, err := d.load(id)
	if err != nil {
		return nil, fmt.Errorf("load tree %s of %q: %w", id, "/"+path, err)
	}
	return t, nil
}

func (d *differ) dir(oldID, newID chunkstore.ID, path string) error {
	if oldID == newID || isEmptyRoot(oldID) && isEmptyRoot(newID) {
		d.stats.SubtreesSkipped++
		return nil
	}
	ot, err := d.get(oldID, path)
	if err != nil {
		return err
	}
	nt, err := d.get(newID, path)
	if err != nil {
		return err
	}
	o, n := ot.Entries, nt.Entries
	for len(o) > 0 || len(n) > 0 {
		var c Change
		switch {
		case len(n) == 0 || len(o) > 0 && o[0].Name < n[0].Name:
			c = Change{Path: joinPath(path, o[0].Name), Kind: Removed, Old: &o[0]}
			o = o[1:]
		case len(o) == 0 || n[0].Name < o[0].Name:
			c = Change{Path: joinPath(path, n[0].Name), Kind: Added, New: &n[0]}
			n = n[1:]
		default:
			oe, ne := &o[0], &n[0]
			o, n = o[1:], n[1:]
			if err := d.pair(oe, ne, joinPath(path, ne.Name)); err != nil {
				return err
			}
			continue
		}
		if err := d.fn(c); err != nil {
			return err
		}
	}
	return nil
}

// pair reports the change between two entries of the same name.
func (d *differ) pair(oe, ne *Entry, path string) error {
	switch {
	case oe.Type != ne.Type:
		return d.fn(Change{Path: path, Kind: TypeChanged, Old: oe, New: ne})
	case oe.Type != TypeDir:
		if oe.Equal(ne) {
			return nil
		}
		return d.fn(Change{Path: path, Kind: Modified, Old: oe, New: ne})
	}
	if !oe.Equal(ne) {
		if err := d.fn(Change{Path: path, Kind: Modified, Old: oe, New: ne}); err != nil {
			return err
		}
	}
	return d.dir(oe.Subtree, ne.Subtree, path)
}
