package index

// What a merge leaves behind for later: the names local renames took out
// of committed directories (departed), the inodes a pull took the last
// name of (displaced), and the conflicts met (for status). See schema 6.

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/index/tree"
)

// Conflict is one disagreement a merge met: two versions of Path (one of
// them now at CopyPath, "" when nothing was copied), slash paths from the
// root.
type Conflict struct {
	Time     time.Time
	Kind     tree.ConflictKind
	Path     string
	CopyPath string
}

// maxConflicts is how many conflicts the index keeps for status.
const maxConflicts = 1000

// recordConflictsTx stores cs and drops all but the newest maxConflicts.
func recordConflictsTx(tx querier, cs []Conflict) error {
	if len(cs) == 0 {
		return nil
	}
	for _, c := range cs {
		if _, err := tx.Exec(`INSERT INTO conflicts(time_ns, kind, path, copy_path) VALUES(?, ?, ?, ?)`,
			c.Time.UnixNano(), c.Kind.String(), c.Path, c.CopyPath); err != nil {
			return err
		}
	}
	_, err := tx.Exec(`DELETE FROM conflicts WHERE id <= (SELECT MAX(id) FROM conflicts) - ?`, maxConflicts)
	return err
}

// Conflicts returns the newest limit conflicts, newest first, and how many
// the index holds.
func (db *DB) Conflicts(ctx context.Context, limit int) ([]Conflict, int, error) {
	var out []Conflict
	var total int
	err := db.read(ctx, func(tx querier) error {
		if err := tx.QueryRow(`SELECT COUNT(*) FROM conflicts`).Scan(&total); err != nil {
			return err
		}
		rows, err := tx.Query(`SELECT time_ns, kind, path, copy_path FROM conflicts ORDER BY id DESC LIMIT ?`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c Conflict
			var ns int64
			var kind string
			if err := rows.Scan(&ns, &kind, &c.Path, &c.CopyPath); err != nil {
				return err
			}
			c.Time, c.Kind = Time(ns), conflictKind(kind)
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("conflicts: %w", err)
	}
	return out, total, nil
}

func conflictKind(s string) tree.ConflictKind {
	for k := tree.ContentConflict; k <= tree.MetadataConflict; k++ {
		if k.String() == s {
			return k
		}
	}
	return 0
}

// noteDepartedTx records that a rename takes name out of directory parent
// (inode ino), when parent has a committed tree the name may be in (the
// first departure of a name since then is the one a pull follows).
func noteDepartedTx(tx querier, parent uint64, name string, ino uint64) error {
	_, err := tx.Exec(`INSERT OR IGNORE INTO departed(parent, name, ino)
		SELECT ?1, ?2, ?3 FROM inodes WHERE ino = ?1 AND tree_id IS NOT NULL`, parent, name, ino)
	return err
}

// departedTx returns the inode a local rename took name out of dir with
// since dir's last commit (0: none).
func departedTx(tx querier, dir uint64, name string) (uint64, error) {
	var ino uint64
	err := tx.QueryRow(`SELECT ino FROM departed WHERE parent = ? AND name = ?`, dir, name).Scan(&ino)
	if isNoRows(err) {
		return 0, nil
	}
	return ino, err
}

// displaceTx records that a pull took the last name of inode ino, name in
// directory dir.
func (db *DB) displaceTx(tx querier, ino, dir uint64, name string, now int64) error {
	if _, err := tx.Exec(`INSERT OR REPLACE INTO displaced(ino, parent, name, time_ns) VALUES(?, ?, ?, ?)`,
		ino, dir, name, now); err != nil {
		return err
	}
	db.omu.Lock()
	db.displaced[ino] = struct{}{}
	db.omu.Unlock()
	return nil
}

// isDisplaced reports whether ino may be a displaced inode.
func (db *DB) isDisplaced(ino uint64) bool {
	db.omu.Lock()
	defer db.omu.Unlock()
	_, ok := db.displaced[ino]
	return ok
}

// SetDevice sets the device name conflict copies made by the index carry
// (an inode written after a pull displaced it).
func (db *DB) SetDevice(name string) {
	db.wmu.Lock()
	db.device = name
	db.wmu.Unlock()
}

// resurrectTx links the displaced inode ino, which is being written, back
// where a pull took its last name, as a conflict copy beside that name
// (in the root when that directory is gone), so the write is not lost. It
// does nothing for an inode that is linked or not displaced. db.wmu is
// held.
func (db *DB) resurrectTx(tx querier, ino uint64) error {
	var parent uint64
	var name string
	var ns int64
	err := tx.QueryRow(`SELECT d.parent, d.name, d.time_ns FROM displaced d JOIN inodes i ON i.ino = d.ino
		WHERE d.ino = ? AND i.nlink = 0`, ino).Scan(&parent, &name, &ns)
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := dirTx(tx, parent); err != nil {
		parent = RootIno // the directory is gone (or not loaded): the root always is
		if _, err := dirTx(tx, parent); err != nil {
			return fmt.Errorf("resurrect %d: %w", ino, err)
		}
	}
	now := db.nowNS()
	copyName := tree.UniqueConflictName(name, false, db.device, Time(now), func(n string) bool {
		_, _, err := lookupTx(tx, parent, n)
		return err == nil
	})
	if err := addEntryTx(tx, parent, copyName, ino); err != nil {
		return err
	}
	if _, err := tx.Exec(`UPDATE inodes SET nlink = 1 WHERE ino = ?`, ino); err != nil {
		return err
	}
	if _, err := tx.Exec(`DELETE FROM displaced WHERE ino = ?`, ino); err != nil {
		return err
	}
	if err := touchTx(tx, parent, now); err != nil {
		return err
	}
	if err := db.markDirtyTx(tx, parent, DirtyEntries); err != nil {
		return err
	}
	dirPath, err := pathTx(tx, parent)
	if err != nil {
		return err
	}
	db.log.Warn("a file replaced by another machine's version was written here afterwards; it is kept as a conflict copy",
		zap.String("path", joinSlash(dirPath, name)), zap.String("copy", joinSlash(dirPath, copyName)))
	return recordConflictsTx(tx, []Conflict{{Time: Time(now), Kind: tree.ContentConflict,
		Path: joinSlash(dirPath, name), CopyPath: joinSlash(dirPath, copyName)}})
}

// pathTx returns the slash path of directory ino from the root ("" for
// the root itself).
func pathTx(tx querier, ino uint64) (string, error) {
	var parts []string
	for i := 0; ino != RootIno; i++ {
		if i > 4096 {
			return "", fmt.Errorf("path of %d: too deep: %w", ino, ErrInvalid)
		}
		var parent uint64
		var name string
		err := tx.QueryRow(`SELECT parent, name FROM dentries WHERE ino = ? ORDER BY parent, name LIMIT 1`, ino).Scan(&parent, &name)
		if isNoRows(err) {
			return "", fmt.Errorf("path of %d: %w", ino, ErrNotFound)
		}
		if err != nil {
			return "", err
		}
		parts = append(parts, name)
		ino = parent
	}
	var p string
	for i := len(parts) - 1; i >= 0; i-- {
		p = joinSlash(p, parts[i])
	}
	return p, nil
}

// joinSlash joins a slash path and a name ("" is the root).
func joinSlash(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
