package bucket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// ErrCollecting is returned (wrapped) by Collections.Check for a commit
// that names an object a garbage collection marked and may be deleting:
// the writer leaves head alone and tries again after the sweep, which
// deletes the object or, found reachable after all, keeps it and removes
// the mark.
var ErrCollecting = errors.New("object marked by a garbage collection past its deadline")

// Collections is a writer's view of the marks of pending garbage
// collections: the marked objects and the earliest deadline of each. A
// mark is immutable, so each is read once; Check lists the marks anew
// each time. A mark that does not parse is skipped, as the collection
// does (gc reports it). Safe for concurrent use.
type Collections struct {
	store chunkstore.Store

	mu     sync.Mutex
	marks  map[string]*Mark // by key: the marks read (nil: one that does not parse)
	doomed map[Ref]time.Time
	bad    []error // marks that did not parse since TakeBad
}

// NewCollections returns a view of the marks in s.
func NewCollections(s chunkstore.Store) *Collections {
	return &Collections{store: s, marks: map[string]*Mark{}, doomed: map[Ref]time.Time{}}
}

// refresh lists the marks and reads the new ones.
func (c *Collections) refresh(ctx context.Context) error {
	keys, _, err := ListMarks(ctx, c.store)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live := make(map[string]bool, len(keys))
	changed := false
	for _, k := range keys {
		live[k] = true
		if _, ok := c.marks[k]; ok {
			continue
		}
		m, err := ReadMark(ctx, c.store, k)
		switch {
		case errors.Is(err, chunkstore.ErrNotFound):
			continue // swept meanwhile
		case errors.Is(err, ErrBadMark) || errors.Is(err, chunkstore.ErrTooLarge):
			c.bad = append(c.bad, err)
			m = nil
		case err != nil:
			return err
		}
		c.marks[k] = m
		changed = true
	}
	for k := range c.marks {
		if !live[k] {
			delete(c.marks, k)
			changed = true
		}
	}
	if changed {
		c.doomed = map[Ref]time.Time{}
		for _, m := range c.marks {
			if m == nil {
				continue
			}
			d := m.Deadline()
			for _, r := range m.Objects {
				if old, ok := c.doomed[r]; !ok || d.Before(old) {
					c.doomed[r] = d
				}
			}
		}
	}
	return nil
}

// Check lists the marks and fails with ErrCollecting when one of keys
// (the store keys of the objects a commit about to be made relies on:
// what it put and what it found present) is marked with a deadline before
// now. Keys of other kinds are ignored.
func (c *Collections) Check(ctx context.Context, keys []string, now time.Time) error {
	if err := c.refresh(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.doomed) == 0 {
		return nil
	}
	for _, k := range keys {
		r, ok := ParseRef(k)
		if !ok {
			continue
		}
		if d, ok := c.doomed[r]; ok && now.After(d) {
			return fmt.Errorf("%s (deadline %s): %w", k, d.Format(time.RFC3339), ErrCollecting)
		}
	}
	return nil
}

// TakeBad returns the marks that did not parse since the last call.
func (c *Collections) TakeBad() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.bad
	c.bad = nil
	return b
}
