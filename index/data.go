package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Extent maps the file range [Off, Off+Len) to the bytes
// [ChunkOff, ChunkOff+Len) of chunk Chunk.
type Extent struct {
	Off, Len int64
	Chunk    chunkstore.ID
	ChunkOff int64
}

// End returns the first file offset after e.
func (e Extent) End() int64 { return e.Off + e.Len }

// Clip returns the part of e inside [off, off+n) and whether there is one.
func (e Extent) Clip(off, n int64) (Extent, bool) {
	lo, hi := max(e.Off, off), min(e.End(), off+n)
	if lo >= hi {
		return Extent{}, false
	}
	return Extent{Off: lo, Len: hi - lo, Chunk: e.Chunk, ChunkOff: e.ChunkOff + lo - e.Off}, true
}

// Staging is a file's staged state: its staging file's name (relative to
// the staging directory) and the valid ranges in it.
type Staging struct {
	Name   string
	Ranges Ranges // every valid byte of the staging file
}

func extentsTx(tx querier, ino uint64, off, n int64) ([]Extent, error) {
	// Extents do not overlap, so only the last one starting at or before
	// off can reach into the range from the left.
	rows, err := tx.Query(`SELECT off, len, chunk, chunk_off FROM extents
		WHERE ino = ?1 AND off >= COALESCE((SELECT MAX(off) FROM extents WHERE ino = ?1 AND off <= ?2), 0)
			AND off < ?3 ORDER BY off`, ino, off, off+n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Extent
	for rows.Next() {
		var e Extent
		var id []byte
		if err := rows.Scan(&e.Off, &e.Len, &id, &e.ChunkOff); err != nil {
			return nil, err
		}
		if len(id) != chunkstore.IDSize {
			return nil, fmt.Errorf("extent %d@%d: chunk id of %d bytes", ino, e.Off, len(id))
		}
		copy(e.Chunk[:], id)
		if e.End() > off {
			out = append(out, e)
		}
	}
	return out, rows.Err()
}

// Extents returns the extents of inode ino that overlap [off, off+n), in
// order and not clipped to the range.
func (db *DB) Extents(ctx context.Context, ino uint64, off, n int64) ([]Extent, error) {
	var out []Extent
	err := db.read1(ctx, func(tx querier) (err error) {
		out, err = extentsTx(tx, ino, off, n)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("extents %d [%d,+%d): %w", ino, off, n, err)
	}
	return out, nil
}

func insertExtentsTx(tx querier, ino uint64, exts []Extent) error {
	if len(exts) == 0 {
		return nil
	}
	for _, e := range exts {
		if e.Len <= 0 || e.Off < 0 || e.ChunkOff < 0 {
			return fmt.Errorf("extent %+v: %w", e, ErrInvalid)
		}
		if _, err := tx.Exec(`INSERT INTO extents(ino, off, len, chunk, chunk_off) VALUES(?, ?, ?, ?, ?)`,
			ino, e.Off, e.Len, e.Chunk[:], e.ChunkOff); err != nil {
			return err
		}
	}
	return nil
}

// cutExtentsTx removes [off, off+n) from ino's extents, splitting those
// that reach across its edges.
func cutExtentsTx(tx querier, ino uint64, off, n int64) error {
	exts, err := extentsTx(tx, ino, off, n)
	if err != nil || len(exts) == 0 {
		return err
	}
	var keep []Extent
	for _, e := range exts {
		if e.Off < off {
			left, _ := e.Clip(e.Off, off-e.Off)
			keep = append(keep, left)
		}
		if e.End() > off+n {
			right, _ := e.Clip(off+n, e.End()-(off+n))
			keep = append(keep, right)
		}
	}
	if _, err := tx.Exec(`DELETE FROM extents WHERE ino = ? AND off >= ? AND off < ?`, ino, exts[0].Off, off+n); err != nil {
		return err
	}
	return insertExtentsTx(tx, ino, keep)
}

func stagingTx(tx querier, ino uint64) (Staging, error) {
	s, _, err := stagingRowTx(tx, ino)
	return s, err
}

// stagingRowTx returns ino's staging and the clean part of its ranges
// (see schema 5); the zero values if it has none.
func stagingRowTx(tx querier, ino uint64) (Staging, Ranges, error) {
	var s Staging
	var blob, cblob []byte
	err := tx.QueryRow(`SELECT name, ranges, clean FROM staging WHERE ino = ?`, ino).Scan(&s.Name, &blob, &cblob)
	if errors.Is(err, sql.ErrNoRows) {
		return s, nil, nil
	}
	if err != nil {
		return s, nil, err
	}
	if s.Ranges, err = UnmarshalRanges(blob); err != nil {
		return s, nil, fmt.Errorf("staging of %d: %w", ino, err)
	}
	clean, err := UnmarshalRanges(cblob)
	if err != nil {
		return s, nil, fmt.Errorf("staging of %d: clean ranges: %w", ino, err)
	}
	return s, clean, nil
}

// putStagingTx records s as ino's staging, with clean the part of it an
// upload made clean (see schema 5).
func putStagingTx(tx querier, ino uint64, s Staging, clean Ranges, now int64) error {
	blob, err := s.Ranges.MarshalBinary()
	if err != nil {
		return err
	}
	cblob, err := clean.MarshalBinary()
	if err != nil {
		return err
	}
	var cleanNS int64
	if clean.Bytes() == s.Ranges.Bytes() {
		cleanNS = now // wholly clean (or empty): the file system may drop it
	}
	_, err = tx.Exec(`INSERT OR REPLACE INTO staging(ino, name, ranges, clean, clean_ns) VALUES(?, ?, ?, ?, ?)`,
		ino, s.Name, blob, cblob, cleanNS)
	return err
}

// markCleanTx records that all of ino's staged bytes are now the content
// just uploaded (its extents).
func markCleanTx(tx querier, ino uint64, now int64) error {
	_, err := tx.Exec(`UPDATE staging SET clean = ranges, clean_ns = ? WHERE ino = ?`, now, ino)
	return err
}

// Staging returns inode ino's staged state (the zero Staging if none).
func (db *DB) Staging(ctx context.Context, ino uint64) (Staging, error) {
	var s Staging
	err := db.read1(ctx, func(tx querier) (err error) {
		s, err = stagingTx(tx, ino)
		return err
	})
	if err != nil {
		return s, fmt.Errorf("staging %d: %w", ino, err)
	}
	return s, nil
}

// StagingNames returns the names of all staging files the index refers to
// (a sweep at mount deletes the others).
func (db *DB) StagingNames(ctx context.Context) (map[string]bool, error) {
	names := map[string]bool{}
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`SELECT name FROM staging`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return err
			}
			names[n] = true
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("staging names: %w", err)
	}
	return names, nil
}

// DataCommit is a change of a regular file's content, applied in this
// order: Cut, then AddStaged, then Insert.
type DataCommit struct {
	Size         int64
	Mtime, Ctime int64
	// StagingName names the staging file; required when AddStaged is not
	// empty and no staging row exists yet.
	StagingName string
	// Cut is removed from the extents and the staged ranges (truncate:
	// [size, end); punch hole; the target of a clone).
	Cut Ranges
	// AddStaged are ranges written to the staging file since the last
	// commit (already fsynced there when Durable).
	AddStaged Ranges
	// Insert are extents added after the cut (copy_file_range clones).
	Insert []Extent
	// Durable commits with synchronous=FULL (close, fsync).
	Durable bool
	// KeepUnpersisted leaves the file marked unpersisted (MarkUnpersisted)
	// after the commit: its staging file is still written behind the
	// index's back (a passthrough session), so bytes read from it may
	// already be newer than this commit. EndUnpersisted ends the mark.
	KeepUnpersisted bool
}

// CommitData applies c to inode ino, bumps its data version, queues it
// dirty (data) and returns the resulting staged state. It also ends an
// unpersisted period started by MarkUnpersisted.
func (db *DB) CommitData(ctx context.Context, ino uint64, c DataCommit) (Staging, error) {
	s, _, err := db.commitData(ctx, ino, c, nil)
	return s, err
}

// CommitDataAttr is CommitData followed by SetAttr(ch) in the same
// transaction: a setattr of a file open with writes not committed yet
// (the data first, so that its mtime does not overwrite the one set). It
// returns the attributes SetAttr would.
func (db *DB) CommitDataAttr(ctx context.Context, ino uint64, c DataCommit, ch AttrChange) (Staging, Attr, error) {
	return db.commitData(ctx, ino, c, &ch)
}

func (db *DB) commitData(ctx context.Context, ino uint64, c DataCommit, ch *AttrChange) (Staging, Attr, error) {
	var a Attr
	var s Staging
	db.wmu.Lock()
	defer db.wmu.Unlock()
	err := db.writeLocked(ctx, c.Durable, func(tx querier) error {
		// The inode's row first: it must be a regular file.
		res, err := tx.Exec(`UPDATE inodes SET size = ?, mtime_ns = ?, ctime_ns = ?, data_version = data_version + 1
			WHERE ino = ? AND mode & ? = ?`, c.Size, c.Mtime, c.Ctime, ino, sIFMT, sIFREG)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := getAttrTx(tx, ino); err != nil {
				return err
			}
			return ErrInvalid
		}
		var clean Ranges
		if s, clean, err = stagingRowTx(tx, ino); err != nil {
			return err
		}
		for _, r := range c.Cut {
			if err := cutExtentsTx(tx, ino, r.Off, r.Len); err != nil {
				return err
			}
		}
		s.Ranges = s.Ranges.RemoveAll(c.Cut).AddAll(c.AddStaged)
		if c.StagingName != "" {
			s.Name = c.StagingName
		}
		if len(c.AddStaged) > 0 && s.Name == "" {
			return fmt.Errorf("staged ranges without a staging file: %w", ErrInvalid)
		}
		if s.Name != "" {
			clean = clean.RemoveAll(c.Cut).RemoveAll(c.AddStaged)
			if err := putStagingTx(tx, ino, s, clean, db.nowNS()); err != nil {
				return err
			}
		}
		if err := insertExtentsTx(tx, ino, c.Insert); err != nil {
			return err
		}
		if err := db.markDirtyTx(tx, ino, DirtyData); err != nil {
			return err
		}
		if db.isDisplaced(ino) {
			// Written after a pull took its last name (it was open):
			// the write must not be lost.
			if err := db.resurrectTx(tx, ino); err != nil {
				return err
			}
		}
		if ch != nil {
			a, err = db.setAttrTx(tx, ino, *ch)
		}
		return err
	})
	if err != nil {
		return s, a, fmt.Errorf("commit data of %d: %w", ino, err)
	}
	if !c.KeepUnpersisted {
		delete(db.unpersisted, ino)
	}
	return s, a, nil
}

// EndUnpersisted ends an unpersisted period without a commit (the last
// commit of a passthrough session was made with KeepUnpersisted, and
// nothing changed since).
func (db *DB) EndUnpersisted(ino uint64) {
	db.wmu.Lock()
	delete(db.unpersisted, ino)
	db.wmu.Unlock()
}

// Unpersisted reports whether ino's staging file may hold bytes that no
// commit records yet (between MarkUnpersisted and the commit that ends
// it). The uploader leaves such a file for a later round rather than read
// bytes that are still changing.
func (db *DB) Unpersisted(ino uint64) bool {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.unpersisted[ino] > 0
}

// MarkUnpersisted records that bytes are about to be written to ino's
// staging file that no commit records yet; CommitData ends it. While it
// lasts, ReplaceContent refuses to replace the file's content. It is cheap
// (memory only) and called once per clean-to-dirty transition.
func (db *DB) MarkUnpersisted(ino uint64) {
	db.wmu.Lock()
	db.unpersisted[ino]++
	db.wmu.Unlock()
}

// DataVersion returns inode ino's data version.
func (db *DB) DataVersion(ctx context.Context, ino uint64) (uint64, error) {
	var v uint64
	err := db.read(ctx, func(tx querier) error {
		return tx.QueryRow(`SELECT data_version FROM inodes WHERE ino = ?`, ino).Scan(&v)
	})
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("data version %d: %w", ino, err)
	}
	return v, nil
}

// ReplaceContent is the uploader's commit of a file it uploaded: when the
// file's data version is still version and no unpersisted writes are
// pending, its extents become exts (which must describe the whole content
// the uploader snapshotted) and its staged ranges become clean: they stay,
// serving reads, until the file system drops the staging file
// (DropCleanStaging). Otherwise it fails with ErrChanged and changes
// nothing.
func (db *DB) ReplaceContent(ctx context.Context, ino, version uint64, exts []Extent) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.unpersisted[ino] > 0 {
		return fmt.Errorf("replace content of %d: %w", ino, ErrChanged)
	}
	err := db.writeLocked(ctx, true, func(tx querier) error {
		var v uint64
		if err := tx.QueryRow(`SELECT data_version FROM inodes WHERE ino = ?`, ino).Scan(&v); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if v != version {
			return ErrChanged
		}
		if _, err := tx.Exec(`DELETE FROM extents WHERE ino = ?`, ino); err != nil {
			return err
		}
		if err := insertExtentsTx(tx, ino, exts); err != nil {
			return err
		}
		return markCleanTx(tx, ino, db.nowNS())
	})
	if err != nil {
		return fmt.Errorf("replace content of %d: %w", ino, err)
	}
	return nil
}

// dirtyRanges decodes a staging row's ranges minus its clean part: the
// staged bytes not uploaded yet.
func dirtyRanges(ranges, clean []byte) (Ranges, error) {
	rs, err := UnmarshalRanges(ranges)
	if err != nil {
		return nil, err
	}
	cs, err := UnmarshalRanges(clean)
	if err != nil {
		return nil, err
	}
	return rs.RemoveAll(cs), nil
}

// CleanStaging is a staging file whose bytes are all uploaded (see schema 5).
type CleanStaging struct {
	Ino   uint64
	Name  string
	Since time.Time // when it became wholly clean
}

// CleanStagings returns up to limit staging files wholly clean since
// before, oldest first.
func (db *DB) CleanStagings(ctx context.Context, before time.Time, limit int) ([]CleanStaging, error) {
	var out []CleanStaging
	err := db.read(ctx, func(tx querier) error {
		rows, err := tx.Query(`SELECT ino, name, clean_ns FROM staging WHERE clean_ns > 0 AND clean_ns < ?
			ORDER BY clean_ns LIMIT ?`, before.UnixNano(), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c CleanStaging
			var ns int64
			if err := rows.Scan(&c.Ino, &c.Name, &ns); err != nil {
				return err
			}
			c.Since = Time(ns)
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("clean staging files: %w", err)
	}
	return out, nil
}

// DropCleanStaging deletes ino's staging row if all its bytes are still
// clean (the file's extents hold them) and returns the staging file's name
// for the caller to remove ("" if it kept it). The caller makes sure no
// handle uses the staging file.
func (db *DB) DropCleanStaging(ctx context.Context, ino uint64) (string, error) {
	var name string
	err := db.write(ctx, false, func(tx querier) error {
		err := tx.QueryRow(`SELECT name FROM staging WHERE ino = ? AND clean_ns > 0`, ino).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(`DELETE FROM staging WHERE ino = ?`, ino)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("drop clean staging of %d: %w", ino, err)
	}
	return name, nil
}

// DropEmptyStaging deletes ino's staging row if it has no staged ranges and
// returns its name for the caller to remove the file ("" if it kept it).
func (db *DB) DropEmptyStaging(ctx context.Context, ino uint64) (string, error) {
	var name string
	err := db.write(ctx, false, func(tx querier) error {
		s, err := stagingTx(tx, ino)
		if err != nil || s.Name == "" || len(s.Ranges) > 0 {
			return err
		}
		if _, err := tx.Exec(`DELETE FROM staging WHERE ino = ?`, ino); err != nil {
			return err
		}
		name = s.Name
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("drop staging of %d: %w", ino, err)
	}
	return name, nil
}
