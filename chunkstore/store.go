package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned (wrapped) by Store methods when the object does not
// exist. Check it with errors.Is.
var ErrNotFound = errors.New("object not found")

// ErrPrecondition is returned (wrapped) by Store.Put when its Cond does not
// hold: the object exists although IfNoneMatch was set, or its ETag differs
// from IfMatch (or it is missing). The caller re-reads and tries again; a
// retry decorator never retries it.
var ErrPrecondition = errors.New("precondition failed")

// ErrUnreachable is returned (wrapped) by a store call that got no answer
// from the store (connection refused or timed out, no route, DNS), as
// opposed to an answer that was an error. Retrying may help; see package
// health for what the daemon makes of a store that stays unreachable.
var ErrUnreachable = errors.New("store unreachable")

// Cond restricts a Put. The zero Cond is an unconditional write.
type Cond struct {
	// IfNoneMatch: write only if no object exists under the key
	// (S3 If-None-Match: *).
	IfNoneMatch bool
	// IfMatch: write only if the object exists and its current ETag equals
	// this value (S3 If-Match). Empty means no such condition.
	IfMatch string
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ETag    string
	ModTime time.Time
}

// Store is a flat namespace of objects: a bucket under a prefix, or a
// directory. Implementations are safe for concurrent use by several
// goroutines, and (for the local directory store) by several processes.
//
// Keys are relative slash-separated paths without "." or ".." elements.
// All errors are wrapped with the operation and key; missing objects match
// ErrNotFound and failed conditions ErrPrecondition under errors.Is.
type Store interface {
	// Get returns the whole object and its ETag. A missing object is
	// ErrNotFound.
	Get(ctx context.Context, key string) (data []byte, etag string, err error)

	// Put writes data under key, atomically: a reader sees the old object or
	// the new one, never a mix. With the zero Cond it is idempotent and
	// replaces any existing object. With a Cond it fails with ErrPrecondition
	// when the condition does not hold, and the check and the write are one
	// atomic step (two concurrent IfNoneMatch puts: exactly one succeeds).
	// It returns the new object's ETag. When Put returns nil the object is
	// durable in the store.
	Put(ctx context.Context, key string, data []byte, cond Cond) (etag string, err error)

	// Stat returns the object's Info without its bytes. A missing object is
	// ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)

	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error

	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. An error from fn stops the listing and is returned.
	// Objects written or deleted during the listing may or may not appear.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// String names the store for messages and logs ("s3://bucket/prefix",
	// "/path/to/dir").
	String() string
}

// RangeGetter is an optional interface of a Store that can read part of an
// object. GetRange returns length bytes starting at off (fewer at the end of
// the object). Use the GetRange helper, which falls back to Get.
type RangeGetter interface {
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
}

// GetRange reads length bytes at off of the object under key, using the
// store's RangeGetter when it has one and a whole Get otherwise.
func GetRange(ctx context.Context, s Store, key string, off, length int64) ([]byte, error) {
	if rg, ok := s.(RangeGetter); ok {
		return rg.GetRange(ctx, key, off, length)
	}
	data, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if off >= int64(len(data)) {
		return nil, nil
	}
	end := off + length
	if end > int64(len(data)) {
		end = int64(len(data))
	}
	return data[off:end], nil
}

// Meta is user metadata kept with an object (S3 x-amz-meta-*): lower-case
// names of letters, digits and '-', printable ASCII values, 2 KiB in all.
type Meta map[string]string

// RangeMeta is the result of MetaStore.GetRangeMeta.
type RangeMeta struct {
	Data []byte // the bytes read: fewer than asked at the end of the object
	Meta Meta   // the object's metadata
	Size int64  // the whole object's size
}

// MetaStore is an optional interface of a Store that keeps metadata with
// its objects. Use the PutMeta and GetRangeMeta helpers and KeepsMeta.
type MetaStore interface {
	// PutMeta is Put that stores meta with the object.
	PutMeta(ctx context.Context, key string, data []byte, cond Cond, meta Meta) (etag string, err error)
	// GetRangeMeta is GetRange that also returns the object's metadata
	// and size. A range from or past the object's end returns no bytes,
	// and no metadata or size (S3 answers 416).
	GetRangeMeta(ctx context.Context, key string, off, length int64) (RangeMeta, error)
}

// metaKeeper is implemented by decorators, which are MetaStores whatever
// they wrap: KeepsMeta reports what the wrapped store does.
type metaKeeper interface{ KeepsMeta() bool }

// ErrNoMeta is returned (wrapped) by GetRangeMeta for a store that keeps no
// metadata.
var ErrNoMeta = errors.New("store keeps no object metadata")

// KeepsMeta reports whether s stores and returns object metadata.
func KeepsMeta(s Store) bool {
	if k, ok := s.(metaKeeper); ok {
		return k.KeepsMeta()
	}
	_, ok := s.(MetaStore)
	return ok
}

// PutMeta puts data with meta when s keeps metadata, and without it (a
// plain Put) otherwise.
func PutMeta(ctx context.Context, s Store, key string, data []byte, cond Cond, meta Meta) (string, error) {
	if ms, ok := s.(MetaStore); ok && meta != nil && KeepsMeta(s) {
		return ms.PutMeta(ctx, key, data, cond, meta)
	}
	return s.Put(ctx, key, data, cond)
}

// GetRangeMeta reads length bytes at off of the object under key with its
// metadata; a store that keeps none returns ErrNoMeta.
func GetRangeMeta(ctx context.Context, s Store, key string, off, length int64) (RangeMeta, error) {
	if ms, ok := s.(MetaStore); ok && KeepsMeta(s) {
		return ms.GetRangeMeta(ctx, key, off, length)
	}
	return RangeMeta{}, &Permanent{fmt.Errorf("get range %s of %s: %w", key, s, ErrNoMeta)}
}

// Permanent marks err as one that retrying cannot heal (403, 400, a missing
// bucket). The retry decorator returns such errors at once.
type Permanent struct{ Err error }

func (p *Permanent) Error() string { return p.Err.Error() }
func (p *Permanent) Unwrap() error { return p.Err }

// IsPermanent reports whether err (or an error it wraps) is marked Permanent,
// or is ErrNotFound or ErrPrecondition, which retrying does not change.
func IsPermanent(err error) bool {
	var p *Permanent
	return errors.As(err, &p) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrPrecondition)
}
