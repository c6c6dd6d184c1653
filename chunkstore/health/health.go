// Package health is a chunkstore.Store decorator that tracks whether the
// store can be reached, and bounds how long its users keep trying when it
// cannot.
//
// Terms:
//
//   - unreachable: a call failed without an answer from the store
//     (chunkstore.ErrUnreachable). Any answer, an error one included,
//     makes the store reachable again.
//   - offline: the store has been unreachable since the first such failure
//     after the last answer (Offline reports since when).
//
// Once a store has been offline for longer than the grace period (the
// mount's --connect-timeout), its unreachable failures are returned as
// chunkstore.Permanent, so a retry decorator above it gives up at once: a
// read of an uncached chunk fails with EIO after the grace period instead
// of after the retry layer's minutes, and uploads and pulls fail their
// attempt and come back with their own backoff. Place it below the retry
// decorator, over the store that makes one attempt per call.
package health

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Store tracks the reachability of an inner store. Safe for concurrent use.
type Store struct {
	inner chunkstore.Store
	grace time.Duration
	now   func() time.Time

	mu      sync.Mutex
	since   time.Time // first unreachable failure since the last answer (zero: online)
	lastErr error
}

var (
	_ chunkstore.Store       = (*Store)(nil)
	_ chunkstore.RangeGetter = (*Store)(nil)
	_ chunkstore.MetaStore   = (*Store)(nil)
)

// New wraps inner with the grace period grace (see the package doc); now
// (nil: time.Now) is the clock.
func New(inner chunkstore.Store, grace time.Duration, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{inner: inner, grace: grace, now: now}
}

// Offline reports whether the store is offline, since when, and the last
// failure.
func (s *Store) Offline() (since time.Time, offline bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since, !s.since.IsZero(), s.lastErr
}

// note records the outcome of one call and returns its error, made
// permanent once the store has been offline past the grace period.
func (s *Store) note(err error) error {
	if err != nil && !errors.Is(err, chunkstore.ErrUnreachable) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err // the caller gave up: says nothing of the store
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil || !errors.Is(err, chunkstore.ErrUnreachable) {
		s.since, s.lastErr = time.Time{}, nil
		return err
	}
	now := s.now()
	if s.since.IsZero() {
		s.since = now
	}
	s.lastErr = err
	if now.Sub(s.since) >= s.grace {
		return &chunkstore.Permanent{Err: err}
	}
	return err
}

// String names the inner store.
func (s *Store) String() string { return s.inner.String() }

// Get is the inner Get.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	d, e, err := s.inner.Get(ctx, key)
	return d, e, s.note(err)
}

// GetRange is the inner chunkstore.GetRange.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	d, err := chunkstore.GetRange(ctx, s.inner, key, off, length)
	return d, s.note(err)
}

// GetRangeMeta is the inner chunkstore.GetRangeMeta.
func (s *Store) GetRangeMeta(ctx context.Context, key string, off, length int64) (chunkstore.RangeMeta, error) {
	r, err := chunkstore.GetRangeMeta(ctx, s.inner, key, off, length)
	return r, s.note(err)
}

// KeepsMeta reports whether the inner store keeps object metadata.
func (s *Store) KeepsMeta() bool { return chunkstore.KeepsMeta(s.inner) }

// Put is the inner Put.
func (s *Store) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	e, err := s.inner.Put(ctx, key, data, cond)
	return e, s.note(err)
}

// PutMeta is the inner chunkstore.PutMeta.
func (s *Store) PutMeta(ctx context.Context, key string, data []byte, cond chunkstore.Cond, meta chunkstore.Meta) (string, error) {
	e, err := chunkstore.PutMeta(ctx, s.inner, key, data, cond, meta)
	return e, s.note(err)
}

// Stat is the inner Stat.
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	i, err := s.inner.Stat(ctx, key)
	return i, s.note(err)
}

// Delete is the inner Delete.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.note(s.inner.Delete(ctx, key))
}

// List is the inner List.
func (s *Store) List(ctx context.Context, prefix string, fn func(chunkstore.Info) error) error {
	return s.note(s.inner.List(ctx, prefix, fn))
}
