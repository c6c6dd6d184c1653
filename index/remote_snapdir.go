package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// dirtyColsQ is dirtyCols qualified for a join.
const dirtyColsQ = `q.ino, q.reasons, q.queued_ns, q.changed_ns, q.seq, q.attempts, q.last_error, q.next_try_ns`

// dir rebuilds directory ino: its entries with attributes, xattrs and file
// content, recursing into marked subdirectories and subdirectories never
// committed; the others are stored (their recorded tree id and totals).
func (b *snapBuilder) dir(ino uint64) (*SnapDir, error) {
	d := &SnapDir{Ino: ino}
	rows, err := b.tx.Query(`SELECT i.ino, i.mode, i.nlink, i.uid, i.gid, i.rdev, i.mtime_ns, i.target,
			i.tree_id, i.loaded, d.name, i.sub_files, i.sub_dirs, i.sub_bytes, i.sub_chunks,
			(SELECT l.id FROM links l WHERE l.ino = i.ino LIMIT 1)
		FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? ORDER BY d.name`, ino)
	if err != nil {
		return nil, err
	}
	var files []uint64
	for rows.Next() {
		var (
			e      SnapEntry
			mode   uint32
			rdev   uint32
			target []byte
			tid    []byte
			loaded bool
			totals [4]sql.NullInt64
			linkID sql.NullInt64
		)
		if err := rows.Scan(&e.Ino, &mode, &e.Nlink, &e.Entry.UID, &e.Entry.GID, &rdev, &e.Entry.MtimeNs,
			&target, &tid, &loaded, &e.Entry.Name, &totals[0], &totals[1], &totals[2], &totals[3], &linkID); err != nil {
			rows.Close()
			return nil, err
		}
		e.LinkID = uint64(linkID.Int64)
		e.Entry.Type = entryType(mode)
		if e.Entry.Type == 0 {
			rows.Close()
			return nil, fmt.Errorf("inode %d: unknown mode %#o", e.Ino, mode)
		}
		e.Entry.Mode = mode & tree.ModeMask
		e.Entry.Target = string(target)
		if e.Entry.Type == tree.TypeCharDev || e.Entry.Type == tree.TypeBlockDev {
			e.Entry.Rdev = uint64(rdev)
		}
		switch e.Entry.Type {
		case tree.TypeDir:
			if err := scanID(tid, &e.Entry.Subtree); err != nil {
				rows.Close()
				return nil, fmt.Errorf("inode %d tree id: %w", e.Ino, err)
			}
			switch {
			case loaded && (b.marked[e.Ino] || e.Entry.Subtree.IsZero()):
				e.Dir = &SnapDir{Ino: e.Ino} // filled below, after rows is closed
			case e.Entry.Subtree.IsZero():
				rows.Close()
				return nil, fmt.Errorf("directory %d: not loaded and no tree id: %w", e.Ino, ErrInvalid)
			case !totals[1].Valid:
				rows.Close()
				return nil, fmt.Errorf("directory %d: tree %s has no recorded totals (an index of an older format): %w",
					e.Ino, e.Entry.Subtree, ErrInvalid)
			default:
				e.Entry.Totals = tree.Stats{Files: uint64(totals[0].Int64), Dirs: uint64(totals[1].Int64),
					Bytes: uint64(totals[2].Int64), Chunks: uint64(totals[3].Int64)}
			}
		case tree.TypeFile:
			if _, ok := b.snap.Files[e.Ino]; !ok {
				b.snap.Files[e.Ino] = nil
				files = append(files, e.Ino)
			}
		}
		d.Entries = append(d.Entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := b.xattrs(d); err != nil {
		return nil, err
	}
	if err := b.files(ino, files); err != nil {
		return nil, err
	}
	for i := range d.Entries {
		e := &d.Entries[i]
		if e.Entry.Type == tree.TypeFile {
			e.File = b.snap.Files[e.Ino]
		}
		if e.Dir != nil {
			sub, err := b.dir(e.Ino)
			if err != nil {
				return nil, err
			}
			e.Dir = sub
		}
	}
	return d, b.rideAlong(d)
}

// xattrs fills the xattrs of d's entries (one query).
func (b *snapBuilder) xattrs(d *SnapDir) error {
	// Each inode once: two names of one inode in d (hard links) must not
	// list its xattrs twice.
	rows, err := b.tx.Query(`SELECT x.ino, x.name, x.value FROM xattrs x
		WHERE x.ino IN (SELECT ino FROM dentries WHERE parent = ?) ORDER BY x.ino, x.name`, d.Ino)
	if err != nil {
		return err
	}
	defer rows.Close()
	byIno := map[uint64][]tree.Xattr{}
	for rows.Next() {
		var ino uint64
		var x tree.Xattr
		if err := rows.Scan(&ino, &x.Name, &x.Value); err != nil {
			return err
		}
		if x.Value == nil {
			x.Value = []byte{}
		}
		byIno[ino] = append(byIno[ino], x)
	}
	for i := range d.Entries {
		d.Entries[i].Entry.Xattrs = byIno[d.Entries[i].Ino]
	}
	return rows.Err()
}

// files reads the content state of the regular files inos of directory dir
// (three queries for the whole directory).
func (b *snapBuilder) files(dir uint64, inos []uint64) error {
	if len(inos) == 0 {
		return nil
	}
	want := make(map[uint64]*SnapFile, len(inos))
	for _, ino := range inos {
		want[ino] = &SnapFile{Ino: ino}
	}
	err := scanFiles(b.tx, want,
		`SELECT i.ino, i.data_version, i.size FROM dentries d JOIN inodes i ON i.ino = d.ino WHERE d.parent = ?`,
		`SELECT s.ino, s.name, s.ranges, s.clean FROM dentries d JOIN staging s ON s.ino = d.ino WHERE d.parent = ?`,
		// Each inode's extents once, however many names it has in dir.
		`SELECT e.ino, e.off, e.len, e.chunk, e.chunk_off, COALESCE(c.len, 0), c.pack, c.pack_off, c.pack_len
			FROM extents e LEFT JOIN chunk_lens c ON c.chunk = e.chunk
			WHERE e.ino IN (SELECT ino FROM dentries WHERE parent = ?) ORDER BY e.ino, e.off`, dir)
	if err != nil {
		return err
	}
	for ino, f := range want {
		b.snap.Files[ino] = f
	}
	return nil
}

// scanFiles runs the three content queries (inode, staging, extents) with
// arg and fills the files of want; rows of other inodes are skipped.
func scanFiles(tx querier, want map[uint64]*SnapFile, qInode, qStaging, qExtents string, arg any) error {
	rows, err := tx.Query(qInode, arg)
	if err != nil {
		return err
	}
	for rows.Next() {
		var ino, v uint64
		var size int64
		if err := rows.Scan(&ino, &v, &size); err != nil {
			rows.Close()
			return err
		}
		if f := want[ino]; f != nil {
			f.Version, f.Size = v, size
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = tx.Query(qStaging, arg); err != nil {
		return err
	}
	for rows.Next() {
		var ino uint64
		var s Staging
		var blob, cblob []byte
		if err := rows.Scan(&ino, &s.Name, &blob, &cblob); err != nil {
			rows.Close()
			return err
		}
		// The uploader reads only what is not clean: clean bytes are
		// the extents' (see schema 5).
		if s.Ranges, err = dirtyRanges(blob, cblob); err != nil {
			rows.Close()
			return fmt.Errorf("staging of %d: %w", ino, err)
		}
		if f := want[ino]; f != nil {
			f.Staging = s
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if rows, err = tx.Query(qExtents, arg); err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ino uint64
		var e SnapExtent
		var id, pack []byte
		var packOff, packLen sql.NullInt64
		if err := rows.Scan(&ino, &e.Off, &e.Len, &id, &e.ChunkOff, &e.ChunkLen, &pack, &packOff, &packLen); err != nil {
			return err
		}
		if len(id) != chunkstore.IDSize {
			return fmt.Errorf("extent %d@%d: chunk id of %d bytes", ino, e.Off, len(id))
		}
		copy(e.Chunk[:], id)
		if e.Loc, err = scanLoc(pack, packOff, packLen); err != nil {
			return fmt.Errorf("extent %d@%d: %w", ino, e.Off, err)
		}
		if f := want[ino]; f != nil {
			f.Extents = append(f.Extents, e)
		}
	}
	return rows.Err()
}

// rideAlong adds the queue entries of d's entries that the rebuilt d
// covers (see Snapshot).
func (b *snapBuilder) rideAlong(d *SnapDir) error {
	rows, err := b.tx.Query(`SELECT `+dirtyColsQ+` FROM dentries d JOIN dirty q ON q.ino = d.ino WHERE d.parent = ?`, d.Ino)
	if err != nil {
		return err
	}
	defer rows.Close()
	byIno := map[uint64]DirtyItem{}
	for rows.Next() {
		it, err := scanDirty(rows)
		if err != nil {
			return err
		}
		byIno[it.Ino] = it
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range d.Entries {
		it, ok := byIno[e.Ino]
		if !ok {
			continue
		}
		if _, asked := b.items[e.Ino]; asked {
			continue
		}
		switch {
		case e.Entry.Type == tree.TypeDir && e.Dir == nil && it.Reasons&DirtyEntries != 0:
			// Its entries changed but it is stored: not covered.
		case e.Entry.Type != tree.TypeDir && e.Nlink > 1:
			// Other names of it may be in directories not rebuilt.
		default:
			b.items[e.Ino] = it
		}
	}
	return nil
}

// FileSnapshot reads regular file ino's content state now (the uploader
// calls it again when a file changed while it was read).
func (db *DB) FileSnapshot(ctx context.Context, ino uint64) (*SnapFile, error) {
	f := &SnapFile{Ino: ino}
	err := db.read(ctx, func(tx querier) error {
		var mode uint32
		if err := tx.QueryRow(`SELECT mode FROM inodes WHERE ino = ?`, ino).Scan(&mode); err != nil {
			if isNoRows(err) {
				return ErrNotFound
			}
			return err
		}
		if mode&sIFMT != sIFREG {
			return ErrInvalid
		}
		return scanFiles(tx, map[uint64]*SnapFile{ino: f},
			`SELECT ino, data_version, size FROM inodes WHERE ino = ?`,
			`SELECT ino, name, ranges, clean FROM staging WHERE ino = ?`,
			`SELECT e.ino, e.off, e.len, e.chunk, e.chunk_off, COALESCE(c.len, 0), c.pack, c.pack_off, c.pack_len
				FROM extents e LEFT JOIN chunk_lens c ON c.chunk = e.chunk WHERE e.ino = ? ORDER BY e.off`, ino)
	})
	if err != nil {
		return nil, fmt.Errorf("file snapshot %d: %w", ino, err)
	}
	return f, nil
}

// ContentCurrent reports whether regular file ino still has data version
// version and no unpersisted writes pending (MarkUnpersisted): then bytes
// read from its staging file since the snapshot of that version are that
// version's bytes. (A writer marks the file unpersisted before it writes
// and commits a new version after; either is seen here.)
func (db *DB) ContentCurrent(ctx context.Context, ino, version uint64) (bool, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.unpersisted[ino] > 0 {
		return false, nil
	}
	var v uint64
	err := db.read(ctx, func(tx querier) error {
		return tx.QueryRow(`SELECT data_version FROM inodes WHERE ino = ?`, ino).Scan(&v)
	})
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("content current %d: %w", ino, err)
	}
	return v == version, nil
}
