package index

import (
	"encoding/binary"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// renameEnd is a name the remote removed (gone) or added (came), with its
// entry: in a loaded directory dir, or (dir 0) in a directory not loaded
// here, reached from the not-loaded directory inode lazy by the names of
// path.
type renameEnd struct {
	dir  uint64
	name string
	e    *tree.Entry
	lazy uint64
	path []string
}

// lazyDir is a directory not loaded here that the remote changed.
type lazyDir struct {
	ino           uint64
	baseID, newID chunkstore.ID
}

// scanRenames runs before the merge. It makes each local inode that keeps
// the content of a hard-linked remote entry under its name the owner of
// the entry's link id (alignLink), so the other names of the group join it
// whatever order the merge meets them in. And it finds the renames the
// remote made: a name removed and a name added whose entries are equal
// but for the name (content and attributes, a directory's tree), each the
// only one of its kind in the pull. For each, the local inode of the old
// name, whatever this machine changed in it, moves to the new one (when
// that is free here), and the new name's base becomes the old name's
// entry: what this machine changed in it is then kept as changed there.
// Renames are looked for in the directories loaded here; into directories
// not loaded only when this machine changed a name the remote removed (a
// local edit that must follow the remote's rename), loading the
// directories on the way.
func (t *pullTx) scanRenames(baseID, newID chunkstore.ID) error {
	var gone, came []renameEnd
	var lazy []lazyDir
	var walk func(ino uint64, baseID, newID chunkstore.ID) error
	walk = func(ino uint64, baseID, newID chunkstore.ID) error {
		if sameTree(baseID, newID) {
			return nil
		}
		var loaded bool
		if err := t.tx.QueryRow(`SELECT loaded FROM inodes WHERE ino = ?`, ino).Scan(&loaded); err != nil {
			return err
		}
		if !loaded {
			lazy = append(lazy, lazyDir{ino, baseID, newID})
			return nil
		}
		base, remote := t.tree(baseID), t.tree(newID)
		if base == nil || remote == nil {
			return nil
		}
		os, ns := base.Entries, remote.Entries
		for len(os) > 0 || len(ns) > 0 {
			name := firstName(os, ns)
			o, n := takeEntry(&os, name), takeEntry(&ns, name)
			switch {
			case o == nil && n == nil, o != nil && n != nil && o.Equal(n):
				continue
			case o != nil && n != nil && o.Type == tree.TypeDir && n.Type == tree.TypeDir:
				var child uint64
				var mode uint32
				err := t.tx.QueryRow(`SELECT d.ino, i.mode FROM dentries d JOIN inodes i ON i.ino = d.ino
					WHERE d.parent = ? AND d.name = ?`, ino, name).Scan(&child, &mode)
				if err != nil && !isNoRows(err) {
					return err
				}
				if err == nil && mode&sIFMT == sIFDIR {
					if err := walk(child, o.Subtree, n.Subtree); err != nil {
						return err
					}
				}
				continue
			}
			if n != nil && n.LinkID != 0 && n.Type != tree.TypeDir {
				l, err := t.lookupLocal(ino, name)
				if err != nil {
					return err
				}
				if l != nil && !l.isDir() && !l.unknown && l.entry.Type == n.Type && tree.SameContent(&l.entry, n) {
					if err := t.alignLink(l, n); err != nil {
						return err
					}
				}
			}
			if o != nil && (n == nil || o.Type != n.Type) && o.LinkID == 0 {
				gone = append(gone, renameEnd{dir: ino, name: name, e: o})
			}
			if n != nil && (o == nil || o.Type != n.Type) && n.LinkID == 0 {
				came = append(came, renameEnd{dir: ino, name: name, e: n})
			}
		}
		return nil
	}
	if err := walk(RootIno, baseID, newID); err != nil || len(t.need) > 0 || len(gone) == 0 {
		return err
	}
	if len(lazy) > 0 {
		follow, err := t.changedHere(gone)
		if err != nil {
			return err
		}
		if follow {
			for _, d := range lazy {
				t.lazyAdditions(d.ino, nil, d.baseID, d.newID, &came)
			}
			if len(t.need) > 0 {
				return nil
			}
		}
	}
	if len(came) == 0 {
		return nil
	}
	count := func(ends []renameEnd) map[chunkstore.ID][]renameEnd {
		m := map[chunkstore.ID][]renameEnd{}
		for _, e := range ends {
			k := renameKey(e.e)
			m[k] = append(m[k], e)
		}
		return m
	}
	gones, cames := count(gone), count(came)
	for _, src := range gone {
		k := renameKey(src.e)
		if len(gones[k]) != 1 || len(cames[k]) != 1 {
			continue
		}
		dst := cames[k][0]
		if dst.dir == 0 {
			moved, err := t.changedAt(src)
			if err != nil || !moved {
				return err // unchanged here: no directory is loaded for it
			}
			if dst.dir, err = t.loadPath(dst.lazy, dst.path); err != nil || dst.dir == 0 {
				return err
			}
		}
		if err := t.moveForRename(src, dst); err != nil {
			return err
		}
	}
	return nil
}

// changedHere reports whether this machine changed one of the names the
// remote removed (then a rename of the remote's is worth following into
// directories not loaded here).
func (t *pullTx) changedHere(gone []renameEnd) (bool, error) {
	for _, g := range gone {
		if ok, err := t.changedAt(g); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// changedAt reports whether the local version of g's name differs from
// g's entry (the base's).
func (t *pullTx) changedAt(g renameEnd) (bool, error) {
	l, err := t.lookupLocal(g.dir, g.name)
	if err != nil || l == nil {
		return false, err
	}
	return l.unknown || l.isDir() || !tree.SameVersion(&l.entry, g.e), nil
}

// lazyAdditions collects the names the remote added in the directory
// lazy/path..., not loaded here, and in its subdirectories the remote
// changed.
func (t *pullTx) lazyAdditions(lazy uint64, path []string, baseID, newID chunkstore.ID, came *[]renameEnd) {
	if sameTree(baseID, newID) {
		return
	}
	base, remote := t.tree(baseID), t.tree(newID)
	if base == nil || remote == nil {
		return
	}
	os, ns := base.Entries, remote.Entries
	for len(os) > 0 || len(ns) > 0 {
		name := firstName(os, ns)
		o, n := takeEntry(&os, name), takeEntry(&ns, name)
		switch {
		case n == nil, o != nil && o.Equal(n):
		case o != nil && o.Type == tree.TypeDir && n.Type == tree.TypeDir:
			sub := append(append([]string{}, path...), name)
			t.lazyAdditions(lazy, sub, o.Subtree, n.Subtree, came)
		case (o == nil || o.Type != n.Type) && n.LinkID == 0:
			*came = append(*came, renameEnd{name: name, e: n, lazy: lazy, path: append([]string{}, path...)})
		}
	}
}

// loadPath loads the not-loaded directory lazy and the directories below
// it named by path (each from its base tree: the merge then brings it to
// the remote's), and returns the last one (0 when one is not there).
func (t *pullTx) loadPath(lazy uint64, path []string) (uint64, error) {
	dir := lazy
	for i := 0; ; i++ {
		var loaded bool
		var tid []byte
		if err := t.tx.QueryRow(`SELECT loaded, tree_id FROM inodes WHERE ino = ?`, dir).Scan(&loaded, &tid); err != nil {
			return 0, err
		}
		if !loaded {
			var id chunkstore.ID
			if err := scanID(tid, &id); err != nil {
				return 0, err
			}
			if ok, err := t.loadDir(dir, id); !ok || err != nil {
				return 0, err
			}
		}
		if i == len(path) {
			return dir, nil
		}
		var child uint64
		var mode uint32
		err := t.tx.QueryRow(`SELECT d.ino, i.mode FROM dentries d JOIN inodes i ON i.ino = d.ino
			WHERE d.parent = ? AND d.name = ?`, dir, path[i]).Scan(&child, &mode)
		if isNoRows(err) || err == nil && mode&sIFMT != sIFDIR {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		dir = child
	}
}

// renameKey hashes everything of e but its name.
func renameKey(e *tree.Entry) chunkstore.ID {
	b := append([]byte{}, remoteContentKey(e)...)
	b = append(b, e.Subtree[:]...)
	b = binary.AppendUvarint(b, e.Totals.Files)
	b = binary.AppendUvarint(b, e.Totals.Dirs)
	b = binary.AppendUvarint(b, e.Totals.Bytes)
	b = binary.AppendUvarint(b, e.Totals.Chunks)
	b = binary.AppendUvarint(b, uint64(e.Mode))
	b = binary.AppendUvarint(b, uint64(e.UID))
	b = binary.AppendUvarint(b, uint64(e.GID))
	b = binary.AppendVarint(b, e.MtimeNs)
	for _, x := range e.Xattrs {
		b = binary.AppendUvarint(b, uint64(len(x.Name)))
		b = append(b, x.Name...)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	return chunkstore.Hash(b)
}

// moveForRename moves the local inode named by the remote rename's old
// name to its new one (see scanRenames).
func (t *pullTx) moveForRename(src, dst renameEnd) error {
	var x uint64
	err := t.tx.QueryRow(`SELECT ino FROM dentries WHERE parent = ? AND name = ?`, src.dir, src.name).Scan(&x)
	if isNoRows(err) {
		return nil // gone here too
	}
	if err != nil {
		return err
	}
	if l, err := t.lookupLocal(dst.dir, dst.name); err != nil || l != nil {
		return err // the new name is taken here: merged as it is
	}
	a, err := getAttrTx(t.tx, x)
	if err != nil {
		return err
	}
	if a.IsDir() != (src.e.Type == tree.TypeDir) {
		return nil
	}
	if a.IsDir() {
		if below, err := isAncestorTx(t.tx, x, dst.dir); err != nil || below {
			return err
		}
	}
	if _, err := t.tx.Exec(`DELETE FROM dentries WHERE parent = ? AND name = ?`, src.dir, src.name); err != nil {
		return err
	}
	if err := addEntryTx(t.tx, dst.dir, dst.name, x); err != nil {
		return err
	}
	if a.IsDir() && src.dir != dst.dir {
		if _, err := t.tx.Exec(`UPDATE inodes SET nlink = nlink - 1 WHERE ino = ?`, src.dir); err != nil {
			return err
		}
		if _, err := t.tx.Exec(`UPDATE inodes SET nlink = nlink + 1 WHERE ino = ?`, dst.dir); err != nil {
			return err
		}
	}
	base := *src.e
	base.Name = dst.name
	t.override[dirName{dst.dir, dst.name}] = &base
	t.res.Moved++
	t.invalidate(Invalidation{Dir: src.dir, Name: src.name, Removed: x})
	t.invalidate(Invalidation{Dir: dst.dir, Name: dst.name})
	return nil
}
