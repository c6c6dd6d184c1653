package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// RenameFlags are the flags of renameat2(2).
type RenameFlags uint32

// Rename flags.
const (
	RenameNoReplace RenameFlags = 1 << 0
	RenameExchange  RenameFlags = 1 << 1
	RenameWhiteout  RenameFlags = 1 << 2
)

// isAncestorTx reports whether dir a is dir b or one of b's ancestors.
func isAncestorTx(tx querier, a, b uint64) (bool, error) {
	var one int
	err := tx.QueryRow(`WITH RECURSIVE up(ino) AS (
			SELECT ?1
			UNION SELECT d.parent FROM dentries d JOIN up ON d.ino = up.ino WHERE up.ino != ?3
		) SELECT 1 FROM up WHERE ino = ?2 LIMIT 1`, b, a, RootIno).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Rename moves the entry oldName of oldParent to newName in newParent, with
// the semantics of renameat2(2): RenameNoReplace fails with ErrExist when
// the target exists, RenameExchange swaps two existing entries. A replaced
// target loses a link and is returned.
func (db *DB) Rename(ctx context.Context, oldParent uint64, oldName string, newParent uint64, newName string, flags RenameFlags) (Removed, error) {
	var rm Removed
	err := db.write(ctx, false, func(tx querier) error {
		var err error
		rm, err = db.renameTx(tx, oldParent, oldName, newParent, newName, flags)
		return err
	})
	if err != nil {
		return rm, fmt.Errorf("rename %d/%q to %d/%q: %w", oldParent, oldName, newParent, newName, err)
	}
	return rm, nil
}

func (db *DB) renameTx(tx querier, oldParent uint64, oldName string, newParent uint64, newName string, flags RenameFlags) (Removed, error) {
	var rm Removed
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return rm, ErrInvalid
	}
	if err := checkName(newName); err != nil {
		return rm, err
	}
	if _, err := dirTx(tx, oldParent); err != nil {
		return rm, err
	}
	if _, err := dirTx(tx, newParent); err != nil {
		return rm, err
	}
	src, _, err := lookupTx(tx, oldParent, oldName)
	if err != nil {
		return rm, err
	}
	dst, _, err := lookupTx(tx, newParent, newName)
	dstExists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return rm, err
	}
	switch {
	case flags&RenameNoReplace != 0 && dstExists:
		return rm, ErrExist
	case flags&RenameExchange != 0 && !dstExists:
		return rm, ErrNotFound
	}
	if dstExists && dst.Ino == src.Ino {
		return rm, nil // both names are links to one inode: nothing to do
	}
	// A directory must not move below itself.
	if oldParent != newParent {
		for _, d := range []Attr{src, dst} {
			if d.Ino == 0 || !d.IsDir() || (d.Ino == dst.Ino && flags&RenameExchange == 0) {
				continue
			}
			target := newParent
			if d.Ino == dst.Ino {
				target = oldParent
			}
			if below, err := isAncestorTx(tx, d.Ino, target); err != nil {
				return rm, err
			} else if below {
				return rm, ErrInvalid
			}
		}
	}
	// A pull that finds the remote changed a name renamed away here
	// follows the change to where it went (departed).
	if err := noteDepartedTx(tx, oldParent, oldName, src.Ino); err != nil {
		return rm, err
	}
	if flags&RenameExchange != 0 {
		if err := noteDepartedTx(tx, newParent, newName, dst.Ino); err != nil {
			return rm, err
		}
	}
	now := db.nowNS()
	if flags&RenameExchange != 0 {
		if _, err := tx.Exec(`UPDATE dentries SET ino = ? WHERE parent = ? AND name = ?`, dst.Ino, oldParent, oldName); err != nil {
			return rm, err
		}
		if _, err := tx.Exec(`UPDATE dentries SET ino = ? WHERE parent = ? AND name = ?`, src.Ino, newParent, newName); err != nil {
			return rm, err
		}
		if oldParent != newParent && src.IsDir() != dst.IsDir() {
			delta := 1 // a directory moved from old to new parent
			if dst.IsDir() {
				delta = -1
			}
			if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink - ? WHERE ino = ?`, delta, oldParent); err != nil {
				return rm, err
			}
			if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink + ? WHERE ino = ?`, delta, newParent); err != nil {
				return rm, err
			}
		}
		if _, err := tx.Exec(`UPDATE inodes SET ctime_ns = ? WHERE ino IN (?, ?)`, now, src.Ino, dst.Ino); err != nil {
			return rm, err
		}
	} else {
		if dstExists {
			switch {
			case src.IsDir() && !dst.IsDir():
				return rm, ErrNotDir
			case !src.IsDir() && dst.IsDir():
				return rm, ErrIsDir
			case dst.IsDir():
				if err := isEmptyDirTx(tx, dst.Ino); err != nil {
					return rm, err
				}
			}
			if _, err := tx.Exec(`DELETE FROM dentries WHERE parent = ? AND name = ?`, newParent, newName); err != nil {
				return rm, err
			}
			if rm, err = db.dropLinkTx(tx, dst, newParent, now); err != nil {
				return rm, err
			}
			if !dst.IsDir() {
				if err := db.linkCountChangedTx(tx, dst.Ino, rm.Nlink); err != nil {
					return rm, err
				}
			}
		}
		if _, err := tx.Exec(`DELETE FROM dentries WHERE parent = ? AND name = ?`, oldParent, oldName); err != nil {
			return rm, err
		}
		if err := addEntryTx(tx, newParent, newName, src.Ino); err != nil {
			return rm, err
		}
		if src.IsDir() && oldParent != newParent {
			if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink - 1 WHERE ino = ?`, oldParent); err != nil {
				return rm, err
			}
			if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink + 1 WHERE ino = ?`, newParent); err != nil {
				return rm, err
			}
		}
		if _, err := tx.Exec(`UPDATE inodes SET ctime_ns = ? WHERE ino = ?`, now, src.Ino); err != nil {
			return rm, err
		}
	}
	for _, p := range []uint64{oldParent, newParent} {
		if err := touchTx(tx, p, now); err != nil {
			return rm, err
		}
		if err := db.markDirtyTx(tx, p, DirtyEntries); err != nil {
			return rm, err
		}
	}
	return rm, nil
}
