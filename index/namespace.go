package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"
)

// MaxNameLen is the longest entry name in bytes (as ext4).
const MaxNameLen = 255

// MaxLink is the most hard links an inode may have (EMLINK beyond).
const MaxLink = 65000

// FirstCookie is the smallest entry cookie; 1 and 2 are left for the "."
// and ".." entries a file system lists first.
const FirstCookie = 3

// NewNode describes an inode to create.
type NewNode struct {
	Mode     uint32 // file type and permission bits
	UID, GID uint32
	Rdev     uint32
	Target   string // symlink target
}

// Removed describes the inode an Unlink, Rmdir or replacing Rename took a
// link from. With Nlink 0 the inode is an orphan, unless Deleted: the
// caller calls Forget once no open file uses it. Ino 0 means nothing was
// removed.
type Removed struct {
	Ino   uint64
	Nlink uint32
	// Deleted: the inode is gone already (UnlinkUnused), and Staging
	// names its staging file, for the caller to remove ("" if none).
	Deleted bool
	Staging string
}

// DirEntry is one entry of a directory listing with its inode's attributes.
type DirEntry struct {
	Name   string
	Cookie uint64
	Attr   Attr
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxNameLen {
		return ErrInvalid
	}
	return nil
}

// dirTx returns the attributes of the directory ino, checking that it is a
// live, loaded directory.
func dirTx(tx querier, ino uint64) (Attr, error) {
	var loaded bool
	a, err := scanAttr(tx.QueryRow(`SELECT `+attrCols+`, i.loaded FROM inodes i WHERE i.ino = ?`, ino), &loaded)
	return checkDir(a, loaded, err)
}

// checkDir is dirTx's verdict on the scanned row of directory a.
func checkDir(a Attr, loaded bool, err error) (Attr, error) {
	ino := a.Ino
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return a, ErrNotFound
	case err != nil:
		return a, err
	case !a.IsDir():
		return a, ErrNotDir
	case a.Nlink == 0:
		return a, ErrNotFound // removed directory
	case !loaded:
		return a, &NotLoadedError{Dir: ino}
	}
	return a, nil
}

// lookupTx returns the inode named name in parent and the entry's cookie.
// Two point queries: SQLite runs the equivalent join five times slower.
// Outside a transaction (DB.read1 on the pool) the inode of an entry found
// cannot go away in between: an inode with a name is never deleted.
func lookupTx(tx querier, parent uint64, name string) (Attr, uint64, error) {
	var ino, cookie uint64
	err := tx.QueryRow(`SELECT ino, cookie FROM dentries WHERE parent = ? AND name = ?`, parent, name).Scan(&ino, &cookie)
	if errors.Is(err, sql.ErrNoRows) {
		return Attr{}, 0, ErrNotFound
	}
	if err != nil {
		return Attr{}, 0, err
	}
	a, err := getAttrTx(tx, ino)
	return a, cookie, err
}

// Lookup returns the attributes of the inode named name in directory parent.
func (db *DB) Lookup(ctx context.Context, parent uint64, name string) (Attr, error) {
	// A miss is decided by a second statement that reads the parent's
	// state and the entry's absence together (a concurrent load of the
	// parent must not make a miss look final). Point queries only: SQLite
	// runs the equivalent three-way outer join ten times slower.
	var a Attr
	err := db.read1(ctx, func(tx querier) (err error) {
		a, _, err = lookupTx(tx, parent, name)
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		if err != nil {
			return Attr{}, fmt.Errorf("lookup %d/%q: %w", parent, name, err)
		}
		return a, nil
	}
	var p Attr
	var loaded, exists bool
	err = db.read1(ctx, func(tx querier) (err error) {
		p, err = scanAttr(tx.QueryRow(`SELECT `+attrCols+`, i.loaded,
			EXISTS(SELECT 1 FROM dentries WHERE parent = i.ino AND name = ?2) FROM inodes i WHERE i.ino = ?1`,
			parent, name), &loaded, &exists)
		return err
	})
	p.Ino = parent
	if _, err = checkDir(p, loaded, err); err == nil {
		err = ErrNotFound
		if exists { // created between the two statements
			err = db.read1(ctx, func(tx querier) (err error) {
				a, _, err = lookupTx(tx, parent, name)
				return err
			})
		}
	}
	if err != nil {
		return Attr{}, fmt.Errorf("lookup %d/%q: %w", parent, name, err)
	}
	return a, nil
}

// addEntryTx adds the entry name -> ino to parent with the next cookie
// (one statement). A name already taken fails with ErrExist.
func addEntryTx(tx querier, parent uint64, name string, ino uint64) error {
	// ORDER BY .. LIMIT 1 reads the last cookie off the index; a MAX()
	// inside COALESCE would count through the whole directory.
	_, err := tx.Exec(`INSERT INTO dentries(parent, name, ino, cookie) VALUES(?1, ?2, ?3,
		COALESCE((SELECT cookie FROM dentries WHERE parent = ?1 ORDER BY cookie DESC LIMIT 1), ?4) + 1)`,
		parent, name, ino, FirstCookie-1)
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return ErrExist // the primary key (parent, name)
	}
	return err
}

// Create makes a new inode described by n and links it as name in parent:
// mkdir, mknod, symlink and creat in one. It fails with ErrExist when the
// name is taken. As in ext4, a parent with the setgid bit gives the new
// inode its group, and a new directory the setgid bit too.
func (db *DB) Create(ctx context.Context, parent uint64, name string, n NewNode) (Attr, error) {
	var a Attr
	if err := checkName(name); err != nil {
		return a, fmt.Errorf("create %d/%q: %w", parent, name, err)
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	id, err := db.newInoLocked(ctx)
	if err != nil {
		return a, fmt.Errorf("create %d/%q: %w", parent, name, err)
	}
	err = db.writeLocked(ctx, false, func(tx querier) error {
		p, err := dirTx(tx, parent)
		if err != nil {
			return err
		}
		// A taken name fails the entry's insert (addEntryTx).
		if p.Mode&sISGID != 0 {
			n.GID = p.GID
			if n.Mode&sIFMT == sIFDIR {
				n.Mode |= sISGID
			}
		}
		now := db.nowNS()
		nlink, size := 1, int64(0)
		isDir := n.Mode&sIFMT == sIFDIR
		if isDir {
			nlink = 2
		}
		var target any
		if n.Mode&sIFMT == sIFLNK {
			target, size = []byte(n.Target), int64(len(n.Target))
		}
		if _, err := tx.Exec(`INSERT INTO inodes(ino, mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, btime_ns, target)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, n.Mode, n.UID, n.GID, size, nlink, n.Rdev, now, now, now, now, target); err != nil {
			return err
		}
		if err := addEntryTx(tx, parent, name, id); err != nil {
			return err
		}
		if isDir {
			if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink + 1 WHERE ino = ?`, parent); err != nil {
				return err
			}
		}
		if err := touchTx(tx, parent, now); err != nil {
			return err
		}
		a = Attr{Ino: id, Gen: 1, Mode: n.Mode, Nlink: uint32(nlink), UID: n.UID, GID: n.GID, Rdev: n.Rdev,
			Size: size, Atime: now, Mtime: now, Ctime: now, Btime: now, Target: n.Target}
		return db.markDirtyTx(tx, parent, DirtyEntries)
	})
	if err != nil {
		return a, fmt.Errorf("create %d/%q: %w", parent, name, err)
	}
	return a, nil
}

// CreateUnlinked makes a new inode described by n that no directory names
// (O_TMPFILE): an orphan from the start, which Link can give a name. The
// parent only has to be a live directory.
func (db *DB) CreateUnlinked(ctx context.Context, parent uint64, n NewNode) (Attr, error) {
	var a Attr
	err := db.write(ctx, false, func(tx querier) error {
		p, err := dirTx(tx, parent)
		if err != nil {
			return err
		}
		if p.Mode&sISGID != 0 {
			n.GID = p.GID
		}
		now := db.nowNS()
		res, err := tx.Exec(`INSERT INTO inodes(mode, uid, gid, nlink, rdev, atime_ns, mtime_ns, ctime_ns, btime_ns)
			VALUES(?, ?, ?, 0, ?, ?, ?, ?, ?)`, n.Mode, n.UID, n.GID, n.Rdev, now, now, now, now)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		db.addOrphan(uint64(id))
		a, err = getAttrTx(tx, uint64(id))
		return err
	})
	if err != nil {
		return a, fmt.Errorf("create unlinked in %d: %w", parent, err)
	}
	return a, nil
}

// Link adds the name newName in directory parent for the existing inode ino
// (a hard link) and returns its new attributes.
func (db *DB) Link(ctx context.Context, ino, parent uint64, name string) (Attr, error) {
	var a Attr
	err := db.write(ctx, false, func(tx querier) error {
		if err := checkName(name); err != nil {
			return err
		}
		if _, err := dirTx(tx, parent); err != nil {
			return err
		}
		var err error
		if a, err = getAttrTx(tx, ino); err != nil {
			return err
		}
		// An inode without links is linked only when the kernel allows it
		// (an O_TMPFILE file made linkable); it checks that.
		switch {
		case a.IsDir():
			return ErrIsDir
		case a.Nlink >= MaxLink:
			return ErrTooManyLink
		}
		if _, _, err := lookupTx(tx, parent, name); err == nil {
			return ErrExist
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := addEntryTx(tx, parent, name, ino); err != nil {
			return err
		}
		now := db.nowNS()
		if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink + 1, ctime_ns = ? WHERE ino = ?`, now, ino); err != nil {
			return err
		}
		if err := db.linkCountChangedTx(tx, ino, a.Nlink+1); err != nil {
			return err
		}
		if err := touchTx(tx, parent, now); err != nil {
			return err
		}
		if err := db.markDirtyTx(tx, parent, DirtyEntries); err != nil {
			return err
		}
		a, err = getAttrTx(tx, ino)
		return err
	})
	if err != nil {
		return a, fmt.Errorf("link %d to %d/%q: %w", ino, parent, name, err)
	}
	return a, nil
}

// dropLinkTx removes one link of the inode a (whose entry is already gone):
// directories go to nlink 0 and take a link from their parent.
func (db *DB) dropLinkTx(tx querier, a Attr, parent uint64, now int64) (Removed, error) {
	nlink := a.Nlink - 1
	if a.IsDir() {
		nlink = 0
		if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink - 1 WHERE ino = ?`, parent); err != nil {
			return Removed{}, err
		}
	}
	if _, err := tx.Exec(`UPDATE inodes SET nlink = ?, ctime_ns = ? WHERE ino = ?`, nlink, now, a.Ino); err != nil {
		return Removed{}, err
	}
	if nlink == 0 {
		db.addOrphan(a.Ino)
	}
	return Removed{Ino: a.Ino, Nlink: nlink}, nil
}

func isEmptyDirTx(tx querier, ino uint64) error {
	var loaded bool
	if err := tx.QueryRow(`SELECT loaded FROM inodes WHERE ino = ?`, ino).Scan(&loaded); err != nil {
		return err
	}
	if !loaded {
		return &NotLoadedError{Dir: ino}
	}
	var one int
	err := tx.QueryRow(`SELECT 1 FROM dentries WHERE parent = ? LIMIT 1`, ino).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return ErrNotEmpty
}

func (db *DB) remove(ctx context.Context, op string, parent uint64, name string, dir bool, unused func(ino uint64) bool) (Removed, error) {
	var rm Removed
	err := db.write(ctx, false, func(tx querier) error {
		if _, err := dirTx(tx, parent); err != nil {
			return err
		}
		a, _, err := lookupTx(tx, parent, name)
		if err != nil {
			return err
		}
		if dir && !a.IsDir() {
			return ErrNotDir
		}
		if !dir && a.IsDir() {
			return ErrIsDir
		}
		if dir {
			if err := isEmptyDirTx(tx, a.Ino); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(`DELETE FROM dentries WHERE parent = ? AND name = ?`, parent, name); err != nil {
			return err
		}
		now := db.nowNS()
		if rm, err = db.dropLinkTx(tx, a, parent, now); err != nil {
			return err
		}
		if err := touchTx(tx, parent, now); err != nil {
			return err
		}
		if !dir {
			if err := db.linkCountChangedTx(tx, a.Ino, rm.Nlink); err != nil {
				return err
			}
		}
		if rm.Nlink == 0 && a.IsRegular() && unused != nil && unused(a.Ino) {
			if rm.Staging, err = deleteInodeTx(tx, a.Ino); err != nil {
				return err
			}
			rm.Deleted = true
		}
		return db.markDirtyTx(tx, parent, DirtyEntries)
	})
	if err != nil {
		return Removed{}, fmt.Errorf("%s %d/%q: %w", op, parent, name, err)
	}
	if rm.Deleted {
		db.deleted(rm.Ino)
	}
	return rm, nil
}

// Unlink removes the entry name (not a directory) from parent.
func (db *DB) Unlink(ctx context.Context, parent uint64, name string) (Removed, error) {
	return db.remove(ctx, "unlink", parent, name, false, nil)
}

// UnlinkUnused is Unlink that also deletes the inode, in the same
// transaction, when that was its last link, it is a regular file and
// unused(ino) reports that no open file uses it (the caller makes sure
// none can start meanwhile). Forget then has nothing to do: a second write
// transaction per file of an rm -rf (a fifth of the daemon's CPU in it).
func (db *DB) UnlinkUnused(ctx context.Context, parent uint64, name string, unused func(ino uint64) bool) (Removed, error) {
	return db.remove(ctx, "unlink", parent, name, false, unused)
}

// Rmdir removes the empty directory name from parent.
func (db *DB) Rmdir(ctx context.Context, parent uint64, name string) (Removed, error) {
	return db.remove(ctx, "rmdir", parent, name, true, nil)
}

// ReadDir lists up to limit entries of directory dir whose cookie is
// greater than after, in cookie order, each with its inode's attributes
// (one query: the listing for readdirplus).
func (db *DB) ReadDir(ctx context.Context, dir uint64, after uint64, limit int) ([]DirEntry, error) {
	var out []DirEntry
	err := db.read(ctx, func(tx querier) error {
		if _, err := dirTx(tx, dir); err != nil && !errors.Is(err, ErrNotFound) {
			return err // a removed directory lists as empty
		}
		rows, err := tx.Query(`SELECT `+attrCols+`, d.name, d.cookie FROM dentries d JOIN inodes i ON i.ino = d.ino
			WHERE d.parent = ? AND d.cookie > ? ORDER BY d.cookie LIMIT ?`, dir, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e DirEntry
			if e.Attr, err = scanAttr(rows, &e.Name, &e.Cookie); err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("readdir %d after %d: %w", dir, after, err)
	}
	return out, nil
}

// Parent returns the directory holding an entry for ino and the entry's
// name (for directories, the only one). A root or orphan has none:
// ErrNotFound.
func (db *DB) Parent(ctx context.Context, ino uint64) (parent uint64, name string, err error) {
	err = db.read1(ctx, func(tx querier) error {
		return tx.QueryRow(`SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent, name LIMIT 1`, ino).Scan(&parent, &name)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return 0, "", fmt.Errorf("parent of %d: %w", ino, err)
	}
	return parent, name, nil
}

// Forget deletes inode ino with everything that belongs to it if it has no
// links left (an orphan no longer open). It returns the name of the staging
// file the caller should now remove ("" if none) and whether the inode was
// deleted. A linked inode is left alone, without a query unless it lost a
// link since Open.
func (db *DB) Forget(ctx context.Context, ino uint64) (staging string, deleted bool, err error) {
	db.omu.Lock()
	_, maybe := db.orphans[ino]
	db.omu.Unlock()
	if !maybe {
		return "", false, nil
	}
	settled := false // the inode is linked or gone: it leaves the set
	err = db.write(ctx, false, func(tx querier) error {
		var nlink uint32
		if err := tx.QueryRow(`SELECT nlink FROM inodes WHERE ino = ?`, ino).Scan(&nlink); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				settled = true
				return nil
			}
			return err
		}
		if nlink > 0 || ino == RootIno {
			settled = true
			return nil
		}
		var err error
		staging, err = deleteInodeTx(tx, ino)
		deleted = err == nil
		settled = deleted
		return err
	})
	if settled {
		db.omu.Lock()
		delete(db.orphans, ino)
		db.omu.Unlock()
	}
	if err != nil {
		return "", false, fmt.Errorf("forget %d: %w", ino, err)
	}
	if deleted {
		db.deleted(ino)
	}
	return staging, deleted, nil
}

// deleted forgets what memory holds of ino, whose inode was just deleted.
func (db *DB) deleted(ino uint64) {
	db.xattrs.remove(ino) // inode numbers are never reused
	db.omu.Lock()
	delete(db.orphans, ino)
	delete(db.displaced, ino)
	db.omu.Unlock()
}

func deleteInodeTx(tx querier, ino uint64) (string, error) {
	var staging string
	err := tx.QueryRow(`SELECT name FROM staging WHERE ino = ?`, ino).Scan(&staging)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	for _, q := range []string{
		`DELETE FROM inodes WHERE ino = ?`,
		`DELETE FROM xattrs WHERE ino = ?`,
		`DELETE FROM extents WHERE ino = ?`,
		`DELETE FROM staging WHERE ino = ?`,
		`DELETE FROM dirty WHERE ino = ?`,
		`DELETE FROM displaced WHERE ino = ?`,
	} {
		if _, err := tx.Exec(q, ino); err != nil {
			return "", err
		}
	}
	return staging, nil
}

// addOrphan records that ino may have no links left (see DB.orphans).
func (db *DB) addOrphan(ino uint64) {
	db.omu.Lock()
	db.orphans[ino] = struct{}{}
	db.omu.Unlock()
}

// purgeOrphans deletes all orphans (at Open: no file can be open yet).
// Their staging files are removed by the file system's own sweep of
// staging names the index no longer knows (StagingNames).
func (db *DB) purgeOrphans(ctx context.Context) (int, error) {
	n := 0
	err := db.write(ctx, false, func(tx querier) error {
		inos, err := queryInos(tx, `SELECT ino FROM inodes WHERE nlink = 0`)
		if err != nil {
			return err
		}
		for _, ino := range inos {
			if _, err := deleteInodeTx(tx, ino); err != nil {
				return err
			}
		}
		n = len(inos)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge orphans: %w", err)
	}
	return n, nil
}
