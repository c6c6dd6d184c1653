package index

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// Checks of remote trees that the tree decoder cannot make alone. A
// tree's entries are valid one by one when it decodes; what a directory
// claims about what lies below it (its entry's totals) and what a file
// claims about names elsewhere (its link count) is checked here, as the
// index takes the tree in, so that a hostile or damaged bucket cannot
// make this machine believe in a volume larger than the trees it holds:
//
//   - a directory's totals (tree.Stats in the entry naming it, or the
//     commit's for the root) equal what its tree holds: its entries'
//     Stats summed, itself included, without overflow. Inductively every
//     loaded level is consistent, so sums of claims are bounded by what
//     64-bit counts can hold;
//   - no file claims more than MaxLink links, the most this file system
//     ever gives an inode.
//
// A tree that fails is refused with ErrBadRemote: the operation that
// needed it fails with EIO and a log line, and nothing of it is kept.

// checkRemoteTree checks tree t (id) against the totals claimed for it;
// claimed nil: no claim to check (a directory never committed).
func checkRemoteTree(id chunkstore.ID, t *tree.Tree, claimed *tree.Stats) error {
	for i := range t.Entries {
		if e := &t.Entries[i]; e.Nlink > MaxLink {
			return fmt.Errorf("tree %s: %q claims %d hard links (at most %d): %w", id, e.Name, e.Nlink, MaxLink, ErrBadRemote)
		}
	}
	if claimed == nil {
		return nil
	}
	got, ok := t.CheckedTotals()
	if !ok {
		return fmt.Errorf("tree %s: its entries' totals overflow: %w", id, ErrBadRemote)
	}
	if got != *claimed {
		return fmt.Errorf("tree %s holds %+v but is claimed to hold %+v: %w", id, got, *claimed, ErrBadRemote)
	}
	return nil
}

// claimedTotals returns the totals recorded for directory dir from the
// entry (or commit) that named its tree; nil when none are.
func (db *DB) claimedTotals(ctx context.Context, dir uint64) (*tree.Stats, error) {
	var f, d, b, c sql.NullInt64
	err := db.read(ctx, func(tx querier) error {
		return tx.QueryRow(`SELECT sub_files, sub_dirs, sub_bytes, sub_chunks FROM inodes WHERE ino = ?`, dir).Scan(&f, &d, &b, &c)
	})
	if err != nil {
		return nil, fmt.Errorf("totals of %d: %w", dir, err)
	}
	if !f.Valid || !d.Valid || !b.Valid || !c.Valid || d.Int64 == 0 {
		return nil, nil
	}
	return &tree.Stats{Files: uint64(f.Int64), Dirs: uint64(d.Int64), Bytes: uint64(b.Int64), Chunks: uint64(c.Int64)}, nil
}
