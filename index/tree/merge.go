package tree

import (
	"fmt"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// MergeOptions configure Merge.
type MergeOptions struct {
	// Device names this machine; it appears in the names of conflict copies
	// of local versions.
	Device string
	// RemoteDevice names the device of the remote commit; it appears in the
	// name of a copy of a remote version (a remote file displaced by a local
	// directory). Empty means "remote".
	RemoteDevice string
	// Time appears in conflict-copy names (ConflictName).
	Time time.Time
}

// MergeResult is the outcome of Merge.
type MergeResult struct {
	// Root is the merged root directory in memory, or nil when the result
	// is the existing, non-empty tree RootID (one side had no changes).
	// Only directories that both sides changed are in memory; the others
	// are stored subtrees. Entries share their slices (Chunks, Xattrs) with
	// the trees the Loader returned.
	Root   *Dir
	RootID chunkstore.ID
	// Conflicts lists every disagreement, in depth-first order of paths.
	Conflicts []Conflict
	// TreesLoaded counts Loader calls.
	TreesLoaded int
}

// Build returns the merged root tree's ID and the objects to store bottom-up
// (see Build); none when Root is nil.
func (r *MergeResult) Build() (chunkstore.ID, []Object, error) {
	if r.Root == nil {
		return r.RootID, nil, nil
	}
	return Build(r.Root)
}

// Merge merges the changes from base to local and from base to remote, root
// tree IDs (the zero ID is an empty tree). Rules, per name:
//
//   - a change on one side only is taken, and a change made identically on
//     both sides is taken once;
//   - trees whose IDs say which side changed are not loaded: a directory
//     unchanged on one side takes the other side's subtree as is;
//   - both sides changed a non-directory differently: if the content (type,
//     chunks, target, ...) differs on both sides, remote's version keeps the
//     name and local's becomes a conflict copy beside it (ContentConflict);
//     otherwise attribute groups (mode, owner, mtime, xattrs) merge
//     separately, one-side changes win, remote wins a group both changed
//     (MetadataConflict) except mtime, where the later one wins;
//   - both sides have a directory (changed, or both created it): it is merged
//     recursively and its attributes as above;
//   - a directory on one side and a non-directory on the other: the
//     directory keeps the name (merged against base with the other side
//     treated as having deleted it), the non-directory gets a conflict name
//     (FileDirConflict);
//   - deleted on one side and changed on the other: the change survives
//     (DeleteModifyConflict). For a directory this is recursive: what the
//     changing side left unchanged inside it is deleted, what it changed
//     survives, and the directory goes away only if nothing changed survives
//     and its attributes are unchanged.
//
// Conflict-copy names come from ConflictName with a counter when a name is
// taken. Errors from load are returned wrapped with the path.
func Merge(base, local, remote chunkstore.ID, load Loader, opt MergeOptions) (*MergeResult, error) {
	if opt.RemoteDevice == "" {
		opt.RemoteDevice = "remote"
	}
	m := merger{load: load, opt: opt}
	id, dir, err := m.dir(base, local, remote, "")
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	return &MergeResult{Root: dir, RootID: id, Conflicts: m.conflicts, TreesLoaded: m.loaded}, nil
}

type merger struct {
	load      Loader
	opt       MergeOptions
	conflicts []Conflict
	loaded    int
}

func (m *merger) get(id chunkstore.ID, path string) ([]Entry, error) {
	if isEmptyRoot(id) {
		return nil, nil
	}
	m.loaded++
	t, err := m.load(id)
	if err != nil {
		return nil, fmt.Errorf("load tree %s of %q: %w", id, "/"+path, err)
	}
	return t.Entries, nil
}

// dir merges three directories. It returns a stored tree ID and a nil Dir
// when one side's tree is the answer, or the merged Dir in memory. An empty
// result is always an (empty) Dir, so that Build emits its object.
func (m *merger) dir(b, l, r chunkstore.ID, path string) (chunkstore.ID, *Dir, error) {
	var id chunkstore.ID
	switch {
	case l == r || isEmptyRoot(l) && isEmptyRoot(r):
		id = r
	case b == l || isEmptyRoot(b) && isEmptyRoot(l):
		id = r
	case b == r || isEmptyRoot(b) && isEmptyRoot(r):
		id = l
	default:
		return m.load3(b, l, r, path)
	}
	if isEmptyRoot(id) {
		return chunkstore.ID{}, NewDir(), nil
	}
	return id, nil, nil
}

// copyReq is a displaced version waiting for its conflict name.
type copyReq struct {
	entry     Entry
	fromLocal bool
	conflict  int // index in m.conflicts
}

func (m *merger) load3(bID, lID, rID chunkstore.ID, path string) (chunkstore.ID, *Dir, error) {
	bs, err := m.get(bID, path)
	if err != nil {
		return chunkstore.ID{}, nil, err
	}
	ls, err := m.get(lID, path)
	if err != nil {
		return chunkstore.ID{}, nil, err
	}
	rs, err := m.get(rID, path)
	if err != nil {
		return chunkstore.ID{}, nil, err
	}
	out := NewDir()
	var copies []copyReq
	for len(bs) > 0 || len(ls) > 0 || len(rs) > 0 {
		name := minName(bs, ls, rs)
		b, l, r := take(&bs, name), take(&ls, name), take(&rs, name)
		cs, err := m.entry(out, b, l, r, joinPath(path, name))
		if err != nil {
			return chunkstore.ID{}, nil, err
		}
		copies = append(copies, cs...)
	}
	// Name the copies once every merged name is known, so that a copy never
	// takes a name that a later entry needs.
	taken := func(n string) bool { _, ok := out.nodes[n]; return ok }
	for _, c := range copies {
		dev := m.opt.Device
		if !c.fromLocal {
			dev = m.opt.RemoteDevice
		}
		c.entry.Name = uniqueConflictName(c.entry.Name, dev, m.opt.Time, taken)
		c.entry.LinkID, c.entry.Nlink = 0, 0 // a copy is a new inode, whatever its version was linked to
		out.nodes[c.entry.Name] = &node{entry: c.entry}
		m.conflicts[c.conflict].CopyPath = joinPath(path, c.entry.Name)
	}
	return chunkstore.ID{}, out, nil
}

// minName returns the smallest name at the heads of the sorted lists.
func minName(lists ...[]Entry) string {
	var name string
	found := false
	for _, l := range lists {
		if len(l) > 0 && (!found || l[0].Name < name) {
			name, found = l[0].Name, true
		}
	}
	return name
}

// take pops the head of *l if it is named name.
func take(l *[]Entry, name string) *Entry {
	if len(*l) == 0 || (*l)[0].Name != name {
		return nil
	}
	e := &(*l)[0]
	*l = (*l)[1:]
	return e
}

func same(a, b *Entry) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

func isDir(e *Entry) bool { return e != nil && e.Type == TypeDir }

// subtreeOf is the tree of e when it is a directory, else the empty tree.
func subtreeOf(e *Entry) chunkstore.ID {
	if isDir(e) {
		return e.Subtree
	}
	return chunkstore.ID{}
}

func (m *merger) conflict(c Conflict) int {
	m.conflicts = append(m.conflicts, c)
	return len(m.conflicts) - 1
}

// entry merges one name (b, l, r may each be nil) into out and returns the
// displaced versions that need conflict names.
func (m *merger) entry(out *Dir, b, l, r *Entry, path string) ([]copyReq, error) {
	put := func(e *Entry) {
		if e != nil {
			out.nodes[e.Name] = &node{entry: *e}
		}
	}
	switch {
	case same(l, r), same(b, l):
		put(r)
		return nil, nil
	case same(b, r):
		put(l)
		return nil, nil
	case isDir(l) && isDir(r):
		return nil, m.bothDirs(out, b, l, r, path)
	case isDir(l):
		return m.oneDir(out, b, l, r, true, path)
	case isDir(r):
		return m.oneDir(out, b, r, l, false, path)
	case l == nil || r == nil:
		put(l)
		put(r)
		m.conflict(Conflict{Kind: DeleteModifyConflict, Path: path})
		return nil, nil
	}
	if isDir(b) {
		b = nil // a directory replaced by files on both sides: no common base
	}
	var e Entry
	switch {
	case l.sameContent(r), b != nil && b.sameContent(l):
		e = *r
	case b != nil && b.sameContent(r):
		e = *l
	default:
		put(r)
		i := m.conflict(Conflict{Kind: ContentConflict, Path: path, CopyFromLocal: true})
		return []copyReq{{entry: *l, fromLocal: true, conflict: i}}, nil
	}
	m.mergeAttrs(&e, b, l, r, path)
	put(&e)
	return nil, nil
}

// bothDirs merges a directory both sides have and changed differently.
func (m *merger) bothDirs(out *Dir, b, l, r *Entry, path string) error {
	id, sub, err := m.dir(subtreeOf(b), l.Subtree, r.Subtree, path)
	if err != nil {
		return err
	}
	if !isDir(b) {
		b = nil
	}
	e := *r
	m.mergeAttrs(&e, b, l, r, path)
	if e.Subtree = id; sub == nil && id == l.Subtree {
		e.Totals = l.Totals // local's stored tree is the answer (else remote's, as e has)
	}
	out.nodes[e.Name] = &node{entry: e, dir: sub}
	return nil
}

// oneDir handles a directory d on one side (local when dirLocal) against a
// non-directory or nothing (other) on the other side.
func (m *merger) oneDir(out *Dir, b, d, other *Entry, dirLocal bool, path string) ([]copyReq, error) {
	bs, ds := subtreeOf(b), d.Subtree
	// The other side has no directory here: to it, everything of base's
	// directory is deleted.
	l, r := ds, chunkstore.ID{}
	if !dirLocal {
		l, r = r, l
	}
	before := len(m.conflicts)
	id, sub, err := m.dir(bs, l, r, path)
	if err != nil {
		return nil, err
	}
	empty := sub != nil && sub.Len() == 0
	if other == nil && empty && isDir(b) && b.sameMeta(d) {
		return nil, nil // only deletions inside: the directory's deletion stands
	}
	e := *d
	e.Subtree = id // stored: d's own tree, with d's totals; else Build sets both
	out.nodes[e.Name] = &node{entry: e, dir: sub}
	if other == nil {
		if len(m.conflicts) == before { // else the changes inside are reported
			m.conflict(Conflict{Kind: DeleteModifyConflict, Path: path})
		}
		return nil, nil
	}
	i := m.conflict(Conflict{Kind: FileDirConflict, Path: path, CopyFromLocal: !dirLocal})
	return []copyReq{{entry: *other, fromLocal: !dirLocal, conflict: i}}, nil
}

// mergeAttrs sets e's mode, owner, mtime and xattrs from a three-way merge
// of b (nil: none), l and r, recording a MetadataConflict when both sides
// set mode, owner or xattrs differently.
func (m *merger) mergeAttrs(e *Entry, b, l, r *Entry, path string) {
	conflict := false
	pick := func(eq func(x, y *Entry) bool) *Entry {
		switch {
		case eq(l, r), b != nil && eq(b, l):
			return r
		case b != nil && eq(b, r):
			return l
		}
		conflict = true
		return r
	}
	e.Mode = pick(func(x, y *Entry) bool { return x.Mode == y.Mode }).Mode
	o := pick(func(x, y *Entry) bool { return x.UID == y.UID && x.GID == y.GID })
	e.UID, e.GID = o.UID, o.GID
	e.Xattrs = pick(func(x, y *Entry) bool { return xattrsEqual(x.Xattrs, y.Xattrs) }).Xattrs
	switch {
	case l.MtimeNs == r.MtimeNs, b != nil && b.MtimeNs == l.MtimeNs:
		e.MtimeNs = r.MtimeNs
	case b != nil && b.MtimeNs == r.MtimeNs:
		e.MtimeNs = l.MtimeNs
	default:
		e.MtimeNs = max(l.MtimeNs, r.MtimeNs)
	}
	if conflict {
		m.conflict(Conflict{Kind: MetadataConflict, Path: path})
	}
}
