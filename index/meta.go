package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Well-known meta keys.
const (
	MetaVolumeID   = "volume_id"   // the volume this index belongs to
	MetaBaseCommit = "base_commit" // the remote commit last synced with
	MetaDeviceID   = "device_id"   // this machine's id in the volume
)

// Meta returns the value stored under key, or ErrNotFound.
func (db *DB) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.read(ctx, func(tx querier) error {
		return tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("meta %q: %w", key, err)
	}
	return v, nil
}

// SetMeta stores value under key (durably: meta records sync state).
func (db *DB) SetMeta(ctx context.Context, key string, value []byte) error {
	err := db.write(ctx, true, func(tx querier) error {
		_, err := tx.Exec(`INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("set meta %q: %w", key, err)
	}
	return nil
}

// Stats counts what the index holds (statfs, status).
type Stats struct {
	Inodes int64 // live inodes
	Bytes  int64 // sum of regular file sizes
	Dirty  int64 // inodes on the dirty queue
}

// Stats returns counts over the whole index.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := db.read(ctx, func(tx querier) error {
		if err := tx.QueryRow(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN mode & ? = ? THEN size ELSE 0 END), 0)
			FROM inodes`, sIFMT, sIFREG).Scan(&s.Inodes, &s.Bytes); err != nil {
			return err
		}
		return tx.QueryRow(`SELECT COUNT(*) FROM dirty`).Scan(&s.Dirty)
	})
	if err != nil {
		return s, fmt.Errorf("index stats: %w", err)
	}
	return s, nil
}
