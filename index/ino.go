package index

import (
	"context"
	"fmt"
)

// inoBlock is how many inode numbers newInoLocked reserves at a time.
const inoBlock = 1024

// newInoLocked returns an inode number no inode has had, for Create. The
// inodes table is AUTOINCREMENT (numbers are never reused), which costs
// every insert that takes a new number a write of the sqlite_sequence row:
// one more page appended to the WAL per create. Instead, numbers are
// reserved a block at a time by raising that row in a transaction of its
// own, and Create inserts them explicitly; SQLite writes sqlite_sequence
// only when an inserted number exceeds it, and other inserts (which let
// AUTOINCREMENT pick) get numbers above the reserved block. Numbers
// reserved and not used (a failed create, a restart) are skipped, never
// reused. The caller holds wmu.
func (db *DB) newInoLocked(ctx context.Context) (uint64, error) {
	if db.inoNext == 0 || db.inoNext > db.inoEnd {
		var end uint64
		err := db.writeLocked(ctx, false, func(tx querier) error {
			return tx.QueryRow(`UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(ino), 0) FROM inodes)) + ?
				WHERE name = 'inodes' RETURNING seq`, inoBlock).Scan(&end)
		})
		if err != nil {
			return 0, fmt.Errorf("reserve inode numbers: %w", err)
		}
		db.inoNext, db.inoEnd = end-inoBlock+1, end
	}
	ino := db.inoNext
	db.inoNext++
	return ino, nil
}
