package index

import (
	"context"
	"fmt"
	"sync"
)

// maxXattrSet bounds the inodes xattrSet tracks (about 40 bytes each).
// A volume with more inodes that have xattrs answers every xattr call with
// a query, as if the set did not exist.
const maxXattrSet = 1 << 18

// xattrSet is a superset of the inodes that have extended attributes.
// An inode is added before a transaction that may give it one commits
// (a rolled-back addition only costs a query later) and removed only after
// a committed transaction left it none, under DB.wmu, so the set never
// misses an inode that has xattrs. Its own RWMutex is a leaf lock: taken
// under wmu or alone, never the other way round.
type xattrSet struct {
	mu       sync.RWMutex
	inos     map[uint64]struct{}
	overflow bool // more than maxXattrSet: inos is nil, every inode "may" have some
}

// MayHaveXattrs reports whether inode ino may have extended attributes.
// False is exact (it has none), so the file system answers getxattr with
// ENODATA and listxattr with an empty list without asking the index; true
// means "query the index".
func (db *DB) MayHaveXattrs(ino uint64) bool {
	s := &db.xattrs
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.overflow {
		return true
	}
	_, ok := s.inos[ino]
	return ok
}

// add records that ino may have xattrs.
func (s *xattrSet) add(ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow {
		return
	}
	if len(s.inos) >= maxXattrSet {
		s.inos, s.overflow = nil, true
		return
	}
	s.inos[ino] = struct{}{}
}

// remove records that ino has no xattrs (call only after the commit that
// made it so, under DB.wmu).
func (s *xattrSet) remove(ino uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inos, ino)
}

// loadXattrSet fills the set from the xattrs table (at Open).
func (db *DB) loadXattrSet(ctx context.Context) error {
	s := &db.xattrs
	s.inos = map[uint64]struct{}{}
	err := db.read(ctx, func(tx querier) error {
		inos, err := queryInos(tx, `SELECT DISTINCT ino FROM xattrs`)
		for _, ino := range inos {
			s.add(ino)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("open index %s: xattr inodes: %w", db.path, err)
	}
	return nil
}
