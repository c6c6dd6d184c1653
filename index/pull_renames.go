package index

import (
	"encoding/binary"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// renameEnd is a name the remote removed (gone) or added (came) in a
// loaded directory, with its entry.
type renameEnd struct {
	dir  uint64
	name string
	e    *tree.Entry
}

// scanRenames, before the merge, makes each local inode that keeps the
// content of a hard-linked remote entry under its name the owner of the
// entry's link id (alignLink), so the other names of the group join it
// whatever order the merge meets them in; and it finds the renames the
// remote made between loaded
// directories: a name removed and a name added whose entries are equal but
// for the name (content and attributes, a directory's tree), each the only
// one of its kind in the pull. For each, the local inode of the old name,
// whatever this machine changed in it, moves to the new one (when that is
// free here), and the new name's base becomes the old name's entry: what
// this machine changed in it is then kept as changed there.
func (t *pullTx) scanRenames(baseID, newID chunkstore.ID) error {
	var gone, came []renameEnd
	var walk func(ino uint64, baseID, newID chunkstore.ID) error
	walk = func(ino uint64, baseID, newID chunkstore.ID) error {
		if sameTree(baseID, newID) {
			return nil
		}
		var loaded bool
		if err := t.tx.QueryRow(`SELECT loaded FROM inodes WHERE ino = ?`, ino).Scan(&loaded); err != nil || !loaded {
			return err
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
				gone = append(gone, renameEnd{ino, name, o})
			}
			if n != nil && (o == nil || o.Type != n.Type) && n.LinkID == 0 {
				came = append(came, renameEnd{ino, name, n})
			}
		}
		return nil
	}
	if err := walk(RootIno, baseID, newID); err != nil || len(t.need) > 0 || len(gone) == 0 || len(came) == 0 {
		return err
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
		if err := t.moveForRename(src, cames[k][0]); err != nil {
			return err
		}
	}
	return nil
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
