package index

import (
	"context"
	"fmt"
)

// CheckLinkCounts reports the first inode, not a directory, whose link
// count is below the names it has ("" when there is none): a count that
// low makes a commit write a hard-linked file as separate files.
func (db *DB) CheckLinkCounts(ctx context.Context) string {
	var out string
	err := db.read(ctx, func(tx querier) error {
		var ino uint64
		var nlink, names uint32
		err := tx.QueryRow(`SELECT i.ino, i.nlink, COUNT(d.ino) FROM inodes i JOIN dentries d ON d.ino = i.ino
			WHERE i.mode & ? != ? GROUP BY i.ino HAVING COUNT(d.ino) > i.nlink LIMIT 1`, sIFMT, sIFDIR).Scan(&ino, &nlink, &names)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		out = fmt.Sprintf("inode %d has %d names and a link count of %d", ino, names, nlink)
		return nil
	})
	if err != nil {
		return err.Error()
	}
	return out
}
