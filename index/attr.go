package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// File type bits of Attr.Mode (as in stat(2)).
const (
	sIFMT   = 0o170000
	sIFDIR  = 0o040000
	sIFREG  = 0o100000
	sIFLNK  = 0o120000
	sISGID  = 0o2000
	permMax = 0o7777
)

// Attr is an inode's attributes. Times are nanoseconds since the epoch.
type Attr struct {
	Ino    uint64
	Gen    uint64
	Mode   uint32 // file type and permission bits
	Nlink  uint32
	UID    uint32
	GID    uint32
	Rdev   uint32
	Size   int64
	Atime  int64
	Mtime  int64
	Ctime  int64
	Btime  int64
	Target string // symlink target
}

// IsDir reports whether a is a directory.
func (a Attr) IsDir() bool { return a.Mode&sIFMT == sIFDIR }

// IsRegular reports whether a is a regular file.
func (a Attr) IsRegular() bool { return a.Mode&sIFMT == sIFREG }

// IsSymlink reports whether a is a symbolic link.
func (a Attr) IsSymlink() bool { return a.Mode&sIFMT == sIFLNK }

// attrCols lists the inode columns scanned by scanAttr, qualified by "i.".
const attrCols = `i.ino, i.generation, i.mode, i.nlink, i.uid, i.gid, i.rdev, i.size,
	i.atime_ns, i.mtime_ns, i.ctime_ns, i.btime_ns, i.target`

type scanner interface{ Scan(dest ...any) error }

func scanAttr(s scanner, extra ...any) (Attr, error) {
	var a Attr
	var target []byte
	dest := append([]any{&a.Ino, &a.Gen, &a.Mode, &a.Nlink, &a.UID, &a.GID, &a.Rdev, &a.Size,
		&a.Atime, &a.Mtime, &a.Ctime, &a.Btime, &target}, extra...)
	if err := s.Scan(dest...); err != nil {
		return a, err
	}
	a.Target = string(target)
	return a, nil
}

func getAttrTx(tx querier, ino uint64) (Attr, error) {
	a, err := scanAttr(tx.QueryRow(`SELECT `+attrCols+` FROM inodes i WHERE i.ino = ?`, ino))
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	return a, err
}

// GetAttr returns the attributes of inode ino.
func (db *DB) GetAttr(ctx context.Context, ino uint64) (Attr, error) {
	var a Attr
	err := db.read1(ctx, func(tx querier) (err error) {
		a, err = getAttrTx(tx, ino)
		return err
	})
	if err != nil {
		return a, fmt.Errorf("getattr %d: %w", ino, err)
	}
	return a, nil
}

// SetMask says which fields of an AttrChange apply.
type SetMask uint32

// Bits of SetMask.
const (
	SetMode SetMask = 1 << iota
	SetUID
	SetGID
	SetAtime
	SetMtime
	SetCtime
)

// AttrChange is a change of an inode's attributes (chmod, chown, utimes).
// The size is changed through CommitData (truncate is a content change).
type AttrChange struct {
	Mask         SetMask
	Mode         uint32 // permission bits only; the file type never changes
	UID, GID     uint32
	Atime, Mtime int64
	Ctime        int64 // without SetCtime, ctime becomes now
}

// SetAttr applies ch to inode ino and returns the new attributes. The inode
// is queued dirty (attributes).
func (db *DB) SetAttr(ctx context.Context, ino uint64, ch AttrChange) (Attr, error) {
	var a Attr
	err := db.write(ctx, false, func(tx querier) (err error) {
		a, err = db.setAttrTx(tx, ino, ch)
		return err
	})
	if err != nil {
		return a, fmt.Errorf("setattr %d: %w", ino, err)
	}
	return a, nil
}

// setAttrTx is SetAttr's transaction body (also run by CommitDataAttr,
// after the data).
func (db *DB) setAttrTx(tx querier, ino uint64, ch AttrChange) (Attr, error) {
	a, err := getAttrTx(tx, ino)
	if err != nil {
		return a, err
	}
	if ch.Mask&SetMode != 0 {
		a.Mode = a.Mode&sIFMT | ch.Mode&permMax
	}
	if ch.Mask&SetUID != 0 {
		a.UID = ch.UID
	}
	if ch.Mask&SetGID != 0 {
		a.GID = ch.GID
	}
	if ch.Mask&SetAtime != 0 {
		a.Atime = ch.Atime
	}
	if ch.Mask&SetMtime != 0 {
		a.Mtime = ch.Mtime
	}
	if ch.Mask&SetCtime != 0 {
		a.Ctime = ch.Ctime
	} else {
		a.Ctime = db.nowNS()
	}
	_, err = tx.Exec(`UPDATE inodes SET mode = ?, uid = ?, gid = ?, atime_ns = ?, mtime_ns = ?, ctime_ns = ?
		WHERE ino = ?`, a.Mode, a.UID, a.GID, a.Atime, a.Mtime, a.Ctime, ino)
	if err != nil {
		return a, err
	}
	return a, db.markDirtyTx(tx, ino, DirtyMeta)
}

// touchTx sets mtime and ctime of inode ino to now (a directory whose
// entries changed).
func touchTx(tx querier, ino uint64, now int64) error {
	_, err := tx.Exec(`UPDATE inodes SET mtime_ns = ?, ctime_ns = ? WHERE ino = ?`, now, now, ino)
	return err
}

// Time converts nanoseconds since the epoch to a time.Time.
func Time(ns int64) time.Time { return time.Unix(0, ns) }
