package index

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// localVersion is a name's local version, as a pull compares it with the
// base and remote entries.
type localVersion struct {
	attr Attr
	// entry is the inode as a tree entry (Name is the name it was read
	// under): attributes, xattrs, a symlink's target, a device's number,
	// a file's content when known, a directory's stored tree when it is
	// not loaded (a loaded one has a zero Subtree: what is inside is
	// merged entry by entry).
	entry tree.Entry
	// unknown: a regular file whose content changed here and is not known
	// as chunks (staged bytes not uploaded, or being written).
	unknown bool
	loaded  bool          // directories
	treeID  chunkstore.ID // directories: the recorded tree (zero: never committed)
}

func (l *localVersion) isDir() bool { return l != nil && l.attr.IsDir() }

// noteNlink records inode ino's link count the first time the pull sees
// it, before the pull changes it (keepsLink counts from it).
func (t *pullTx) noteNlink(ino uint64, nlink uint32) {
	if _, ok := t.nlinks[ino]; !ok {
		t.nlinks[ino] = nlink
	}
}

// lookupLocal returns the local version of name in dir, or nil.
func (t *pullTx) lookupLocal(dir uint64, name string) (*localVersion, error) {
	var ino uint64
	err := t.tx.QueryRow(`SELECT ino FROM dentries WHERE parent = ? AND name = ?`, dir, name).Scan(&ino)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return t.local(dir, name, ino)
}

// local reads inode ino (named name in dir) as a localVersion.
func (t *pullTx) local(dir uint64, name string, ino uint64) (*localVersion, error) {
	var (
		l      = &localVersion{}
		tid    []byte
		totals [4]sql.NullInt64
	)
	a, err := scanAttr(t.tx.QueryRow(`SELECT `+attrCols+`, i.tree_id, i.loaded, i.sub_files, i.sub_dirs, i.sub_bytes, i.sub_chunks
		FROM inodes i WHERE i.ino = ?`, ino), &tid, &l.loaded, &totals[0], &totals[1], &totals[2], &totals[3])
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	t.noteNlink(ino, a.Nlink)
	l.attr = a
	e := &l.entry
	e.Name = name
	if e.Type = entryType(a.Mode); e.Type == 0 {
		return nil, fmt.Errorf("inode %d: unknown mode %#o", ino, a.Mode)
	}
	e.Mode, e.UID, e.GID, e.MtimeNs = a.Mode&tree.ModeMask, a.UID, a.GID, a.Mtime
	if e.Xattrs, err = xattrsOfTx(t.tx, ino); err != nil {
		return nil, err
	}
	switch e.Type {
	case tree.TypeDir:
		if err := scanID(tid, &l.treeID); err != nil {
			return nil, fmt.Errorf("inode %d tree id: %w", ino, err)
		}
		if !l.loaded {
			e.Subtree = l.treeID
			e.Totals = tree.Stats{Files: uint64(totals[0].Int64), Dirs: uint64(totals[1].Int64),
				Bytes: uint64(totals[2].Int64), Chunks: uint64(totals[3].Int64)}
		}
	case tree.TypeSymlink:
		e.Target = a.Target
	case tree.TypeCharDev, tree.TypeBlockDev:
		e.Rdev = uint64(a.Rdev)
	case tree.TypeFile:
		if err := t.fileContent(l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// fileContent fills a regular file's content into l.entry, or sets
// l.unknown when it is not known as whole chunks.
func (t *pullTx) fileContent(l *localVersion) error {
	ino := l.attr.Ino
	if t.db.unpersisted[ino] > 0 {
		l.unknown = true // being written
		return nil
	}
	f := &SnapFile{Ino: ino}
	err := scanFiles(t.tx, map[uint64]*SnapFile{ino: f},
		`SELECT ino, data_version, size FROM inodes WHERE ino = ?`,
		`SELECT ino, name, ranges, clean FROM staging WHERE ino = ?`,
		`SELECT e.ino, e.off, e.len, e.chunk, e.chunk_off, COALESCE(c.len, 0), c.pack, c.pack_off, c.pack_len
			FROM extents e LEFT JOIN chunk_lens c ON c.chunk = e.chunk WHERE e.ino = ? ORDER BY e.off`, ino)
	if err != nil {
		return err
	}
	if len(f.Staging.Ranges) > 0 {
		l.unknown = true // staged bytes not uploaded
		return nil
	}
	refs := make([]tree.ChunkRef, 0, len(f.Extents))
	var off int64
	for _, e := range f.Extents {
		if e.Off != off || !e.Whole() || e.Len > 1<<32-1 {
			l.unknown = true // slices of chunks, holes: cut when uploaded
			return nil
		}
		refs = append(refs, tree.ChunkRef{ID: e.Chunk, Length: uint32(e.Len)})
		off = e.End()
	}
	if off != f.Size {
		l.unknown = true
		return nil
	}
	chunks, size, m, err := tree.FileContent(refs)
	if err != nil {
		l.unknown = true
		return nil
	}
	e := &l.entry
	e.Size, e.Chunks = size, chunks
	if m != nil {
		e.Manifest, e.ManifestChunks = m.ID, uint64(len(refs))
	}
	return nil
}

// xattrsOfTx returns inode ino's xattrs sorted by name (nil: none).
func xattrsOfTx(tx querier, ino uint64) ([]tree.Xattr, error) {
	rows, err := tx.Query(`SELECT name, value FROM xattrs WHERE ino = ? ORDER BY name`, ino)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tree.Xattr
	for rows.Next() {
		var x tree.Xattr
		if err := rows.Scan(&x.Name, &x.Value); err != nil {
			return nil, err
		}
		if x.Value == nil {
			x.Value = []byte{}
		}
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b tree.Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out, rows.Err()
}
