package index

import (
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// emptyTree reports whether id names the empty directory (or none).
func emptyTree(id chunkstore.ID) bool { return id.IsZero() || id == tree.EmptyTreeID }

func sameTree(a, b chunkstore.ID) bool { return a == b || emptyTree(a) && emptyTree(b) }

// dir merges directory ino (at slash path path) from the base tree baseID
// to the remote tree newID, whose totals are totals, and reports whether
// its entries are left different from newID's (it is queued then). A
// directory not loaded whose tree is the base just takes the new one.
func (t *pullTx) dir(ino uint64, path string, baseID, newID chunkstore.ID, totals tree.Stats) (bool, error) {
	var loaded bool
	var tid []byte
	if err := t.tx.QueryRow(`SELECT loaded, tree_id FROM inodes WHERE ino = ?`, ino).Scan(&loaded, &tid); err != nil {
		return false, fmt.Errorf("directory %d: %w", ino, err)
	}
	var cur chunkstore.ID
	if err := scanID(tid, &cur); err != nil {
		return false, fmt.Errorf("directory %d tree id: %w", ino, err)
	}
	if !loaded {
		if sameTree(cur, baseID) || sameTree(cur, newID) {
			return false, t.setTree(ino, newID, totals)
		}
		// Its entries are another tree's (a local rename put it here):
		// load them, to merge them.
		if ok, err := t.loadDir(ino, cur); !ok || err != nil {
			return false, err
		}
	}
	t.res.Dirs++
	base, remote := t.tree(baseID), t.tree(newID)
	if base == nil || remote == nil {
		return false, nil
	}
	claim := &totals
	if totals.Dirs == 0 {
		claim = nil // no claim made
	}
	if err := checkRemoteTree(newID, remote, claim); err != nil {
		return false, fmt.Errorf("%q: %w", "/"+path, err)
	}
	taken := func(name string) bool {
		if remote.Find(name) != nil {
			return true
		}
		l, err := t.lookupLocal(ino, name)
		return err != nil || l != nil
	}
	// Entries relative to another tree than the base differ from the
	// remote's wherever the remote left the base's.
	deviates := !sameTree(cur, baseID)
	changed := false
	os, ns := base.Entries, remote.Entries
	for len(os) > 0 || len(ns) > 0 {
		name := firstName(os, ns)
		o, n := takeEntry(&os, name), takeEntry(&ns, name)
		if ov := t.override[dirName{ino, name}]; ov != nil {
			o = ov
		}
		if o == nil && n == nil || o != nil && n != nil && o.Equal(n) {
			continue
		}
		changed = true
		dev, err := t.name(ino, path, name, o, n, taken)
		if err != nil {
			return false, fmt.Errorf("%q: %w", "/"+joinSlash(path, name), err)
		}
		deviates = deviates || dev
	}
	if err := t.setTree(ino, newID, totals); err != nil {
		return false, err
	}
	if changed {
		t.invalidate(Invalidation{Ino: ino})
	}
	if deviates {
		return true, t.db.markDirtyTx(t.tx, ino, DirtyEntries)
	}
	return false, nil
}

// loadDir inserts the entries of tree id into the not-loaded directory ino
// (reporting false, with the objects recorded as needed, when they are not
// fetched yet).
func (t *pullTx) loadDir(ino uint64, id chunkstore.ID) (bool, error) {
	tr := t.tree(id)
	if tr == nil {
		return false, nil
	}
	mans := map[chunkstore.ID]*tree.Manifest{}
	for i := range tr.Entries {
		if m := tr.Entries[i].Manifest; !m.IsZero() {
			mans[m] = t.manifest(m)
		}
	}
	if len(t.need) > 0 {
		return false, nil
	}
	return true, t.db.insertTreeTx(t.tx, ino, tr, mans)
}

// setTree records tree id (with its totals) as directory ino's base.
func (t *pullTx) setTree(ino uint64, id chunkstore.ID, s tree.Stats) error {
	if id.IsZero() {
		id = tree.EmptyTreeID
	}
	_, err := t.tx.Exec(`UPDATE inodes SET tree_id = ?, sub_files = ?, sub_dirs = ?, sub_bytes = ?, sub_chunks = ? WHERE ino = ?`,
		id[:], s.Files, s.Dirs, s.Bytes, s.Chunks, ino)
	return err
}

func (t *pullTx) invalidate(v Invalidation) { t.res.Invalidate = append(t.res.Invalidate, v) }

// firstName returns the smaller of the names at the heads of two sorted
// entry lists.
func firstName(a, b []tree.Entry) string {
	switch {
	case len(a) == 0:
		return b[0].Name
	case len(b) == 0 || a[0].Name < b[0].Name:
		return a[0].Name
	}
	return b[0].Name
}

// takeEntry pops the head of *l if it is named name.
func takeEntry(l *[]tree.Entry, name string) *tree.Entry {
	if len(*l) == 0 || (*l)[0].Name != name {
		return nil
	}
	e := &(*l)[0]
	*l = (*l)[1:]
	return e
}

// name merges one name of directory dir that the remote changed (base
// entry o, remote entry n, either may be nil) with its local version, and
// reports whether the name is left different from n. taken reports the
// names a conflict copy must not take.
func (t *pullTx) name(dir uint64, dirPath, name string, o, n *tree.Entry, taken func(string) bool) (bool, error) {
	path := joinSlash(dirPath, name)
	l, err := t.lookupLocal(dir, name)
	if err != nil {
		return false, err
	}
	if l == nil && o != nil && n != nil {
		if ok, dev, err := t.follow(dir, path, name, o, n); ok || err != nil {
			return dev, err
		}
	}
	var le *tree.Entry
	unknown := false
	if l != nil {
		le, unknown = &l.entry, l.unknown
	}
	d := tree.Resolve(o, le, n, unknown)
	switch d.Action {
	case tree.Keep:
		if d.Conflict != 0 {
			t.conflict(d.Conflict, path, "")
		}
		if sameLocal(l, n) && n != nil {
			if joined, err := t.joinGroup(dir, name, l, n); joined || err != nil {
				return false, err
			}
		}
		t.keepsLink(l, o, n)
		if sameLocal(l, n) && n != nil {
			return false, t.alignLink(l, n)
		}
		return !sameLocal(l, n), nil
	case tree.Take:
		dev := false
		if d.CopyLocal {
			if err := t.copyLocal(dir, dirPath, name, l, d.Conflict, taken); err != nil {
				return false, err
			}
			l, dev = nil, true
		} else if d.Conflict != 0 {
			t.conflict(d.Conflict, path, "")
		}
		return dev, t.take(dir, name, o, l, n)
	case tree.SetAttrs:
		if d.Conflict != 0 {
			t.conflict(d.Conflict, path, "")
		}
		t.res.Changed++
		t.keepsLink(l, o, n)
		if err := t.alignLink(l, n); err != nil {
			return false, err
		}
		if err := t.setAttrs(l, d.Attrs); err != nil {
			return false, err
		}
		return t.deviates(l.attr.Ino, d.Attrs, n)
	case tree.SetContent:
		if d.Conflict != 0 {
			t.conflict(d.Conflict, path, "")
		}
		e := *n
		d.Attrs.Apply(&e)
		t.res.Changed++
		dev := !d.Attrs.Equal(tree.AttrsOf(n))
		return dev, t.replace(dir, name, l, &e, dev)
	case tree.MergeDirs:
		if d.Conflict != 0 {
			t.conflict(d.Conflict, path, "")
		}
		if err := t.setAttrs(l, d.Attrs); err != nil {
			return false, err
		}
		if _, err := t.dir(l.attr.Ino, path, d.Base, n.Subtree, n.Totals); err != nil {
			return false, err
		}
		return !d.Attrs.Equal(tree.AttrsOf(n)), nil
	case tree.Prune:
		return t.prune(dir, dirPath, name, o, l, n, d, taken)
	case tree.Restore:
		return t.restore(dir, dirPath, name, o, l, n, d, taken)
	}
	return false, fmt.Errorf("merge decided %v: %w", d.Action, ErrInvalid)
}

// deviates reports whether inode ino, given attributes a under the name
// of remote entry n, differs from n, and then queues it: every name of it
// must be written again (a hard-linked file's names in directories not
// loaded here too).
func (t *pullTx) deviates(ino uint64, a tree.Attrs, n *tree.Entry) (bool, error) {
	if a.Equal(tree.AttrsOf(n)) {
		return false, nil
	}
	return true, t.db.markDirtyTx(t.tx, ino, DirtyMeta)
}

// sameLocal reports whether the local version l is the remote entry n
// (both absent, or equal but for hard links; a loaded directory never is).
func sameLocal(l *localVersion, n *tree.Entry) bool {
	if l == nil || n == nil {
		return l == nil && n == nil
	}
	return !l.unknown && tree.SameVersion(&l.entry, n)
}

// take makes n (nil: nothing) the version of name in dir in place of the
// local non-directory l (nil: none), which this machine left as the base
// had it (o). The same content changes only attributes and the link count
// in place; other content is a new inode (l's, if open, keeps the old).
func (t *pullTx) take(dir uint64, name string, o *tree.Entry, l *localVersion, n *tree.Entry) error {
	if l.isDir() {
		return fmt.Errorf("remote version would replace a local directory: %w", ErrInvalid)
	}
	if n == nil {
		if l != nil {
			t.res.Removed++
			return t.unlink(dir, name, l, false)
		}
		return nil
	}
	if l != nil && n.Type != tree.TypeDir && l.entry.Type == n.Type && !l.unknown && tree.SameContent(&l.entry, n) {
		if joined, err := t.joinGroup(dir, name, l, n); joined || err != nil {
			return err
		}
		t.res.Changed++
		t.keepsLink(l, o, n)
		if err := t.alignLink(l, n); err != nil {
			return err
		}
		return t.setAttrs(l, tree.AttrsOf(n))
	}
	return t.replace(dir, name, l, n, false)
}

// joinGroup makes name in dir, whose local version l is an inode of its
// own, a name of the local inode that already holds remote entry n's hard
// link group (another name of the group, met earlier in this pull or
// before), and reports whether it did. Without it a machine that holds the
// names of a group as separate inodes (made separate by an earlier merge)
// would give the group's link id to each in turn and commit them separate
// again, and the machine that made the group would remake it: commits back
// and forth for ever. The first name met keeps its inode (alignLink), so
// a link made elsewhere to a file open here does not displace it.
func (t *pullTx) joinGroup(dir uint64, name string, l *localVersion, n *tree.Entry) (bool, error) {
	if l == nil || l.isDir() || n.LinkID == 0 || n.Nlink < 2 || l.attr.Nlink > 1 {
		return false, nil
	}
	var owner uint64
	var content []byte
	err := t.tx.QueryRow(`SELECT l.ino, l.content FROM links l JOIN inodes i ON i.ino = l.ino
		WHERE l.id = ? AND i.nlink > 0`, int64(n.LinkID)).Scan(&owner, &content)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if owner == l.attr.Ino || string(content) != string(remoteContentKey(n)) {
		return false, nil
	}
	// The group's inode counts n's names from now on (as one the pull
	// made for the group would), so this name joins as one it counted:
	// no count of this machine's own to commit.
	if _, err := t.tx.Exec(`UPDATE inodes SET nlink = MAX(nlink, ?) WHERE ino = ?`, n.Nlink, owner); err != nil {
		return false, err
	}
	return true, t.replace(dir, name, l, n, false)
}

// replace puts a new inode for entry e under name in dir, in place of the
// local version l (nil: none); with queue set the new inode is queued (its
// attributes differ from the remote's).
func (t *pullTx) replace(dir uint64, name string, l *localVersion, e *tree.Entry, queue bool) error {
	if l != nil {
		t.res.Changed++
		if err := t.unlink(dir, name, l, true); err != nil {
			return err
		}
	} else {
		t.res.Added++
	}
	return t.insertQueued(dir, name, e, queue)
}

// alignLink makes the link id of the local non-directory l, which stays
// under the name of remote entry n, n's: the id of the group n belongs
// to (taken from any inode that had it), or, when n is in none, an id of
// its own, so that a later load of a name of its former group does not
// join it.
func (t *pullTx) alignLink(l *localVersion, n *tree.Entry) error {
	if l == nil || l.isDir() {
		return nil
	}
	if n.LinkID != 0 {
		return t.db.takeLinkIDTx(t.tx, n, l.attr.Ino)
	}
	var one int
	err := t.tx.QueryRow(`SELECT 1 FROM links WHERE ino = ? LIMIT 1`, l.attr.Ino).Scan(&one)
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return newLinkIDTx(t.tx, l.attr.Ino)
}

// keepsLink notes that the local inode l stays under a name of the
// remote entry n (base entry o): when it is hard-linked, its link count at
// the end of the pull is the remote's count plus what this machine changed
// of it (settleLinks), whatever the names added and removed meanwhile did
// to it. The first name of an inode decides.
func (t *pullTx) keepsLink(l *localVersion, o, n *tree.Entry) {
	if l == nil || l.isDir() || n == nil {
		return
	}
	if l.attr.Nlink <= 1 && (o == nil || o.LinkID == 0) && n.LinkID == 0 {
		return
	}
	if _, ok := t.links[l.attr.Ino]; ok {
		return
	}
	count := func(e *tree.Entry) int {
		if e == nil || e.Nlink == 0 {
			return 1
		}
		return int(e.Nlink)
	}
	before := int(t.nlinks[l.attr.Ino]) // as it was before the pull
	base := count(o)
	if o == nil {
		base = before // no base: every local name is this machine's
	}
	t.links[l.attr.Ino] = linkFix{want: count(n) + before - base, remote: count(n)}
}

// linkFix is the link count a hard-linked inode ends a pull with (want)
// and the count the remote's entries give it (remote).
type linkFix struct{ want, remote int }

// insert adds remote entry n as name in dir (see insertNow).
func (t *pullTx) insert(dir uint64, name string, n *tree.Entry) error {
	return t.insertQueued(dir, name, n, false)
}

// insertQueued is insert, queueing the new inode with queue set.
func (t *pullTx) insertQueued(dir uint64, name string, n *tree.Entry, queue bool) error {
	ino, err := t.insertNow(dir, name, n)
	if err != nil || !queue || ino == 0 {
		return err
	}
	return t.db.markDirtyTx(t.tx, ino, DirtyMeta)
}

// insertNow adds remote entry n as name in dir: a new inode, or another
// name of the inode its link id names with the same content (a directory
// comes in not loaded). It returns the inode (0 when a manifest is still
// to fetch).
func (t *pullTx) insertNow(dir uint64, name string, n *tree.Entry) (uint64, error) {
	refs := n.Chunks
	if !n.Manifest.IsZero() {
		m := t.manifest(n.Manifest)
		if m == nil {
			return 0, nil // fetched for the next try
		}
		if m.Size() != n.Size || uint64(len(m.Chunks)) != n.ManifestChunks {
			return 0, fmt.Errorf("manifest %s holds %d bytes in %d chunks, entry says %d in %d: %w",
				n.Manifest, m.Size(), len(m.Chunks), n.Size, n.ManifestChunks, tree.ErrCorrupt)
		}
		refs = m.Chunks
	}
	var ino uint64
	joined := false
	if n.LinkID != 0 {
		var how linkJoin
		var err error
		var owner uint64
		var nlink uint32
		err = t.tx.QueryRow(`SELECT l.ino, i.nlink FROM links l JOIN inodes i ON i.ino = l.ino WHERE l.id = ?`, int64(n.LinkID)).
			Scan(&owner, &nlink)
		if err == nil {
			t.noteNlink(owner, nlink) // before the join counts this name
		} else if !isNoRows(err) {
			return 0, err
		}
		if ino, how, err = t.db.joinLinkTx(t.tx, n); err != nil {
			return 0, err
		}
		joined = how == linkJoined
		if !joined {
			// The link id's content changed (or it is new here): this
			// is its inode from now on.
			if ino, err = insertEntryInode(t.tx, n, n.Nlink); err != nil {
				return 0, err
			}
			if err := t.db.takeLinkIDTx(t.tx, n, ino); err != nil {
				return 0, err
			}
		}
	} else {
		var err error
		if ino, err = insertEntryInode(t.tx, n, 1); err != nil {
			return 0, err
		}
	}
	if !joined {
		if err := t.db.entryContentTx(t.tx, ino, n, refs, nil); err != nil {
			return 0, err
		}
	}
	if err := addEntryTx(t.tx, dir, name, ino); err != nil {
		return 0, err
	}
	if n.Type == tree.TypeDir {
		if _, err := t.tx.Exec(`UPDATE inodes SET nlink = nlink + 1 WHERE ino = ?`, dir); err != nil {
			return 0, err
		}
	}
	t.invalidate(Invalidation{Dir: dir, Name: name})
	return ino, nil
}

// unlink removes name from dir, a name of the local inode l. An inode left
// without names is displaced (an open descriptor keeps it; a write to it
// brings it back as a conflict copy). With replaced set another inode
// takes the name (the remote changed the content): l's names in
// directories not loaded are then the new inode's too (settleLinks).
func (t *pullTx) unlink(dir uint64, name string, l *localVersion, replaced bool) error {
	if _, err := t.tx.Exec(`DELETE FROM dentries WHERE parent = ? AND name = ?`, dir, name); err != nil {
		return err
	}
	rm, err := t.db.dropLinkTx(t.tx, l.attr, dir, t.now)
	if err != nil {
		return err
	}
	ino := l.attr.Ino
	switch {
	case rm.Nlink == 0:
		t.res.Orphaned = append(t.res.Orphaned, ino)
		if !l.isDir() {
			if err := t.db.displaceTx(t.tx, ino, dir, name, t.now); err != nil {
				return err
			}
		}
	case !l.isDir() && replaced:
		t.shrunk[ino] = dirName{dir, name}
	}
	t.invalidate(Invalidation{Dir: dir, Name: name, Removed: ino})
	return nil
}

// copyLocal moves the local version l of name in dir to a conflict copy
// beside it (a name taken neither here nor in the remote's tree).
func (t *pullTx) copyLocal(dir uint64, dirPath, name string, l *localVersion, kind tree.ConflictKind, taken func(string) bool) error {
	copyName := tree.UniqueConflictName(name, l.isDir(), t.p.Device, t.p.Now, taken)
	if _, err := t.tx.Exec(`DELETE FROM dentries WHERE parent = ? AND name = ?`, dir, name); err != nil {
		return err
	}
	if err := addEntryTx(t.tx, dir, copyName, l.attr.Ino); err != nil {
		return err
	}
	if _, err := t.tx.Exec(`UPDATE inodes SET ctime_ns = ? WHERE ino = ?`, t.now, l.attr.Ino); err != nil {
		return err
	}
	t.conflict(kind, joinSlash(dirPath, name), joinSlash(dirPath, copyName))
	t.invalidate(Invalidation{Dir: dir, Name: name})
	t.invalidate(Invalidation{Dir: dir, Name: copyName})
	if !l.isDir() && l.attr.Nlink > 1 {
		// Its names elsewhere are the remote's group's now (its link id
		// goes to the remote's inode): it keeps the names it has here,
		// and a commit writes them all as a group of its own.
		t.shrunk[l.attr.Ino] = dirName{dir, copyName}
		if err := newLinkIDTx(t.tx, l.attr.Ino); err != nil {
			return err
		}
		return t.db.markDirtyTx(t.tx, l.attr.Ino, DirtyMeta)
	}
	return nil
}

// setAttrs gives the local inode l the attributes a (mode bits, owner,
// mtime, xattrs).
func (t *pullTx) setAttrs(l *localVersion, a tree.Attrs) error {
	cur := tree.AttrsOf(&l.entry)
	if cur.Equal(a) {
		return nil
	}
	ino := l.attr.Ino
	if _, err := t.tx.Exec(`UPDATE inodes SET mode = (mode & ?) | ?, uid = ?, gid = ?, mtime_ns = ?, ctime_ns = ? WHERE ino = ?`,
		sIFMT, a.Mode&tree.ModeMask, a.UID, a.GID, a.MtimeNs, t.now, ino); err != nil {
		return err
	}
	sameX := tree.Attrs{Xattrs: cur.Xattrs}.Equal(tree.Attrs{Xattrs: a.Xattrs})
	if !sameX {
		if _, err := t.tx.Exec(`DELETE FROM xattrs WHERE ino = ?`, ino); err != nil {
			return err
		}
		if len(a.Xattrs) > 0 {
			t.db.xattrs.add(ino) // before the commit, as SetXattr
		}
		for _, x := range a.Xattrs {
			if _, err := t.tx.Exec(qLoadXattr, ino, x.Name, x.Value); err != nil {
				return err
			}
		}
	}
	l.entry.Mode, l.entry.UID, l.entry.GID, l.entry.MtimeNs, l.entry.Xattrs = a.Mode, a.UID, a.GID, a.MtimeNs, a.Xattrs
	t.invalidate(Invalidation{Ino: ino})
	return nil
}

// hasEntries reports whether directory ino has an entry.
func (t *pullTx) hasEntries(ino uint64) (bool, error) {
	var one int
	err := t.tx.QueryRow(`SELECT 1 FROM dentries WHERE parent = ? LIMIT 1`, ino).Scan(&one)
	if isNoRows(err) {
		return false, nil
	}
	return err == nil, err
}

// prune merges the local directory l, which the remote deleted or
// replaced by the non-directory n, against the empty directory: what this
// machine changed inside survives, and so does l with it (as a conflict
// copy when n takes the name); with nothing left and its attributes as
// they were, it goes.
func (t *pullTx) prune(dir uint64, dirPath, name string, o *tree.Entry, l *localVersion, n *tree.Entry, d tree.Decision, taken func(string) bool) (bool, error) {
	path := joinSlash(dirPath, name)
	before := len(t.res.Conflicts)
	if _, err := t.dir(l.attr.Ino, path, d.Base, tree.EmptyTreeID, tree.Stats{Dirs: 1}); err != nil || len(t.need) > 0 {
		return false, err
	}
	left, err := t.hasEntries(l.attr.Ino)
	if err != nil {
		return false, err
	}
	if !left && !tree.AttrsOf(&l.entry).Equal(tree.AttrsOf(o)) {
		left = true
	}
	switch {
	case !left:
		t.res.Removed++
		if err := t.unlink(dir, name, l, false); err != nil {
			return false, err
		}
		if n != nil {
			t.res.Added++
			return false, t.insert(dir, name, n)
		}
		return false, nil
	case n == nil:
		if len(t.res.Conflicts) == before {
			t.conflict(tree.DeleteModifyConflict, path, "")
		}
		return true, nil
	}
	if err := t.copyLocal(dir, dirPath, name, l, tree.FileDirConflict, taken); err != nil {
		return false, err
	}
	t.res.Added++
	return true, t.insert(dir, name, n)
}

// restore brings back the remote directory n that this machine deleted
// (or replaced by the non-directory l) with only what the remote changed
// inside it; when the remote changed nothing but deletions inside and left
// its attributes, local's deletion stands.
func (t *pullTx) restore(dir uint64, dirPath, name string, o *tree.Entry, l *localVersion, n *tree.Entry, d tree.Decision, taken func(string) bool) (bool, error) {
	path := joinSlash(dirPath, name)
	before := len(t.res.Conflicts)
	res, err := t.tx.Exec(`INSERT INTO inodes(mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, btime_ns, loaded)
		VALUES(?, ?, ?, 2, ?, ?, ?, ?, 1)`, sIFDIR|n.Mode&tree.ModeMask, n.UID, n.GID, n.MtimeNs, n.MtimeNs, t.now, n.MtimeNs)
	if err != nil {
		return false, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return false, err
	}
	y := uint64(id)
	if err := t.db.entryContentTx(t.tx, y, n, nil, nil); err != nil {
		return false, err
	}
	if _, err := t.dir(y, path, d.Base, n.Subtree, n.Totals); err != nil || len(t.need) > 0 {
		return false, err
	}
	back, err := t.hasEntries(y)
	if err != nil {
		return false, err
	}
	if !back && tree.AttrsOf(n).Equal(tree.AttrsOf(o)) {
		if _, err := deleteInodeTx(t.tx, y); err != nil {
			return false, err
		}
		return true, nil // the remote has the directory; this machine's deletion stands
	}
	if d.CopyLocal && l != nil {
		if err := t.copyLocal(dir, dirPath, name, l, d.Conflict, taken); err != nil {
			return false, err
		}
	} else if len(t.res.Conflicts) == before {
		t.conflict(tree.DeleteModifyConflict, path, "")
	}
	if err := addEntryTx(t.tx, dir, name, y); err != nil {
		return false, err
	}
	if _, err := t.tx.Exec(`UPDATE inodes SET nlink = nlink + 1 WHERE ino = ?`, dir); err != nil {
		return false, err
	}
	t.res.Added++
	t.invalidate(Invalidation{Dir: dir, Name: name})
	return d.CopyLocal, nil
}

// follow handles a name this machine renamed away (l is absent) and the
// remote changed (o to n): the change lands on the inode where the rename
// took it, when it is still there and of o's kind. It reports whether it
// did, and whether the name is left different from n.
func (t *pullTx) follow(dir uint64, path, name string, o, n *tree.Entry) (bool, bool, error) {
	if o.Type != n.Type {
		return false, false, nil
	}
	x, err := departedTx(t.tx, dir, name)
	if err != nil || x == 0 {
		return false, false, err
	}
	var dir2 uint64
	var name2 string
	err = t.tx.QueryRow(`SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent, name LIMIT 1`, x).Scan(&dir2, &name2)
	if isNoRows(err) {
		return false, false, nil // deleted since
	}
	if err != nil {
		return false, false, err
	}
	lx, err := t.local(dir2, name2, x)
	if err != nil {
		return false, false, err
	}
	if lx.entry.Type != o.Type {
		return false, false, nil
	}
	dirPath2, err := pathTx(t.tx, dir2)
	if err != nil {
		return false, false, err
	}
	path2 := joinSlash(dirPath2, name2)
	le := lx.entry
	le.Name = name
	d := tree.Resolve(o, &le, n, lx.unknown)
	renamed := func(e *tree.Entry) *tree.Entry { c := *e; c.Name = name2; return &c }
	switch d.Action {
	case tree.Keep:
		if d.Conflict != 0 {
			t.conflict(d.Conflict, path, "")
		}
		return true, true, nil
	case tree.Take:
		if d.CopyLocal {
			// Edited on both sides: the remote's version takes the old
			// name, this machine's stays where it was renamed to.
			t.conflict(d.Conflict, path, path2)
			t.res.Added++
			return true, false, t.insert(dir, name, n)
		}
		return true, true, t.take(dir2, name2, o, lx, renamed(n))
	case tree.SetAttrs:
		t.res.Changed++
		t.keepsLink(lx, o, n)
		if err := t.setAttrs(lx, d.Attrs); err != nil {
			return true, true, err
		}
		_, err := t.deviates(x, d.Attrs, n)
		return true, true, err
	case tree.SetContent:
		e := renamed(n)
		d.Attrs.Apply(e)
		t.res.Changed++
		return true, true, t.replace(dir2, name2, lx, e, !d.Attrs.Equal(tree.AttrsOf(n)))
	case tree.MergeDirs:
		if err := t.setAttrs(lx, d.Attrs); err != nil {
			return true, true, err
		}
		_, err := t.dir(x, path2, d.Base, n.Subtree, n.Totals)
		return true, true, err
	}
	return false, false, nil
}
