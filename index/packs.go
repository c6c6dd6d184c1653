package index

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// Packed is a chunk put in a pack: its ID, plaintext length and location.
type Packed struct {
	ID  chunkstore.ID
	Len int64
	Loc chunkstore.Loc
}

// qLoadChunkLen records a chunk's length and, when the pack columns are
// not NULL, its location, unless one is known already (schema 7).
const qLoadChunkLen = `INSERT INTO chunk_lens(chunk, len, pack, pack_off, pack_len) VALUES(?, ?, ?, ?, ?)
	ON CONFLICT(chunk) DO UPDATE SET pack = excluded.pack, pack_off = excluded.pack_off, pack_len = excluded.pack_len
	WHERE chunk_lens.pack IS NULL AND excluded.pack IS NOT NULL`

// loadChunkLenTx records chunk id of length n, at l unless l.Pack is zero.
func loadChunkLenTx(tx querier, id chunkstore.ID, n int64, l chunkstore.Loc) error {
	var pack, off, ln any
	if !l.Pack.IsZero() {
		pack, off, ln = l.Pack[:], l.Off, l.Len
	}
	if _, err := tx.Exec(qLoadChunkLen, id[:], n, pack, off, ln); err != nil {
		return fmt.Errorf("chunk %s: %w", id, err)
	}
	return nil
}

// scanLoc makes a location of the pack columns (all NULL: none).
func scanLoc(pack []byte, off, n sql.NullInt64) (chunkstore.Loc, error) {
	if pack == nil {
		return chunkstore.Loc{}, nil
	}
	var l chunkstore.Loc
	if len(pack) != chunkstore.IDSize || !off.Valid || !n.Valid {
		return l, fmt.Errorf("chunk location: pack id of %d bytes", len(pack))
	}
	copy(l.Pack[:], pack)
	l.Off, l.Len = off.Int64, n.Int64
	return l, nil
}

// entryLocs returns the locations of tree entry e's chunks refs (inline,
// or its manifest's), by ref number; for a manifest they are checked
// against its refs first (the tree's decoder could not).
func entryLocs(e *tree.Entry, refs []tree.ChunkRef) (map[int]chunkstore.Loc, error) {
	if len(e.Locs) == 0 {
		return nil, nil
	}
	if !e.Manifest.IsZero() {
		if err := tree.CheckLocs(e.Locs, refs); err != nil {
			return nil, fmt.Errorf("entry %q: %w", e.Name, err)
		}
	}
	m := make(map[int]chunkstore.Loc, len(e.Locs))
	for _, l := range e.Locs {
		m[int(l.Ref)] = l.ChunkLoc()
	}
	return m, nil
}

// ChunkLoc returns where chunk id is in a pack, ok false when the index
// knows no location (it is an object of its own). It is the chunk cache's
// locator.
func (db *DB) ChunkLoc(ctx context.Context, id chunkstore.ID) (l chunkstore.Loc, ok bool, err error) {
	err = db.read(ctx, func(tx querier) error {
		var pack []byte
		var off, n sql.NullInt64
		err := tx.QueryRow(`SELECT pack, pack_off, pack_len FROM chunk_lens WHERE chunk = ? AND pack IS NOT NULL`, id[:]).Scan(&pack, &off, &n)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		l, err = scanLoc(pack, off, n)
		ok = err == nil
		return err
	})
	if err != nil {
		return chunkstore.Loc{}, false, fmt.Errorf("chunk location %s: %w", id, err)
	}
	return l, ok, nil
}
