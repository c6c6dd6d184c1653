// Package retry is a chunkstore.Store decorator that retries transient
// failures with exponential backoff and jitter (cenkalti/backoff/v5),
// bounded in attempts and in total time.
//
// An error is transient unless it is permanent (chunkstore.IsPermanent:
// marked Permanent by the store, e.g. a 4xx other than 429, or ErrNotFound,
// or ErrPrecondition) or the caller's context is done. So 5xx, 429,
// timeouts, connection resets and io.ErrUnexpectedEOF are retried.
//
// A conditional Put whose earlier attempt failed transiently may have
// succeeded on the server anyway (a lost reply); if a later attempt then
// fails its condition, the object is read back, and when it holds exactly
// the data being written the Put counts as successful.
package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Config bounds the retrying. Zero fields take the defaults.
type Config struct {
	// MaxAttempts counts all attempts, the first included (default 8).
	MaxAttempts uint
	// MaxElapsed bounds the time from the first attempt to the start of
	// the last (default 2 minutes).
	MaxElapsed time.Duration
	// InitialInterval is the first delay (default 200ms); each delay is
	// 1.5 times the previous, randomised by ±50%, up to MaxInterval
	// (default 15s).
	InitialInterval, MaxInterval time.Duration
}

// DefaultConfig is used for the zero fields of a Config.
var DefaultConfig = Config{MaxAttempts: 8, MaxElapsed: 2 * time.Minute, InitialInterval: 200 * time.Millisecond, MaxInterval: 15 * time.Second}

// Store retries the calls of an inner chunkstore.Store. It is safe for
// concurrent use if the inner store is.
type Store struct {
	inner chunkstore.Store
	cfg   Config
	log   *zap.Logger
}

var (
	_ chunkstore.Store       = (*Store)(nil)
	_ chunkstore.RangeGetter = (*Store)(nil)
)

// New wraps inner. Retries are logged at Warn on log (nil: not logged).
func New(inner chunkstore.Store, cfg Config, log *zap.Logger) *Store {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultConfig.MaxAttempts
	}
	if cfg.MaxElapsed == 0 {
		cfg.MaxElapsed = DefaultConfig.MaxElapsed
	}
	if cfg.InitialInterval == 0 {
		cfg.InitialInterval = DefaultConfig.InitialInterval
	}
	if cfg.MaxInterval == 0 {
		cfg.MaxInterval = DefaultConfig.MaxInterval
	}
	return &Store{inner: inner, cfg: cfg, log: log}
}

// String names the inner store.
func (s *Store) String() string { return s.inner.String() }

// Transient reports whether err is worth retrying while ctx is live.
func Transient(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && !chunkstore.IsPermanent(err)
}

// do runs op until it succeeds, fails permanently, or the bounds are hit.
// It returns op's last error, never a bare backoff error.
func do[T any](ctx context.Context, s *Store, name, key string, op func() (T, error)) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = s.cfg.InitialInterval
	b.MaxInterval = s.cfg.MaxInterval
	attempt := 0
	var last error
	res, err := backoff.Retry(ctx, func() (T, error) {
		attempt++
		v, err := op()
		if err != nil && !Transient(ctx, err) {
			return v, backoff.Permanent(err)
		}
		last = err
		return v, err
	},
		backoff.WithBackOff(b),
		backoff.WithMaxTries(s.cfg.MaxAttempts),
		backoff.WithMaxElapsedTime(s.cfg.MaxElapsed),
		backoff.WithNotify(func(err error, next time.Duration) {
			s.log.Warn("store call failed, retrying",
				zap.String("op", name), zap.String("key", key),
				zap.Int("attempt", attempt), zap.Duration("delay", next), zap.Error(err))
		}))
	if err != nil && ctx.Err() != nil && last != nil && !errors.Is(err, last) {
		// backoff returns the context's cause; keep the store's error too.
		err = fmt.Errorf("%s %s: %w (after %d attempts, last error: %v)", name, key, err, attempt, last)
	} else if err != nil && attempt > 1 {
		err = fmt.Errorf("%w (after %d attempts)", err, attempt)
	}
	return res, err
}

// Get retries the inner Get.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	type result struct {
		data []byte
		etag string
	}
	r, err := do(ctx, s, "get", key, func() (result, error) {
		d, e, err := s.inner.Get(ctx, key)
		return result{d, e}, err
	})
	return r.data, r.etag, err
}

// GetRange retries the inner ranged read (chunkstore.GetRange).
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	return do(ctx, s, "get range", key, func() ([]byte, error) {
		return chunkstore.GetRange(ctx, s.inner, key, off, length)
	})
}

// GetRangeMeta retries the inner chunkstore.GetRangeMeta.
func (s *Store) GetRangeMeta(ctx context.Context, key string, off, length int64) (chunkstore.RangeMeta, error) {
	return do(ctx, s, "get range", key, func() (chunkstore.RangeMeta, error) {
		return chunkstore.GetRangeMeta(ctx, s.inner, key, off, length)
	})
}

// KeepsMeta reports whether the inner store keeps object metadata.
func (s *Store) KeepsMeta() bool { return chunkstore.KeepsMeta(s.inner) }

// Stat retries the inner Stat.
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	return do(ctx, s, "stat", key, func() (chunkstore.Info, error) { return s.inner.Stat(ctx, key) })
}

// Delete retries the inner Delete.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := do(ctx, s, "delete", key, func() (struct{}, error) { return struct{}{}, s.inner.Delete(ctx, key) })
	return err
}

// Put retries the inner Put, recognising a conditional put whose success
// was hidden by a lost reply (see the package doc).
func (s *Store) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	return s.PutMeta(ctx, key, data, cond, nil)
}

// PutMeta is Put with metadata for the inner store (chunkstore.PutMeta).
func (s *Store) PutMeta(ctx context.Context, key string, data []byte, cond chunkstore.Cond, meta chunkstore.Meta) (string, error) {
	conditional := cond.IfNoneMatch || cond.IfMatch != ""
	failedBefore := false
	return do(ctx, s, "put", key, func() (string, error) {
		etag, err := chunkstore.PutMeta(ctx, s.inner, key, data, cond, meta)
		if conditional && failedBefore && errors.Is(err, chunkstore.ErrPrecondition) {
			cur, curTag, gerr := s.inner.Get(ctx, key)
			if gerr == nil && bytes.Equal(cur, data) {
				return curTag, nil
			}
		}
		if err != nil {
			failedBefore = true
		}
		return etag, err
	})
}

// listFnError carries an error of List's fn, which is never retried.
type listFnError struct{ err error }

func (e *listFnError) Error() string { return e.err.Error() }
func (e *listFnError) Unwrap() error { return e.err }

// List retries the inner List. A retry resumes after the last key passed
// to fn, so fn sees every key once, in order. Errors from fn are returned
// at once.
func (s *Store) List(ctx context.Context, prefix string, fn func(chunkstore.Info) error) error {
	var lastKey string
	seen := false
	_, err := do(ctx, s, "list", prefix, func() (struct{}, error) {
		err := s.inner.List(ctx, prefix, func(in chunkstore.Info) error {
			if seen && in.Key <= lastKey {
				return nil
			}
			if err := fn(in); err != nil {
				return &chunkstore.Permanent{Err: &listFnError{err}}
			}
			lastKey, seen = in.Key, true
			return nil
		})
		return struct{}{}, err
	})
	var fe *listFnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}
