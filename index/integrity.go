package index

import (
	"context"
	"fmt"
)

// IntegrityCheck runs SQLite's integrity check on the index and returns
// what it found wrong (none: the index's pages, indexes and constraints
// are sound), and the first inode whose link count is below its names.
func (db *DB) IntegrityCheck(ctx context.Context) ([]string, error) {
	var out []string
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`PRAGMA integrity_check`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			if s != "ok" {
				out = append(out, s)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("integrity check: %w", err)
	}
	if s := db.CheckLinkCounts(ctx); s != "" {
		out = append(out, s)
	}
	return out, nil
}
