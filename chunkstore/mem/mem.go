// Package mem is an in-memory chunkstore.Store for tests of other packages.
// It keeps the full Store contract, conditional writes included; objects
// live as long as the Store value. ETags are the hex BLAKE3-256 of the
// content, as in the local store.
package mem

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

type object struct {
	data []byte
	etag string
	mod  time.Time
	meta chunkstore.Meta
}

// Store is an in-memory chunkstore.Store. It is safe for concurrent use.
type Store struct {
	name string

	mu      sync.Mutex // guards objects
	objects map[string]object
}

var (
	_ chunkstore.Store       = (*Store)(nil)
	_ chunkstore.RangeGetter = (*Store)(nil)
	_ chunkstore.MetaStore   = (*Store)(nil)
)

// New returns an empty Store; name is what String returns.
func New(name string) *Store {
	return &Store{name: name, objects: make(map[string]object)}
}

// String returns the name given to New.
func (s *Store) String() string { return "mem:" + s.name }

func etagOf(data []byte) string { return chunkstore.Hash(data).String() }

// Get returns a copy of the object; one larger than its kind allows
// (chunkstore.MaxObjectSize) is chunkstore.ErrTooLarge, as from the other
// stores.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("mem get %s: %w", key, err)
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return nil, "", fmt.Errorf("mem get %s: %w", key, chunkstore.ErrNotFound)
	}
	if limit := chunkstore.MaxObjectSize(key); int64(len(o.data)) > limit {
		return nil, "", fmt.Errorf("mem get %s: %w", key, chunkstore.TooLarge(key, int64(len(o.data)), limit))
	}
	return append([]byte{}, o.data...), o.etag, nil
}

// GetRange returns a copy of up to length bytes at off.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	r, err := s.GetRangeMeta(ctx, key, off, length)
	return r.Data, err
}

// GetRangeMeta is GetRange with the object's metadata and size. An object
// larger than its kind allows is chunkstore.ErrTooLarge.
func (s *Store) GetRangeMeta(ctx context.Context, key string, off, length int64) (chunkstore.RangeMeta, error) {
	if err := ctx.Err(); err != nil {
		return chunkstore.RangeMeta{}, fmt.Errorf("mem get range %s: %w", key, err)
	}
	if off < 0 || length < 0 {
		return chunkstore.RangeMeta{}, fmt.Errorf("mem get range %s: negative offset %d or length %d", key, off, length)
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return chunkstore.RangeMeta{}, fmt.Errorf("mem get range %s: %w", key, chunkstore.ErrNotFound)
	}
	if limit := chunkstore.MaxObjectSize(key); int64(len(o.data)) > limit {
		return chunkstore.RangeMeta{}, fmt.Errorf("mem get range %s: %w", key, chunkstore.TooLarge(key, int64(len(o.data)), limit))
	}
	if off >= int64(len(o.data)) {
		// As S3, whose 416 reply carries no metadata.
		return chunkstore.RangeMeta{Data: []byte{}}, nil
	}
	end := min(off+length, int64(len(o.data)))
	return chunkstore.RangeMeta{Data: append([]byte{}, o.data[off:end]...), Meta: maps.Clone(o.meta), Size: int64(len(o.data))}, nil
}

// Put stores a copy of data, checking cond atomically.
func (s *Store) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	return s.PutMeta(ctx, key, data, cond, nil)
}

// PutMeta is Put that keeps a copy of meta with the object.
func (s *Store) PutMeta(ctx context.Context, key string, data []byte, cond chunkstore.Cond, meta chunkstore.Meta) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("mem put %s: %w", key, err)
	}
	o := object{data: append([]byte{}, data...), etag: etagOf(data), mod: time.Now(), meta: maps.Clone(meta)}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, exists := s.objects[key]
	if cond.IfNoneMatch && exists {
		return "", fmt.Errorf("mem put %s: object exists: %w", key, chunkstore.ErrPrecondition)
	}
	if cond.IfMatch != "" && (!exists || cur.etag != cond.IfMatch) {
		return "", fmt.Errorf("mem put %s: etag is not %s: %w", key, cond.IfMatch, chunkstore.ErrPrecondition)
	}
	s.objects[key] = o
	return o.etag, nil
}

// Stat returns the object's Info.
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	if err := ctx.Err(); err != nil {
		return chunkstore.Info{}, fmt.Errorf("mem stat %s: %w", key, err)
	}
	s.mu.Lock()
	o, ok := s.objects[key]
	s.mu.Unlock()
	if !ok {
		return chunkstore.Info{}, fmt.Errorf("mem stat %s: %w", key, chunkstore.ErrNotFound)
	}
	return chunkstore.Info{Key: key, Size: int64(len(o.data)), ETag: o.etag, ModTime: o.mod}, nil
}

// Delete removes the object; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem delete %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.objects, key)
	s.mu.Unlock()
	return nil
}

// List calls fn in key order for a snapshot of the objects under prefix,
// taken when List starts; fn may call other methods of s.
func (s *Store) List(ctx context.Context, prefix string, fn func(chunkstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem list %s: %w", prefix, err)
	}
	s.mu.Lock()
	var infos []chunkstore.Info
	for k, o := range s.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, chunkstore.Info{Key: k, Size: int64(len(o.data)), ETag: o.etag, ModTime: o.mod})
		}
	}
	s.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, in := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mem list %s: %w", prefix, err)
		}
		if err := fn(in); err != nil {
			return err
		}
	}
	return nil
}
