package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// DirtyReason says what about an inode has to be uploaded.
type DirtyReason uint32

// Dirty reasons; an inode may have several.
const (
	DirtyData    DirtyReason = 1 << iota // file content (staging, extents, size)
	DirtyMeta                            // attributes or xattrs
	DirtyEntries                         // a directory's entries
)

// DirtyItem is one inode on the dirty queue.
type DirtyItem struct {
	Ino       uint64
	Reasons   DirtyReason
	QueuedAt  time.Time // first queued since its last upload
	ChangedAt time.Time // last queued (settle delay counts from here)
	Seq       uint64    // changes on every re-queue; pass it to DoneDirty
	Attempts  int
	LastError string
	NextTry   time.Time // zero: as soon as settled
}

// markDirtyTx queues ino with reasons (merging with what is queued) and
// resets its retry state: a new change deserves a new attempt.
func (db *DB) markDirtyTx(tx querier, ino uint64, reasons DirtyReason) error {
	now := db.nowNS()
	db.seq++ // under wmu, as every write; a rolled-back number is just skipped
	// An inode queued again with no failed attempt (a directory gaining
	// entries, a file written again): an update that leaves the columns
	// of dirty_next alone, so the commit does not rewrite its page.
	res, err := tx.Exec(`UPDATE dirty SET reasons = reasons | ?, changed_ns = ?, seq = ?
		WHERE ino = ? AND attempts = 0 AND next_try_ns = 0 AND last_error = ''`, reasons, now, db.seq, ino)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	_, err = tx.Exec(`INSERT INTO dirty(ino, reasons, queued_ns, changed_ns, seq)
		VALUES(?1, ?2, ?3, ?3, ?4)
		ON CONFLICT(ino) DO UPDATE SET reasons = reasons | excluded.reasons, changed_ns = excluded.changed_ns,
			seq = excluded.seq, attempts = 0, last_error = '', next_try_ns = 0`,
		ino, reasons, now, db.seq)
	return err
}

func scanDirty(s scanner) (DirtyItem, error) {
	var it DirtyItem
	var q, c, n int64
	err := s.Scan(&it.Ino, &it.Reasons, &q, &c, &it.Seq, &it.Attempts, &it.LastError, &n)
	it.QueuedAt, it.ChangedAt = Time(q), Time(c)
	if n != 0 {
		it.NextTry = Time(n)
	}
	return it, err
}

const dirtyCols = `ino, reasons, queued_ns, changed_ns, seq, attempts, last_error, next_try_ns`

// NextDirty returns up to limit queued inodes that changed no later than
// settledBefore and whose retry time has come by now, oldest first.
func (db *DB) NextDirty(ctx context.Context, settledBefore, now time.Time, limit int) ([]DirtyItem, error) {
	var items []DirtyItem
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`SELECT `+dirtyCols+` FROM dirty
			WHERE next_try_ns <= ? AND changed_ns <= ? ORDER BY queued_ns, ino LIMIT ?`,
			now.UnixNano(), settledBefore.UnixNano(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			it, err := scanDirty(rows)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("next dirty: %w", err)
	}
	return items, nil
}

// ListDirty returns the whole queue (for status), oldest first.
func (db *DB) ListDirty(ctx context.Context) ([]DirtyItem, error) {
	return db.NextDirty(ctx, time.Unix(0, 1<<62), time.Unix(0, 1<<62), 1<<31-1)
}

// DoneDirty takes ino off the queue if it was not queued again since the
// caller read seq; it reports whether it did.
func (db *DB) DoneDirty(ctx context.Context, ino, seq uint64) (bool, error) {
	var done bool
	err := db.write(ctx, true, func(tx querier) error {
		res, err := tx.Exec(`DELETE FROM dirty WHERE ino = ? AND seq = ?`, ino, seq)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		done = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("done dirty %d: %w", ino, err)
	}
	return done, nil
}

// FailDirty records a failed upload attempt of ino: its error and when to
// try again (a zero nextTry with a permanent error leaves it failed until
// it changes again: the far future). With seq non-zero (the Seq the caller
// read) an entry queued again since keeps its fresh state: the change that
// came after the attempt deserves an attempt of its own (it may be what
// made this one fail, e.g. a truncate that emptied the staging file being
// read). With seq zero the failure is recorded whatever the entry's seq.
func (db *DB) FailDirty(ctx context.Context, ino, seq uint64, cause error, nextTry time.Time) error {
	if cause == nil {
		return fmt.Errorf("fail dirty %d: %w", ino, ErrInvalid)
	}
	next := nextTry.UnixNano()
	if nextTry.IsZero() {
		next = 1 << 62
	}
	err := db.write(ctx, false, func(tx querier) error {
		res, err := tx.Exec(`UPDATE dirty SET attempts = attempts + 1, last_error = ?, next_try_ns = ?
			WHERE ino = ? AND (? = 0 OR seq = ?)`, cause.Error(), next, ino, seq, seq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var one int
		if err := tx.QueryRow(`SELECT 1 FROM dirty WHERE ino = ?`, ino).Scan(&one); isNoRows(err) {
			return ErrNotFound
		} else if err != nil {
			return err
		}
		return nil // queued again since seq
	})
	if err != nil {
		return fmt.Errorf("fail dirty %d: %w", ino, err)
	}
	return nil
}

// Dirty returns the queue entry of ino, or ErrNotFound.
func (db *DB) Dirty(ctx context.Context, ino uint64) (DirtyItem, error) {
	var it DirtyItem
	err := db.read(ctx, func(tx querier) (err error) {
		it, err = scanDirty(tx.QueryRow(`SELECT `+dirtyCols+` FROM dirty WHERE ino = ?`, ino))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return it, fmt.Errorf("dirty %d: %w", ino, err)
	}
	return it, nil
}
