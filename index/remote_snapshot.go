package index

// The snapshot for a commit. A commit rewrites only the directories that
// changed: those whose entries are queued dirty, the parents of every
// queued inode (an entry carries its inode's attributes and content), and
// their ancestors up to the root. Every other directory keeps the tree id
// recorded when it was last committed or loaded, without being read, so a
// commit costs O(changed directories), not O(volume).
//
// Invariant this relies on: a directory's recorded tree_id describes its
// entries as last committed unless the directory, or an inode it names, is
// on the dirty queue. Mutations queue in the same transaction; the
// uploader's ApplyCommit records new tree ids and takes covered items off
// the queue in one transaction.

import (
	"context"
	"fmt"
	"strings"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// Snapshot is a consistent view (one read transaction) of what a commit
// must write.
type Snapshot struct {
	// Base is the base commit and Pending the pending commit (see
	// MetaPendingCommit); zero when there is none.
	Base, Pending chunkstore.ID
	// Root is the root directory, rebuilt; nil when no directory needs to
	// be written (the queued changes are all of removed inodes, or the
	// root is not loaded).
	Root *SnapDir
	// RootAttrs are the root directory's attributes (set with Root).
	RootAttrs tree.RootAttrs
	// Files holds every regular file named in a rebuilt directory, by
	// inode (hard links share one).
	Files map[uint64]*SnapFile
	// Items are the queue entries the commit covers, as read in the
	// snapshot: pass them to ApplyCommit.
	Items []DirtyItem
}

// SnapDir is a directory rebuilt for the commit.
type SnapDir struct {
	Ino     uint64
	Entries []SnapEntry // sorted by name
}

// SnapEntry is one entry of a rebuilt directory. Entry holds the name, type,
// attributes, xattrs, symlink target and device number; a stored
// subdirectory's Entry.Subtree is its recorded tree id; a file's content
// (size, chunks) is left for the caller to fill from File.
type SnapEntry struct {
	Entry tree.Entry
	Ino   uint64
	Nlink uint32
	// LinkID is the link id recorded for the inode (loaded with it from
	// the remote tree, or written by an earlier commit; 0: none), which a
	// commit keeps writing while nlink > 1 (and drops, with Applied.Unlinked,
	// once it is not).
	LinkID uint64
	Dir    *SnapDir  // a subdirectory rebuilt in memory (nil: stored, with Entry.Totals)
	File   *SnapFile // a regular file
}

// SnapFile is a regular file's content at data version Version: Size bytes,
// the staged ranges not yet uploaded (read from the staging file; clean
// staged bytes are left out, they equal the extents) shadowing the
// extents, the rest holes.
type SnapFile struct {
	Ino     uint64
	Version uint64
	Size    int64
	Staging Staging
	Extents []SnapExtent // in file order
}

// SnapExtent is an extent with the length of its whole chunk when the
// index knows it (0 otherwise) and the chunk's location in a pack when it
// knows one (zero Loc.Pack otherwise).
type SnapExtent struct {
	Extent
	ChunkLen int64
	Loc      chunkstore.Loc
}

// Whole reports whether e is one whole chunk.
func (e SnapExtent) Whole() bool { return e.ChunkOff == 0 && e.Len == e.ChunkLen }

// Snapshot reads what a commit of the queued inodes inos must write (see
// the file comment). Inodes no longer queued are ignored. Items also gets
// the queue entries of inodes the rebuilt directories cover although they
// were not asked for ("ride-along": their current state is in the commit),
// except hard-linked files and directories with changed entries that are
// not rebuilt, whose other names or entries the commit may not cover.
func (db *DB) Snapshot(ctx context.Context, inos []uint64) (*Snapshot, error) {
	var s *Snapshot
	err := db.read(ctx, func(tx querier) error {
		b := &snapBuilder{tx: tx, marked: map[uint64]bool{}, items: map[uint64]DirtyItem{},
			snap: &Snapshot{Files: map[uint64]*SnapFile{}}}
		if err := b.run(inos); err != nil {
			return err
		}
		s = b.snap
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return s, nil
}

type snapBuilder struct {
	tx     querier
	snap   *Snapshot
	marked map[uint64]bool // directories to rebuild
	items  map[uint64]DirtyItem
}

func (b *snapBuilder) run(inos []uint64) error {
	for _, m := range []struct {
		key string
		dst *chunkstore.ID
	}{{MetaBaseCommit, &b.snap.Base}, {MetaPendingCommit, &b.snap.Pending}} {
		var v []byte
		err := b.tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, m.key).Scan(&v)
		if err != nil && !isNoRows(err) {
			return err
		}
		if err := scanID(v, m.dst); err != nil {
			return fmt.Errorf("meta %s: %w", m.key, err)
		}
	}
	if err := b.markItems(inos); err != nil {
		return err
	}
	var rootLoaded bool
	if err := b.tx.QueryRow(`SELECT loaded FROM inodes WHERE ino = ?`, RootIno).Scan(&rootLoaded); err != nil {
		return err
	}
	if len(b.marked) > 0 && rootLoaded {
		root, err := b.dir(RootIno)
		if err != nil {
			return err
		}
		b.snap.Root = root
		if err := b.rootAttrs(); err != nil {
			return err
		}
		if it, err := b.dirtyOf(RootIno); err != nil {
			return err
		} else if it != nil {
			b.items[RootIno] = *it
		}
	}
	for _, it := range b.items {
		b.snap.Items = append(b.snap.Items, it)
	}
	return nil
}

// markItems reads the queue entries of inos and marks the directories they
// need rebuilt, with their ancestors.
func (b *snapBuilder) markItems(inos []uint64) error {
	for len(inos) > 0 {
		n := min(len(inos), 500)
		batch := inos[:n]
		inos = inos[n:]
		args := make([]any, len(batch))
		for i, ino := range batch {
			args[i] = ino
		}
		rows, err := b.tx.Query(`SELECT `+dirtyCols+` FROM dirty WHERE ino IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			it, err := scanDirty(rows)
			if err != nil {
				rows.Close()
				return err
			}
			b.items[it.Ino] = it
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for ino, it := range b.items {
		var mode, nlink uint32
		if err := b.tx.QueryRow(`SELECT mode, nlink FROM inodes WHERE ino = ?`, ino).Scan(&mode, &nlink); err != nil {
			if isNoRows(err) {
				continue // deleted: nothing to write, the entry is covered
			}
			return err
		}
		// The root has no entry: its attributes go in the commit, which a
		// rebuilt root brings about.
		if mode&sIFMT == sIFDIR && (it.Reasons&DirtyEntries != 0 && nlink > 0 || ino == RootIno) {
			if err := b.mark(ino); err != nil {
				return err
			}
		}
		parents, err := b.parents(ino)
		if err != nil {
			return err
		}
		for _, p := range parents {
			if err := b.mark(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// rootAttrs reads the root directory's attributes and xattrs.
func (b *snapBuilder) rootAttrs() error {
	a := &b.snap.RootAttrs
	var mode uint32
	if err := b.tx.QueryRow(`SELECT mode, uid, gid, mtime_ns FROM inodes WHERE ino = ?`, RootIno).
		Scan(&mode, &a.UID, &a.GID, &a.MtimeNs); err != nil {
		return fmt.Errorf("root attributes: %w", err)
	}
	a.Mode = mode & tree.ModeMask
	rows, err := b.tx.Query(`SELECT name, value FROM xattrs WHERE ino = ? ORDER BY name`, RootIno)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var x tree.Xattr
		if err := rows.Scan(&x.Name, &x.Value); err != nil {
			return err
		}
		if x.Value == nil {
			x.Value = []byte{}
		}
		a.Xattrs = append(a.Xattrs, x)
	}
	return rows.Err()
}

// mark marks dir and its ancestors for rebuilding.
func (b *snapBuilder) mark(dir uint64) error {
	for !b.marked[dir] {
		b.marked[dir] = true
		if dir == RootIno {
			return nil
		}
		parents, err := b.parents(dir)
		if err != nil || len(parents) == 0 {
			return err // a removed directory: never reached from the root
		}
		dir = parents[0]
	}
	return nil
}

func (b *snapBuilder) parents(ino uint64) ([]uint64, error) {
	return queryInos(b.tx, `SELECT parent FROM dentries WHERE ino = ?`, ino)
}

func (b *snapBuilder) dirtyOf(ino uint64) (*DirtyItem, error) {
	it, err := scanDirty(b.tx.QueryRow(`SELECT `+dirtyCols+` FROM dirty WHERE ino = ?`, ino))
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &it, nil
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
