package index

// The lazy mount of a remote tree. A directory loaded from the remote tree
// is "not loaded" (inodes.loaded = 0) until it is first looked up: its
// entries exist only in the tree object named by its tree_id. EnsureLoaded
// turns that object into inodes, entries, xattrs and extents in one
// transaction; subdirectories come in not loaded, each with its subtree id,
// so a mount costs one tree object per directory actually visited.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// MetaPendingCommit is the meta key of a commit the uploader is about to
// make head: written before the head swap, cleared by ApplyCommit. When a
// later attempt finds head equal to it, the swap succeeded although its
// reply was lost (or the process died before ApplyCommit).
const MetaPendingCommit = "pending_commit"

// MetaRemoteHead is the meta key of the remote head a commit attempt found
// moved by another device (a lost head race), for the merge to rebase on.
const MetaRemoteHead = "remote_head"

// RemoteLoader fetches objects of the remote tree for EnsureLoaded. Each
// method returns the decoded object after checking it against id (a
// corrupt object is an error, never a wrong tree). Methods are called
// without any index lock held, possibly from several goroutines at once.
type RemoteLoader interface {
	Tree(ctx context.Context, id chunkstore.ID) (*tree.Tree, error)
	Manifest(ctx context.Context, id chunkstore.ID) (*tree.Manifest, error)
}

// manifestConcurrency bounds the parallel manifest fetches of EnsureLoaded.
const manifestConcurrency = 8

// File type bits of Attr.Mode beyond those in attr.go.
const (
	sIFIFO  = 0o010000
	sIFCHR  = 0o020000
	sIFBLK  = 0o060000
	sIFSOCK = 0o140000
)

// modeType returns the file type bits of a tree entry type.
func modeType(t tree.Type) uint32 {
	switch t {
	case tree.TypeDir:
		return sIFDIR
	case tree.TypeSymlink:
		return sIFLNK
	case tree.TypeFIFO:
		return sIFIFO
	case tree.TypeSocket:
		return sIFSOCK
	case tree.TypeCharDev:
		return sIFCHR
	case tree.TypeBlockDev:
		return sIFBLK
	}
	return sIFREG
}

// entryType returns the tree entry type of an inode mode (0: unknown).
func entryType(mode uint32) tree.Type {
	switch mode & sIFMT {
	case sIFREG:
		return tree.TypeFile
	case sIFDIR:
		return tree.TypeDir
	case sIFLNK:
		return tree.TypeSymlink
	case sIFIFO:
		return tree.TypeFIFO
	case sIFSOCK:
		return tree.TypeSocket
	case sIFCHR:
		return tree.TypeCharDev
	case sIFBLK:
		return tree.TypeBlockDev
	}
	return 0
}

// LoadRemote makes a fresh index a lazy copy of remote commit c, whose id
// is commit: the root directory becomes not loaded with tree id c.Root and
// totals c.Stats, takes the attributes c.RootAttrs (mode bits, owner,
// xattrs, and the mtime as all its times), and commit becomes the base
// commit. Calling it again with the same commit is a no-op. An index that
// already has entries, queued changes or another base commit is refused
// with ErrNotEmpty: it must be synced, not replaced.
func (db *DB) LoadRemote(ctx context.Context, commit chunkstore.ID, c *tree.Commit) error {
	if commit.IsZero() || c.Root.IsZero() {
		return fmt.Errorf("load remote %s: zero id: %w", commit, ErrInvalid)
	}
	root, a := c.Root, &c.RootAttrs
	err := db.write(ctx, true, func(tx querier) error {
		var base []byte
		err := tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, MetaBaseCommit).Scan(&base)
		switch {
		case err == nil && string(base) == string(commit[:]):
			return nil
		case err == nil:
			return fmt.Errorf("index has base commit %x: %w", base, ErrNotEmpty)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT (SELECT COUNT(*) FROM dentries) + (SELECT COUNT(*) FROM dirty)`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("index has entries or queued changes: %w", ErrNotEmpty)
		}
		if _, err := tx.Exec(`UPDATE inodes SET tree_id = ?1, loaded = 0, mode = ?2, uid = ?3, gid = ?4,
				atime_ns = ?5, mtime_ns = ?5, ctime_ns = ?5, btime_ns = ?5,
				sub_files = ?6, sub_dirs = ?7, sub_bytes = ?8, sub_chunks = ?9 WHERE ino = ?10`,
			root[:], sIFDIR|a.Mode&permMax, a.UID, a.GID, a.MtimeNs,
			c.Stats.Files, c.Stats.Dirs, c.Stats.Bytes, c.Stats.Chunks, RootIno); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM xattrs WHERE ino = ?`, RootIno); err != nil {
			return err
		}
		if len(a.Xattrs) > 0 {
			db.xattrs.add(RootIno) // before the commit, as SetXattr
		}
		for _, x := range a.Xattrs {
			if _, err := tx.Exec(qLoadXattr, RootIno, x.Name, x.Value); err != nil {
				return fmt.Errorf("root xattr %q: %w", x.Name, err)
			}
		}
		_, err = tx.Exec(`INSERT INTO meta(key, value) VALUES(?, ?)`, MetaBaseCommit, commit[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("load remote %s: %w", commit, err)
	}
	return nil
}

// Loaded reports whether directory dir's entries are in the index (false:
// call EnsureLoaded before Lookup, ReadDir or any change in it).
func (db *DB) Loaded(ctx context.Context, dir uint64) (bool, error) {
	loaded, _, err := db.loadState(ctx, dir)
	if err != nil {
		return false, fmt.Errorf("loaded %d: %w", dir, err)
	}
	return loaded, nil
}

// TreeID returns the id of the remote tree directory dir was last loaded
// from or committed as (the zero ID for a directory never committed).
func (db *DB) TreeID(ctx context.Context, dir uint64) (chunkstore.ID, error) {
	_, id, err := db.loadState(ctx, dir)
	if err != nil {
		return id, fmt.Errorf("tree id %d: %w", dir, err)
	}
	return id, nil
}

func (db *DB) loadState(ctx context.Context, dir uint64) (loaded bool, id chunkstore.ID, err error) {
	err = db.read(ctx, func(tx querier) error {
		var mode uint32
		var tid []byte
		if err := tx.QueryRow(`SELECT mode, loaded, tree_id FROM inodes WHERE ino = ?`, dir).Scan(&mode, &loaded, &tid); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if mode&sIFMT != sIFDIR {
			return ErrNotDir
		}
		return scanID(tid, &id)
	})
	return loaded, id, err
}

// scanID copies a nullable id column into id (zero for NULL).
func scanID(b []byte, id *chunkstore.ID) error {
	switch len(b) {
	case 0:
		*id = chunkstore.ID{}
	case chunkstore.IDSize:
		copy(id[:], b)
	default:
		return fmt.Errorf("id of %d bytes", len(b))
	}
	return nil
}

// EnsureLoaded loads directory dir from its remote tree if it is not loaded
// yet: it fetches the tree (and the manifests of its large files) through
// load, then inserts all entries in one transaction. Subdirectories come in
// not loaded. It is idempotent and safe to call concurrently: a directory
// loaded meanwhile is left alone, so callers may race (the loser's fetch is
// wasted, nothing else). An entry with a link id whose inode an earlier
// load made (here or in another directory) becomes another name of that
// inode (see links.go).
func (db *DB) EnsureLoaded(ctx context.Context, dir uint64, load RemoteLoader) error {
	for range 3 {
		loaded, id, err := db.loadState(ctx, dir)
		if err != nil {
			return fmt.Errorf("load dir %d: %w", dir, err)
		}
		if loaded {
			return nil
		}
		if id.IsZero() {
			return fmt.Errorf("load dir %d: not loaded and no tree id: %w", dir, ErrInvalid)
		}
		t, err := load.Tree(ctx, id)
		if err != nil {
			return fmt.Errorf("load dir %d: tree %s: %w", dir, id, err)
		}
		claimed, err := db.claimedTotals(ctx, dir)
		if err != nil {
			return fmt.Errorf("load dir %d: %w", dir, err)
		}
		if err := checkRemoteTree(id, t, claimed); err != nil {
			return fmt.Errorf("load dir %d: %w", dir, err)
		}
		mans, err := loadManifests(ctx, t, load)
		if err != nil {
			return fmt.Errorf("load dir %d: %w", dir, err)
		}
		moved := false
		err = db.write(ctx, false, func(tx querier) error {
			var loaded bool
			var tid []byte
			if err := tx.QueryRow(`SELECT loaded, tree_id FROM inodes WHERE ino = ?`, dir).Scan(&loaded, &tid); err != nil {
				return err
			}
			if loaded {
				return nil
			}
			if string(tid) != string(id[:]) {
				moved = true // a sync replaced the tree meanwhile: fetch again
				return nil
			}
			return db.insertTreeTx(tx, dir, t, mans)
		})
		if err != nil {
			return fmt.Errorf("load dir %d from tree %s: %w", dir, id, err)
		}
		if !moved {
			return nil
		}
	}
	return fmt.Errorf("load dir %d: tree id keeps changing: %w", dir, ErrChanged)
}

// loadManifests fetches the manifests t's files name, in parallel, and
// checks each against its entry's size.
func loadManifests(ctx context.Context, t *tree.Tree, load RemoteLoader) (map[chunkstore.ID]*tree.Manifest, error) {
	out := map[chunkstore.ID]*tree.Manifest{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(manifestConcurrency)
	for i := range t.Entries {
		e := &t.Entries[i]
		if e.Manifest.IsZero() {
			continue
		}
		mu.Lock()
		_, dup := out[e.Manifest]
		out[e.Manifest] = nil
		mu.Unlock()
		if dup {
			continue
		}
		g.Go(func() error {
			m, err := load.Manifest(gctx, e.Manifest)
			if err != nil {
				return fmt.Errorf("manifest %s of %q: %w", e.Manifest, e.Name, err)
			}
			if m.Size() != e.Size || uint64(len(m.Chunks)) != e.ManifestChunks {
				return fmt.Errorf("manifest %s of %q holds %d bytes in %d chunks, entry says %d in %d: %w",
					e.Manifest, e.Name, m.Size(), len(m.Chunks), e.Size, e.ManifestChunks, tree.ErrCorrupt)
			}
			mu.Lock()
			out[e.Manifest] = m
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Statements of insertTreeTx; the write transaction prepares each once
// per connection.
const (
	qLoadInode = `INSERT INTO inodes(mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, btime_ns,
		target, tree_id, loaded, sub_files, sub_dirs, sub_bytes, sub_chunks)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qLoadDentry = `INSERT INTO dentries(parent, name, ino, cookie) VALUES(?, ?, ?, ?)`
	qLoadXattr  = `INSERT INTO xattrs(ino, name, value) VALUES(?, ?, ?)`
	qLoadExtent = `INSERT INTO extents(ino, off, len, chunk, chunk_off) VALUES(?, ?, ?, ?, 0)`
)

// insertTreeTx inserts t's entries as the entries of the not-loaded
// directory dir and marks it loaded; inodes given xattrs go into db.xattrs.
// A name of an inode already loaded (joinLinkTx) gets only its entry.
func (db *DB) insertTreeTx(tx querier, dir uint64, t *tree.Tree, mans map[chunkstore.ID]*tree.Manifest) error {
	var one int
	if err := tx.QueryRow(`SELECT 1 FROM dentries WHERE parent = ? LIMIT 1`, dir).Scan(&one); err == nil {
		return fmt.Errorf("not-loaded directory has entries: %w", ErrInvalid)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	seen := map[chunkstore.ID]bool{}
	subdirs := 0
	for i := range t.Entries {
		e := &t.Entries[i]
		ino, err := db.loadEntryTx(tx, e, func(id chunkstore.ID) *tree.Manifest { return mans[id] }, seen)
		if err != nil {
			return fmt.Errorf("entry %q: %w", e.Name, err)
		}
		if e.Type == tree.TypeDir {
			subdirs++
		}
		if _, err := tx.Exec(qLoadDentry, dir, e.Name, ino, FirstCookie+i); err != nil {
			return fmt.Errorf("entry %q: %w", e.Name, err)
		}
	}
	_, err := tx.Exec(`UPDATE inodes SET loaded = 1, nlink = ? WHERE ino = ?`, 2+subdirs, dir)
	return err
}

// loadEntryTx returns the inode of tree entry e, inserting it with its
// xattrs and extents (a manifest file's from mans) unless it is another
// name of an inode loaded before (joinLinkTx). seen, when set, holds the
// chunks whose lengths were recorded already. It inserts no entry.
func (db *DB) loadEntryTx(tx querier, e *tree.Entry, mans func(chunkstore.ID) *tree.Manifest, seen map[chunkstore.ID]bool) (uint64, error) {
	refs, err := entryRefs(e, mans)
	if err != nil {
		return 0, err
	}
	ino, joined, err := db.entryInodeTx(tx, e)
	if err != nil || joined {
		return ino, err
	}
	return ino, db.entryContentTx(tx, ino, e, refs, seen)
}

// entryRefs returns the chunks of tree entry e: inline, or its manifest's
// (from mans; an error when it has not been fetched).
func entryRefs(e *tree.Entry, mans func(chunkstore.ID) *tree.Manifest) ([]tree.ChunkRef, error) {
	if e.Manifest.IsZero() {
		return e.Chunks, nil
	}
	m := mans(e.Manifest)
	if m == nil {
		return nil, fmt.Errorf("manifest %s not loaded", e.Manifest)
	}
	return m.Chunks, nil
}

// entryContentTx inserts the xattrs of the new inode ino of entry e and,
// for a file, its extents refs and their chunks' lengths and locations
// (see loadEntryTx for seen).
func (db *DB) entryContentTx(tx querier, ino uint64, e *tree.Entry, refs []tree.ChunkRef, seen map[chunkstore.ID]bool) error {
	if len(e.Xattrs) > 0 {
		db.xattrs.add(ino) // before the commit, as SetXattr
	}
	for _, x := range e.Xattrs {
		if _, err := tx.Exec(qLoadXattr, ino, x.Name, x.Value); err != nil {
			return fmt.Errorf("xattr %q: %w", x.Name, err)
		}
	}
	locs, err := entryLocs(e, refs)
	if err != nil {
		return err
	}
	var off int64
	for i, r := range refs {
		if _, err := tx.Exec(qLoadExtent, ino, off, int64(r.Length), r.ID[:]); err != nil {
			return fmt.Errorf("extent at %d: %w", off, err)
		}
		off += int64(r.Length)
		l, packed := locs[i]
		if seen == nil || !seen[r.ID] || packed {
			if seen != nil {
				seen[r.ID] = true
			}
			if err := loadChunkLenTx(tx, r.ID, int64(r.Length), l); err != nil {
				return err
			}
		}
	}
	return nil
}

// entryInodeTx returns the inode of tree entry e: the inode of an earlier
// name of its link id (joined), or a new one. A name whose link id names
// an inode of other content gets an inode of its own with one link.
func (db *DB) entryInodeTx(tx querier, e *tree.Entry) (ino uint64, joined bool, err error) {
	how, nlink := linkNew, uint32(1)
	if e.LinkID != 0 {
		if ino, how, err = db.joinLinkTx(tx, e); err != nil || how == linkJoined {
			return ino, how == linkJoined, err
		}
		if how == linkNew {
			nlink = e.Nlink
		}
	}
	if ino, err = insertEntryInode(tx, e, nlink); err != nil {
		return 0, false, err
	}
	if e.LinkID != 0 && how == linkNew {
		err = recordLinkTx(tx, e, ino)
	}
	return ino, false, err
}

// insertEntryInode inserts the inode of tree entry e with link count nlink
// (for a directory: 2) and returns its number. All four times are the
// entry's mtime (the tree keeps no other); a directory gets its subtree's
// totals.
func insertEntryInode(tx querier, e *tree.Entry, nlink uint32) (uint64, error) {
	var (
		size   = int64(e.Size)
		target any
		treeID any
		loaded = 1
		totals [4]any // NULL but for directories
	)
	switch e.Type {
	case tree.TypeDir:
		nlink, treeID, loaded = 2, e.Subtree[:], 0
		totals = [4]any{e.Totals.Files, e.Totals.Dirs, e.Totals.Bytes, e.Totals.Chunks}
	case tree.TypeSymlink:
		target, size = []byte(e.Target), int64(len(e.Target))
	}
	res, err := tx.Exec(qLoadInode, modeType(e.Type)|e.Mode&permMax, e.UID, e.GID, size, nlink, uint32(e.Rdev),
		e.MtimeNs, e.MtimeNs, e.MtimeNs, e.MtimeNs, target, treeID, loaded, totals[0], totals[1], totals[2], totals[3])
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	return uint64(id), err
}
