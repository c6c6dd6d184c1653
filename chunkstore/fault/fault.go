// Package fault is a chunkstore.Store decorator that injects failures for
// tests: an error on the Nth call or on calls under a key prefix, latency,
// a lost reply (the call happens, the caller sees an error), and truncated
// or corrupted bodies. It counts calls per operation.
//
// A Rule matches calls by operation and key prefix. Matching calls are
// numbered from 1 per rule; the rule fires on match number Nth (1 when
// zero) and the Times-1 matches after it (every later match when Times is
// zero). The first rule that fires decides the call's fate.
package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Op names a Store method. Ops combine as a bit set; zero in a Rule means
// every operation.
type Op uint

// The operations of a Store.
const (
	OpGet Op = 1 << iota
	OpPut
	OpStat
	OpDelete
	OpList
	OpGetRange
)

// OpAll matches every operation.
const OpAll = OpGet | OpPut | OpStat | OpDelete | OpList | OpGetRange

func (o Op) String() string {
	names := []string{"get", "put", "stat", "delete", "list", "getrange"}
	var parts []string
	for i, n := range names {
		if o&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "|")
}

// ErrInjected is the error of FailNth and FailPrefix when given a nil err.
var ErrInjected = errors.New("injected fault")

// Rule describes one fault.
type Rule struct {
	// Ops selects the operations (zero: all); Prefix the keys (List
	// matches on its prefix argument).
	Ops    Op
	Prefix string
	// Nth and Times select which matching calls fire (see the package doc).
	Nth, Times int

	// Delay is added before the call (honouring cancellation).
	Delay time.Duration
	// Err is returned instead of calling the store. With none of Err,
	// Truncate and Corrupt set, a firing rule only delays.
	Err error
	// AfterCall makes Err a lost reply: the store is called, then Err is
	// returned in place of its result.
	AfterCall bool
	// Truncate cuts a Get or GetRange body to half its length; Corrupt
	// flips a bit in its middle. The call itself succeeds.
	Truncate, Corrupt bool
}

type rule struct {
	Rule
	seen int // matching calls so far
}

// Store wraps a chunkstore.Store with faults. It is safe for concurrent
// use; rules may be added and cleared while calls run.
type Store struct {
	inner chunkstore.Store

	mu    sync.Mutex // guards rules and calls
	rules []*rule
	calls map[Op]int
}

var (
	_ chunkstore.Store       = (*Store)(nil)
	_ chunkstore.RangeGetter = (*Store)(nil)
)

// New returns inner without faults; add them with Add.
func New(inner chunkstore.Store) *Store {
	return &Store{inner: inner, calls: make(map[Op]int)}
}

// Add installs r after the rules already present.
func (s *Store) Add(r Rule) {
	s.mu.Lock()
	s.rules = append(s.rules, &rule{Rule: r})
	s.mu.Unlock()
}

// FailNth makes the nth call of ops (zero: any) fail with err (nil:
// ErrInjected).
func (s *Store) FailNth(ops Op, n int, err error) {
	s.Add(Rule{Ops: ops, Nth: n, Times: 1, Err: orInjected(err)})
}

// FailPrefix makes every call of ops on keys under prefix fail with err
// (nil: ErrInjected).
func (s *Store) FailPrefix(ops Op, prefix string, err error) {
	s.Add(Rule{Ops: ops, Prefix: prefix, Err: orInjected(err)})
}

func orInjected(err error) error {
	if err == nil {
		return ErrInjected
	}
	return err
}

// Clear removes all rules; call counts are kept.
func (s *Store) Clear() {
	s.mu.Lock()
	s.rules = nil
	s.mu.Unlock()
}

// Calls returns how many calls of ops (zero: all) were made, faulty or not.
func (s *Store) Calls(ops Op) int {
	if ops == 0 {
		ops = OpAll
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for op, c := range s.calls {
		if op&ops != 0 {
			n += c
		}
	}
	return n
}

// String names the wrapped store.
func (s *Store) String() string { return "fault(" + s.inner.String() + ")" }

// begin counts the call, finds the rule that fires and applies its delay.
// It returns the rule (nil for none) or a context error.
func (s *Store) begin(ctx context.Context, op Op, key string) (*Rule, error) {
	s.mu.Lock()
	s.calls[op]++
	var fired *Rule
	for _, r := range s.rules {
		if (r.Ops != 0 && r.Ops&op == 0) || !strings.HasPrefix(key, r.Prefix) {
			continue
		}
		r.seen++
		nth := max(r.Nth, 1)
		if fired == nil && r.seen >= nth && (r.Times == 0 || r.seen < nth+r.Times) {
			c := r.Rule
			fired = &c
		}
	}
	s.mu.Unlock()
	if fired != nil && fired.Delay > 0 {
		t := time.NewTimer(fired.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("fault %s %s: %w", op, key, ctx.Err())
		}
	}
	return fired, nil
}

// before returns the error to fail with instead of calling the store.
func before(r *Rule, op Op, key string) error {
	if r == nil || r.Err == nil || r.AfterCall {
		return nil
	}
	return fmt.Errorf("fault %s %s: %w", op, key, r.Err)
}

// after returns the error of a lost reply, or err.
func after(r *Rule, op Op, key string, err error) error {
	if r != nil && r.Err != nil && r.AfterCall {
		return fmt.Errorf("fault %s %s (after the call): %w", op, key, r.Err)
	}
	return err
}

// mangle applies Truncate and Corrupt to a body, on a copy.
func mangle(r *Rule, data []byte) []byte {
	if r == nil || (!r.Truncate && !r.Corrupt) {
		return data
	}
	data = append([]byte{}, data...)
	if r.Truncate {
		data = data[:len(data)/2]
	}
	if r.Corrupt && len(data) > 0 {
		data[len(data)/2] ^= 0x10
	}
	return data
}

// Get calls the store's Get under the faults that fire.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	r, err := s.begin(ctx, OpGet, key)
	if err == nil {
		err = before(r, OpGet, key)
	}
	if err != nil {
		return nil, "", err
	}
	data, etag, err := s.inner.Get(ctx, key)
	if err = after(r, OpGet, key, err); err != nil {
		return nil, "", err
	}
	return mangle(r, data), etag, nil
}

// GetRange calls the store's ranged read (chunkstore.GetRange) under the
// faults that fire.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	r, err := s.begin(ctx, OpGetRange, key)
	if err == nil {
		err = before(r, OpGetRange, key)
	}
	if err != nil {
		return nil, err
	}
	data, err := chunkstore.GetRange(ctx, s.inner, key, off, length)
	if err = after(r, OpGetRange, key, err); err != nil {
		return nil, err
	}
	return mangle(r, data), nil
}

// GetRangeMeta calls the store's chunkstore.GetRangeMeta under the faults
// that fire (those of OpGetRange).
func (s *Store) GetRangeMeta(ctx context.Context, key string, off, length int64) (chunkstore.RangeMeta, error) {
	r, err := s.begin(ctx, OpGetRange, key)
	if err == nil {
		err = before(r, OpGetRange, key)
	}
	if err != nil {
		return chunkstore.RangeMeta{}, err
	}
	res, err := chunkstore.GetRangeMeta(ctx, s.inner, key, off, length)
	if err = after(r, OpGetRange, key, err); err != nil {
		return chunkstore.RangeMeta{}, err
	}
	res.Data = mangle(r, res.Data)
	return res, nil
}

// KeepsMeta reports whether the wrapped store keeps object metadata.
func (s *Store) KeepsMeta() bool { return chunkstore.KeepsMeta(s.inner) }

// Put calls the store's Put under the faults that fire.
func (s *Store) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	return s.PutMeta(ctx, key, data, cond, nil)
}

// PutMeta calls the store's chunkstore.PutMeta under the faults that fire
// (those of OpPut).
func (s *Store) PutMeta(ctx context.Context, key string, data []byte, cond chunkstore.Cond, meta chunkstore.Meta) (string, error) {
	r, err := s.begin(ctx, OpPut, key)
	if err == nil {
		err = before(r, OpPut, key)
	}
	if err != nil {
		return "", err
	}
	etag, err := chunkstore.PutMeta(ctx, s.inner, key, data, cond, meta)
	if err = after(r, OpPut, key, err); err != nil {
		return "", err
	}
	return etag, nil
}

// Stat calls the store's Stat under the faults that fire.
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	r, err := s.begin(ctx, OpStat, key)
	if err == nil {
		err = before(r, OpStat, key)
	}
	if err != nil {
		return chunkstore.Info{}, err
	}
	info, err := s.inner.Stat(ctx, key)
	if err = after(r, OpStat, key, err); err != nil {
		return chunkstore.Info{}, err
	}
	return info, nil
}

// Delete calls the store's Delete under the faults that fire.
func (s *Store) Delete(ctx context.Context, key string) error {
	r, err := s.begin(ctx, OpDelete, key)
	if err == nil {
		err = before(r, OpDelete, key)
	}
	if err != nil {
		return err
	}
	return after(r, OpDelete, key, s.inner.Delete(ctx, key))
}

// List calls the store's List under the faults that fire; a lost reply
// comes after the full listing.
func (s *Store) List(ctx context.Context, prefix string, fn func(chunkstore.Info) error) error {
	r, err := s.begin(ctx, OpList, prefix)
	if err == nil {
		err = before(r, OpList, prefix)
	}
	if err != nil {
		return err
	}
	return after(r, OpList, prefix, s.inner.List(ctx, prefix, fn))
}
