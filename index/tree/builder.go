package tree

import (
	"fmt"
	"maps"
	"slices"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Dir is a directory under construction in memory. Each subdirectory is
// either stored (its entry's Subtree names an existing tree, which is not
// loaded) or in memory (a *Dir, encoded by Build). The uploader starts from
// DirOf of the trees on the path of a change and builds the changed trees
// bottom-up; Merge returns its result as a Dir. A Dir is not safe for
// concurrent use; the zero Dir is not usable, call NewDir.
type Dir struct {
	nodes map[string]*node
}

type node struct {
	entry    Entry
	dir      *Dir    // in-memory content of a directory; nil: entry.Subtree
	manifest *Object // the manifest written by SetFile, emitted by Build
}

// NewDir returns an empty Dir.
func NewDir() *Dir { return &Dir{nodes: make(map[string]*node)} }

// DirOf returns a Dir holding t's entries, with its subdirectories stored.
// It copies the entries (but not the slices inside them).
func DirOf(t *Tree) *Dir {
	d := &Dir{nodes: make(map[string]*node, len(t.Entries))}
	for _, e := range t.Entries {
		d.nodes[e.Name] = &node{entry: e}
	}
	return d
}

// Len returns the number of entries.
func (d *Dir) Len() int { return len(d.nodes) }

// Names returns the entry names, sorted.
func (d *Dir) Names() []string { return slices.Sorted(maps.Keys(d.nodes)) }

// Lookup returns the entry named name and, for a subdirectory in memory,
// its Dir (nil for a stored one, whose Subtree is in the entry; the Subtree
// of an in-memory one is not known before Build).
func (d *Dir) Lookup(name string) (Entry, *Dir, bool) {
	n, ok := d.nodes[name]
	if !ok {
		return Entry{}, nil, false
	}
	return n.entry, n.dir, true
}

// Set adds e, or replaces the entry of the same name. A directory entry
// refers to a stored tree through e.Subtree. e's Xattrs are sorted in place;
// e is validated (Entry.Check, errors wrap ErrInvalid). A regular file with
// more than MaxInlineChunks chunks must come through SetFile, or refer to a
// manifest the caller stores itself.
func (d *Dir) Set(e Entry) error {
	sortXattrs(e.Xattrs)
	if err := e.Check(); err != nil {
		return err
	}
	d.nodes[e.Name] = &node{entry: e}
	return nil
}

// SetDir adds the directory e, or replaces the entry of the same name, with
// the in-memory content sub. e.Type must be TypeDir; e.Subtree and e.Totals
// are ignored and set by Build.
func (d *Dir) SetDir(e Entry, sub *Dir) error {
	if e.Type != TypeDir || sub == nil {
		return fmt.Errorf("entry %q: %w: SetDir of a %s (or a nil Dir)", e.Name, ErrInvalid, e.Type)
	}
	e.Subtree, e.Totals = EmptyTreeID, Stats{Dirs: 1} // placeholders for Check
	sortXattrs(e.Xattrs)
	if err := e.Check(); err != nil {
		return err
	}
	e.Subtree, e.Totals = chunkstore.ID{}, Stats{}
	d.nodes[e.Name] = &node{entry: e, dir: sub}
	return nil
}

// SetFile adds the regular file e, or replaces the entry of the same name,
// with the content refs: it sets e.Size and e.Chunks, or e.Manifest and
// e.ManifestChunks for more than MaxInlineChunks refs, in which case Build
// also returns the manifest object. e.Type must be TypeFile; its content
// fields are overwritten.
func (d *Dir) SetFile(e Entry, refs []ChunkRef) error {
	if e.Type != TypeFile {
		return fmt.Errorf("entry %q: %w: SetFile of a %s", e.Name, ErrInvalid, e.Type)
	}
	chunks, size, m, err := FileContent(refs)
	if err != nil {
		return fmt.Errorf("entry %q: %w", e.Name, err)
	}
	e.Size, e.Chunks, e.Manifest, e.ManifestChunks = size, chunks, chunkstore.ID{}, 0
	if m != nil {
		e.Manifest, e.ManifestChunks = m.ID, uint64(len(refs))
	}
	sortXattrs(e.Xattrs)
	if err := e.Check(); err != nil {
		return err
	}
	d.nodes[e.Name] = &node{entry: e, manifest: m}
	return nil
}

// Sub returns the in-memory subdirectory name, first adding it as an empty
// directory with mode 0755 (owner root, mtime 0) when there is no entry
// of that name. It is an error if name is taken by anything but an in-memory
// directory. A convenience for tests and generated volumes.
func (d *Dir) Sub(name string) (*Dir, error) {
	if n, ok := d.nodes[name]; ok {
		if n.dir == nil {
			return nil, fmt.Errorf("entry %q: %w: not an in-memory directory", name, ErrInvalid)
		}
		return n.dir, nil
	}
	sub := NewDir()
	if err := d.SetDir(Entry{Name: name, Type: TypeDir, Mode: 0o755}, sub); err != nil {
		return nil, err
	}
	return sub, nil
}

// Remove deletes the entry named name and reports whether there was one.
func (d *Dir) Remove(name string) bool {
	_, ok := d.nodes[name]
	delete(d.nodes, name)
	return ok
}

// Build encodes root and every in-memory Dir below it (setting each one's
// entry's Subtree and Totals) and returns the root tree's ID and the
// objects to store: the manifests added by SetFile and the
// trees, each once, in an order where every object comes after the objects
// it refers to (children before parents, the root tree last). Storing them in
// that order never leaves a stored tree pointing at a missing one. Stored
// subtrees are not visited. Objects may already exist in the bucket (an
// unchanged directory rebuilt in memory); writing them again is harmless.
// Build does not modify the Dirs.
func Build(root *Dir) (chunkstore.ID, []Object, error) {
	b := builder{seen: make(map[chunkstore.ID]bool)}
	id, _, err := b.dir(root, "")
	if err != nil {
		return chunkstore.ID{}, nil, fmt.Errorf("build tree: %w", err)
	}
	return id, b.objects, nil
}

type builder struct {
	seen    map[chunkstore.ID]bool
	objects []Object
}

func (b *builder) add(o Object) {
	if !b.seen[o.ID] {
		b.seen[o.ID] = true
		b.objects = append(b.objects, o)
	}
}

// dir encodes d and the in-memory Dirs below it and returns d's tree ID
// and totals.
func (b *builder) dir(d *Dir, path string) (chunkstore.ID, Stats, error) {
	t := &Tree{Entries: make([]Entry, 0, len(d.nodes))}
	for _, name := range d.Names() { // sorted: a deterministic object order
		n := d.nodes[name]
		e := n.entry
		if n.dir != nil {
			id, st, err := b.dir(n.dir, joinPath(path, name))
			if err != nil {
				return chunkstore.ID{}, Stats{}, err
			}
			e.Subtree, e.Totals = id, st
		}
		if n.manifest != nil {
			b.add(*n.manifest)
		}
		t.Entries = append(t.Entries, e)
	}
	data, id, err := Encode(t)
	if err != nil {
		return chunkstore.ID{}, Stats{}, fmt.Errorf("directory %q: %w", "/"+path, err)
	}
	b.add(Object{Kind: KindTree, ID: id, Data: data})
	return id, t.Totals(), nil
}

// joinPath joins a relative slash path and a name ("" is the root).
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
