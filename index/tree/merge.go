package tree

import (
	"fmt"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// MergeOptions configure Merge.
type MergeOptions struct {
	// Device names this machine; it appears in the names of conflict
	// copies (always of local versions: the remote's keep their names).
	Device string
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
// tree IDs (the zero ID is an empty tree), by the rules of Resolve (see
// resolve.go). Trees whose IDs say which side changed are not loaded: a
// directory unchanged on one side takes the other side's subtree as is.
// Conflict-copy names come from ConflictName with a counter when a name is
// taken. Errors from load are returned wrapped with the path.
func Merge(base, local, remote chunkstore.ID, load Loader, opt MergeOptions) (*MergeResult, error) {
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

// copyReq is a displaced local version waiting for its conflict name.
type copyReq struct {
	node     node
	conflict int // index in m.conflicts
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
		e := &c.node.entry
		e.Name = UniqueConflictName(e.Name, e.Type == TypeDir, m.opt.Device, m.opt.Time, taken)
		e.LinkID, e.Nlink = 0, 0 // a copy is a new inode, whatever its version was linked to
		out.nodes[e.Name] = &c.node
		m.conflicts[c.conflict].CopyPath = joinPath(path, e.Name)
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

func isDir(e *Entry) bool { return e != nil && e.Type == TypeDir }

func (m *merger) conflict(c Conflict) int {
	m.conflicts = append(m.conflicts, c)
	return len(m.conflicts) - 1
}

// entry merges one name (b, l, r may each be nil) into out by Resolve's
// decision and returns the local versions that need conflict names.
func (m *merger) entry(out *Dir, b, l, r *Entry, path string) ([]copyReq, error) {
	put := func(n node) { out.nodes[n.entry.Name] = &n }
	d := Resolve(b, l, r, false)
	var copies []copyReq
	copyLocal := func(n node, kind ConflictKind) {
		i := m.conflict(Conflict{Kind: kind, Path: path, CopyFromLocal: true})
		copies = append(copies, copyReq{node: n, conflict: i})
	}
	switch d.Action {
	case Keep:
		if d.Conflict != 0 {
			m.conflict(Conflict{Kind: d.Conflict, Path: path})
		}
		if l != nil {
			put(node{entry: *l})
		}
		return nil, nil
	case Take:
		if d.CopyLocal {
			copyLocal(node{entry: *l}, d.Conflict)
		} else if d.Conflict != 0 {
			m.conflict(Conflict{Kind: d.Conflict, Path: path})
		}
		if r != nil {
			put(node{entry: *r})
		}
		return copies, nil
	case SetAttrs, SetContent:
		e := *l
		if d.Action == SetContent {
			e = *r
		}
		d.Attrs.Apply(&e)
		if d.Conflict != 0 {
			m.conflict(Conflict{Kind: d.Conflict, Path: path})
		}
		put(node{entry: e})
		return nil, nil
	case MergeDirs:
		id, sub, err := m.dir(d.Base, l.Subtree, r.Subtree, path)
		if err != nil {
			return nil, err
		}
		e := *r
		d.Attrs.Apply(&e)
		if e.Subtree = id; sub == nil && id == l.Subtree {
			e.Totals = l.Totals // local's stored tree is the answer (else remote's, as e has)
		}
		if d.Conflict != 0 {
			m.conflict(Conflict{Kind: d.Conflict, Path: path})
		}
		put(node{entry: e, dir: sub})
		return nil, nil
	case Prune:
		// Local's directory against the empty one: what local changed
		// inside survives.
		before := len(m.conflicts)
		id, sub, err := m.dir(d.Base, l.Subtree, chunkstore.ID{}, path)
		if err != nil {
			return nil, err
		}
		e := *l
		e.Subtree = id // stored: l's own tree, with l's totals; else Build sets both
		left := sub == nil || sub.Len() > 0 || !l.sameMeta(b)
		switch {
		case !left:
			if r != nil {
				put(node{entry: *r})
			}
		case r == nil:
			if len(m.conflicts) == before { // else the changes inside are reported
				m.conflict(Conflict{Kind: DeleteModifyConflict, Path: path})
			}
			put(node{entry: e, dir: sub})
		default:
			copyLocal(node{entry: e, dir: sub}, FileDirConflict)
			put(node{entry: *r})
		}
		return copies, nil
	case Restore:
		// Remote's directory against the empty one: what the remote
		// changed inside comes back.
		before := len(m.conflicts)
		id, sub, err := m.dir(d.Base, chunkstore.ID{}, r.Subtree, path)
		if err != nil {
			return nil, err
		}
		if sub != nil && sub.Len() == 0 && r.sameMeta(b) {
			// Only deletions inside: local's deletion (or its
			// replacement) stands.
			if l != nil {
				put(node{entry: *l})
			}
			return nil, nil
		}
		if d.CopyLocal {
			copyLocal(node{entry: *l}, d.Conflict)
		} else if len(m.conflicts) == before {
			m.conflict(Conflict{Kind: DeleteModifyConflict, Path: path})
		}
		e := *r
		e.Subtree = id
		put(node{entry: e, dir: sub})
		return copies, nil
	}
	return nil, fmt.Errorf("merge %q: %w: action %v", path, ErrInvalid, d.Action)
}
