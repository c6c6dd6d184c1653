package index

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// FileContent is the uploaded content of a regular file: the whole-chunk
// extents of data version Version.
type FileContent struct {
	Ino     uint64
	Version uint64
	Extents []Extent // each one whole chunk, tiling the file from 0
}

// DirTree is the tree a commit wrote for a directory: its id and totals.
type DirTree struct {
	ID     chunkstore.ID
	Totals tree.Stats
}

// Applied is the commit ApplyCommit records.
type Applied struct {
	// Commit becomes the base commit; the pending commit is cleared.
	Commit chunkstore.ID
	// Dirs are the new trees of the directories the commit wrote.
	Dirs map[uint64]DirTree
	// Files replace the content of files that are still at their version
	// (as ReplaceContent); a file changed meanwhile keeps its state.
	Files []FileContent
	// Items are the queue entries the commit covers (Snapshot.Items); each
	// is taken off the queue unless it was queued again since (its seq
	// changed) or its file content was not replaced.
	Items []DirtyItem
	// Links are the entries the commit wrote for hard-linked inodes, by
	// inode: each one's link id is recorded as the inode's, with the
	// content written (see links.go), so a later load of another of its
	// names joins it, and a pull that gives the id to another inode
	// knows whose it was.
	Links map[uint64]tree.Entry
	// Unlinked are inodes the commit wrote as single files although they
	// had a link id: they are in no group any more.
	Unlinked []uint64
	// Packed are the chunks the round put in packs: their locations are
	// recorded (where the index knows none) for reads and for later
	// commits naming the same chunks.
	Packed []Packed
}

// ApplyResult says what ApplyCommit did.
type ApplyResult struct {
	Replaced []uint64 // files whose content became their uploaded extents
	Changed  []uint64 // files that changed during the upload (still queued)
	Done     int      // queue entries taken off
}

// ApplyCommit records a commit that is now head, in one durable
// transaction: the base commit, the directories' tree ids, the files'
// uploaded content and the lengths of their chunks, and takes the covered
// queue entries off the queue (by seq, so entries queued again during the
// upload stay queued). The directories' totals are recorded with their tree
// ids, for the next commit that keeps them.
func (db *DB) ApplyCommit(ctx context.Context, a Applied) (ApplyResult, error) {
	var res ApplyResult
	db.wmu.Lock()
	defer db.wmu.Unlock()
	err := db.writeLocked(ctx, true, func(tx querier) error {
		res = ApplyResult{}
		if _, err := tx.Exec(`INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, MetaBaseCommit, a.Commit[:]); err != nil {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM meta WHERE key = ?`, MetaPendingCommit); err != nil {
			return err
		}
		for ino, d := range a.Dirs {
			// The new tree is the base of its names: renames before it
			// are in it.
			if _, err := tx.Exec(`DELETE FROM departed WHERE parent = ?`, ino); err != nil {
				return err
			}
			t := d.Totals
			if _, err := tx.Exec(`UPDATE inodes SET tree_id = ?, sub_files = ?, sub_dirs = ?, sub_bytes = ?, sub_chunks = ?
				WHERE ino = ? AND mode & ? = ?`, d.ID[:], t.Files, t.Dirs, t.Bytes, t.Chunks, ino, sIFMT, sIFDIR); err != nil {
				return err
			}
		}
		for ino, e := range a.Links {
			if err := recordLinkOfTx(tx, &e, ino); err != nil {
				return err
			}
		}
		for _, ino := range a.Unlinked {
			if _, err := tx.Exec(`DELETE FROM links WHERE ino = ?`, ino); err != nil {
				return err
			}
		}
		for _, p := range a.Packed {
			if err := loadChunkLenTx(tx, p.ID, p.Len, p.Loc); err != nil {
				return err
			}
		}
		refused := map[uint64]bool{}
		for _, f := range a.Files {
			ok, err := db.replaceContentLocked(tx, f)
			if err != nil {
				return fmt.Errorf("file %d: %w", f.Ino, err)
			}
			if ok {
				res.Replaced = append(res.Replaced, f.Ino)
			} else {
				refused[f.Ino] = true
				res.Changed = append(res.Changed, f.Ino)
			}
		}
		for _, it := range a.Items {
			if refused[it.Ino] {
				continue
			}
			r, err := tx.Exec(`DELETE FROM dirty WHERE ino = ? AND seq = ?`, it.Ino, it.Seq)
			if err != nil {
				return err
			}
			n, err := r.RowsAffected()
			if err != nil {
				return err
			}
			res.Done += int(n)
		}
		return nil
	})
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply commit %s: %w", a.Commit, err)
	}
	return res, nil
}

// replaceContentLocked is ReplaceContent inside ApplyCommit's transaction
// (db.wmu held); it also records the chunks' lengths. It reports false
// when the file changed or is gone.
func (db *DB) replaceContentLocked(tx querier, f FileContent) (bool, error) {
	if db.unpersisted[f.Ino] > 0 {
		return false, nil
	}
	var v uint64
	if err := tx.QueryRow(`SELECT data_version FROM inodes WHERE ino = ?`, f.Ino).Scan(&v); err != nil {
		if isNoRows(err) {
			return false, nil
		}
		return false, err
	}
	if v != f.Version {
		return false, nil
	}
	if _, err := tx.Exec(`DELETE FROM extents WHERE ino = ?`, f.Ino); err != nil {
		return false, err
	}
	if err := insertExtentsTx(tx, f.Ino, f.Extents); err != nil {
		return false, err
	}
	for _, e := range f.Extents {
		if err := loadChunkLenTx(tx, e.Chunk, e.Len, chunkstore.Loc{}); err != nil {
			return false, err
		}
	}
	err := markCleanTx(tx, f.Ino, db.nowNS())
	return err == nil, err
}

// OrphanCandidate is an object a failed upload attempt wrote.
type OrphanCandidate struct {
	Key  string
	Time time.Time // the latest attempt that wrote it
}

// AddOrphanCandidates records store keys written by a failed attempt at
// time t (a key recorded before gets the later time). Durable.
func (db *DB) AddOrphanCandidates(ctx context.Context, keys []string, t time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	err := db.write(ctx, true, func(tx querier) error {
		for _, k := range keys {
			if _, err := tx.Exec(`INSERT INTO orphan_candidates(key, time_ns) VALUES(?, ?)
				ON CONFLICT(key) DO UPDATE SET time_ns = max(time_ns, excluded.time_ns)`, k, t.UnixNano()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d orphan candidates: %w", len(keys), err)
	}
	return nil
}

// OrphanCandidates returns the recorded orphan candidates, oldest first.
func (db *DB) OrphanCandidates(ctx context.Context) ([]OrphanCandidate, error) {
	var out []OrphanCandidate
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`SELECT key, time_ns FROM orphan_candidates ORDER BY time_ns, key`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c OrphanCandidate
			var ns int64
			if err := rows.Scan(&c.Key, &ns); err != nil {
				return err
			}
			c.Time = Time(ns)
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("orphan candidates: %w", err)
	}
	return out, nil
}

// QueuedBytes returns the staged bytes of queued files: what the uploader
// still has to read and chunk (for status).
func (db *DB) QueuedBytes(ctx context.Context) (int64, error) {
	var total int64
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`SELECT s.ranges, s.clean FROM dirty q JOIN staging s ON s.ino = q.ino`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var blob, cblob []byte
			if err := rows.Scan(&blob, &cblob); err != nil {
				return err
			}
			rs, err := dirtyRanges(blob, cblob)
			if err != nil {
				return err
			}
			total += rs.Bytes()
		}
		return rows.Err()
	})
	if err != nil {
		return 0, fmt.Errorf("queued bytes: %w", err)
	}
	return total, nil
}

// failedForever is the retry time FailDirty gives a permanent failure.
const failedForever = 1 << 62

// RetryFailed makes the queue entries that failed permanently due again
// (a new mount, an explicit sync: the cause may be fixed) and returns how
// many there were. Their attempts and last error stay for status.
func (db *DB) RetryFailed(ctx context.Context) (int, error) {
	var n int64
	err := db.write(ctx, false, func(tx querier) error {
		r, err := tx.Exec(`UPDATE dirty SET next_try_ns = 0 WHERE next_try_ns >= ?`, int64(failedForever))
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("retry failed: %w", err)
	}
	return int(n), nil
}

// FailedPermanently reports whether it was failed with no retry time
// (FailDirty with a zero nextTry).
func FailedPermanently(it DirtyItem) bool {
	return !it.NextTry.IsZero() && it.NextTry.UnixNano() >= failedForever
}
