package index

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// linkWalkBatch is how many not-loaded directories LoadLinkNames loads
// per step, at most linkWalkConcurrency at a time.
const (
	linkWalkBatch       = 64
	linkWalkConcurrency = 8
)

// MaxLinkWalkDirs bounds the directories one LoadLinkNames loads: a tree
// that reuses one subtree at every level can claim more directories than
// there are atoms while the bucket holds a few dozen trees, and a file in
// it that claims other names would otherwise make one write load them
// all. Past the bound the inodes still short of names fail on their own
// (LinkWalkError); a later call (the file changed again, cloudfs sync)
// walks on from where this one stopped.
var MaxLinkWalkDirs = 1 << 16

// LinkWalkError is LoadLinkNames giving up at MaxLinkWalkDirs: Inos are
// still short of names after Dirs directories were loaded.
type LinkWalkError struct {
	Inos []uint64
	Dirs int
}

func (e *LinkWalkError) Error() string {
	return fmt.Sprintf("hard-linked inodes %v: their other names are not in the %d directories loaded to find them "+
		"(their trees claim more than the walk may load)", e.Inos, e.Dirs)
}

// LoadLinkNames makes sure that a commit of the queued inodes inos can
// rewrite every name of each: an inode loaded from the remote tree with a
// higher link count than it has entries has names in directories not
// loaded yet (see links.go), whose tree entries would keep its old content,
// attributes and count if the commit wrote only the names loaded. So while
// such an inode is among inos, it loads not-loaded directories (a batch at
// a time, through load) until the inode's names are all in; this walks at
// most the part of the tree this machine has not visited, and only for a
// change of a hard-linked file whose other names it has not seen. When no
// directory is left to load and an inode still has fewer entries than its
// count, the count was wrong (a tree whose counts disagree with its names)
// and is set to the number of entries. It returns how many directories it
// loaded; after MaxLinkWalkDirs it stops with a *LinkWalkError naming the
// inodes still short.
func (db *DB) LoadLinkNames(ctx context.Context, inos []uint64, load RemoteLoader) (int, error) {
	loaded := 0
	for {
		short, err := db.shortOfNames(ctx, inos)
		if err != nil || len(short) == 0 {
			return loaded, err
		}
		dirs, err := db.notLoadedDirs(ctx, linkWalkBatch)
		if err != nil {
			return loaded, err
		}
		if len(dirs) == 0 {
			return loaded, db.settleLinkCounts(ctx, short)
		}
		if loaded >= MaxLinkWalkDirs {
			return loaded, &LinkWalkError{Inos: short, Dirs: loaded}
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(linkWalkConcurrency)
		for _, d := range dirs {
			g.Go(func() error { return db.EnsureLoaded(gctx, d, load) })
		}
		if err := g.Wait(); err != nil {
			return loaded, fmt.Errorf("load the other names of hard-linked files: %w", err)
		}
		loaded += len(dirs)
	}
}

// ShortOfNames returns the inodes of inos, not directories, whose link
// count exceeds their entries here (names in directories not loaded, or a
// count that is wrong).
func (db *DB) ShortOfNames(ctx context.Context, inos []uint64) ([]uint64, error) {
	return db.shortOfNames(ctx, inos)
}

// shortOfNames returns the inodes of inos, not directories, whose link
// count exceeds their entries.
func (db *DB) shortOfNames(ctx context.Context, inos []uint64) ([]uint64, error) {
	var out []uint64
	err := db.read(ctx, func(tx querier) error {
		for rest := inos; len(rest) > 0; {
			batch := rest[:min(len(rest), 500)]
			rest = rest[len(batch):]
			args := make([]any, 0, len(batch)+2)
			args = append(args, sIFMT, sIFDIR)
			for _, ino := range batch {
				args = append(args, ino)
			}
			inos, err := queryInos(tx, `SELECT i.ino FROM inodes i WHERE i.mode & ?1 != ?2 AND i.ino IN (`+placeholders(len(batch))+`)
				AND i.nlink > (SELECT COUNT(*) FROM dentries d WHERE d.ino = i.ino)`, args...)
			if err != nil {
				return err
			}
			out = append(out, inos...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inodes with names not loaded: %w", err)
	}
	return out, nil
}

// notLoadedDirs returns up to limit directories that are not loaded.
func (db *DB) notLoadedDirs(ctx context.Context, limit int) ([]uint64, error) {
	var out []uint64
	err := db.read(ctx, func(tx querier) (err error) {
		out, err = queryInos(tx, `SELECT ino FROM inodes WHERE loaded = 0 ORDER BY ino LIMIT ?`, limit)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("directories not loaded: %w", err)
	}
	return out, nil
}

// settleLinkCounts sets the link count of each of inos to its number of
// entries where it is higher, once no directory is left unloaded (checked
// again in the transaction: a sync may have brought new ones). The inodes
// are queued already (they are why the walk ran); one left with no entry
// becomes an orphan, for Forget.
func (db *DB) settleLinkCounts(ctx context.Context, inos []uint64) error {
	err := db.write(ctx, false, func(tx querier) error {
		var one int
		err := tx.QueryRow(`SELECT 1 FROM inodes WHERE loaded = 0 LIMIT 1`).Scan(&one)
		if err == nil {
			return nil // more to load: the next round walks on
		}
		if !isNoRows(err) {
			return err
		}
		for _, ino := range inos {
			var names uint32
			if err := tx.QueryRow(`SELECT COUNT(*) FROM dentries WHERE ino = ?`, ino).Scan(&names); err != nil {
				return err
			}
			r, err := tx.Exec(`UPDATE inodes SET nlink = ?1 WHERE ino = ?2 AND mode & ?3 != ?4 AND nlink > ?1`,
				names, ino, sIFMT, sIFDIR)
			if err != nil {
				return err
			}
			if n, err := r.RowsAffected(); err != nil {
				return err
			} else if n > 0 && names == 0 {
				db.addOrphan(ino)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settle link counts: %w", err)
	}
	return nil
}
