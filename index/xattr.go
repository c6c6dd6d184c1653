package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// XattrFlags are the flags of setxattr(2).
type XattrFlags uint32

// Setxattr flags.
const (
	XattrCreate  XattrFlags = 1 // fail with ErrExist if the attribute exists
	XattrReplace XattrFlags = 2 // fail with ErrNoData if it does not
)

// GetXattr returns the value of extended attribute name of inode ino, or
// ErrNoData.
func (db *DB) GetXattr(ctx context.Context, ino uint64, name string) ([]byte, error) {
	var v []byte
	err := db.read(ctx, func(tx querier) error {
		err := tx.QueryRow(`SELECT value FROM xattrs WHERE ino = ? AND name = ?`, ino, name).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			if _, aerr := getAttrTx(tx, ino); aerr != nil {
				return aerr
			}
			return ErrNoData
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getxattr %d %q: %w", ino, name, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// ListXattr returns the names of inode ino's extended attributes, sorted.
func (db *DB) ListXattr(ctx context.Context, ino uint64) ([]string, error) {
	var names []string
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`SELECT name FROM xattrs WHERE ino = ? ORDER BY name`, ino)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			names = append(names, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listxattr %d: %w", ino, err)
	}
	return names, nil
}

// SetXattr sets extended attribute name of inode ino to value, honouring
// XattrCreate and XattrReplace, and updates the inode's ctime.
func (db *DB) SetXattr(ctx context.Context, ino uint64, name string, value []byte, flags XattrFlags) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.xattrs.add(ino) // before the commit: the set may only err on the side of "may have"
	err := db.writeLocked(ctx, false, func(tx querier) error {
		if _, err := getAttrTx(tx, ino); err != nil {
			return err
		}
		var one int
		err := tx.QueryRow(`SELECT 1 FROM xattrs WHERE ino = ? AND name = ?`, ino, name).Scan(&one)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if flags&XattrCreate != 0 && exists {
			return ErrExist
		}
		if flags&XattrReplace != 0 && !exists {
			return ErrNoData
		}
		if value == nil {
			value = []byte{}
		}
		if _, err := tx.Exec(`INSERT OR REPLACE INTO xattrs(ino, name, value) VALUES(?, ?, ?)`, ino, name, value); err != nil {
			return err
		}
		if _, err := tx.Exec(`UPDATE inodes SET ctime_ns = ? WHERE ino = ?`, db.nowNS(), ino); err != nil {
			return err
		}
		return db.markDirtyTx(tx, ino, DirtyMeta)
	})
	if err != nil {
		return fmt.Errorf("setxattr %d %q: %w", ino, name, err)
	}
	return nil
}

// RemoveXattr deletes extended attribute name of inode ino, or fails with
// ErrNoData.
func (db *DB) RemoveXattr(ctx context.Context, ino uint64, name string) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	none := false // the inode has no xattrs left
	err := db.writeLocked(ctx, false, func(tx querier) error {
		res, err := tx.Exec(`DELETE FROM xattrs WHERE ino = ? AND name = ?`, ino, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := getAttrTx(tx, ino); err != nil {
				return err
			}
			return ErrNoData
		}
		if _, err := tx.Exec(`UPDATE inodes SET ctime_ns = ? WHERE ino = ?`, db.nowNS(), ino); err != nil {
			return err
		}
		if err := tx.QueryRow(`SELECT NOT EXISTS(SELECT 1 FROM xattrs WHERE ino = ?)`, ino).Scan(&none); err != nil {
			return err
		}
		return db.markDirtyTx(tx, ino, DirtyMeta)
	})
	if err != nil {
		return fmt.Errorf("removexattr %d %q: %w", ino, name, err)
	}
	if none {
		db.xattrs.remove(ino)
	}
	return nil
}
