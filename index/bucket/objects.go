package bucket

import (
	"container/list"
	"context"
	"fmt"
	"sync"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// ObjectKey returns the store key of a tree object: trees and manifests
// under TreeKey, commits under CommitKey.
func ObjectKey(o tree.Object) string {
	if o.Kind == tree.KindCommit {
		return chunkstore.CommitKey(o.ID)
	}
	return chunkstore.TreeKey(o.ID)
}

// PutObject stores o in the stored form (chunkstore.Encode).
func PutObject(ctx context.Context, s chunkstore.Store, o tree.Object) error {
	if _, err := s.Put(ctx, ObjectKey(o), chunkstore.Encode(o.Data), chunkstore.Cond{}); err != nil {
		return fmt.Errorf("put %s %s: %w", o.Kind, o.ID, err)
	}
	return nil
}

// getObject reads the object stored under key, whose plaintext may hold at
// most limit bytes (chunkstore.MaxCommitSize, MaxTreeSize), and checks it
// hashes to id. The store bounds the stored form by the key's kind, and the
// decoder inflates no more than limit.
func getObject(ctx context.Context, s chunkstore.Store, key string, id chunkstore.ID, limit int) ([]byte, error) {
	stored, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	data, err := chunkstore.DecodeLimit(stored, id, limit)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return data, nil
}

// ReadCommit reads and decodes commit id.
func ReadCommit(ctx context.Context, s chunkstore.Store, id chunkstore.ID) (*tree.Commit, error) {
	data, err := getObject(ctx, s, chunkstore.CommitKey(id), id, chunkstore.MaxCommitSize)
	if err != nil {
		return nil, err
	}
	c, err := tree.DecodeCommit(data)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	return c, nil
}

// PutCommit encodes c, stores it and returns its id.
func PutCommit(ctx context.Context, s chunkstore.Store, c *tree.Commit) (chunkstore.ID, error) {
	data, id, err := tree.EncodeCommit(c)
	if err != nil {
		return id, err
	}
	return id, PutObject(ctx, s, tree.Object{Kind: tree.KindCommit, ID: id, Data: data})
}

// DefaultCacheBytes is the default bound of a Loader's cache.
const DefaultCacheBytes = 16 << 20

// Loader reads tree and manifest objects from a store and keeps the most
// recently used ones (verified, decoded from the stored form, up to a
// bound in bytes): a pull reads the trees a lazy mount just loaded, and
// content-addressed objects never change. Safe for concurrent use; the
// returned objects are fresh copies the caller may keep.
type Loader struct {
	store chunkstore.Store
	max   int

	mu    sync.Mutex // guards the cache
	bytes int
	lru   *list.List // of *cached, most recent first
	byID  map[chunkstore.ID]*list.Element
	gets  int // store reads (for tests and stats)
}

type cached struct {
	id   chunkstore.ID
	data []byte
}

// NewLoader returns a Loader reading from s with a cache of
// DefaultCacheBytes.
func NewLoader(s chunkstore.Store) *Loader { return NewLoaderSize(s, DefaultCacheBytes) }

// NewLoaderSize returns a Loader reading from s whose cache holds up to max
// bytes of objects (0: no cache).
func NewLoaderSize(s chunkstore.Store, max int) *Loader {
	return &Loader{store: s, max: max, lru: list.New(), byID: map[chunkstore.ID]*list.Element{}}
}

// Store returns the store the loader reads.
func (l *Loader) Store() chunkstore.Store { return l.store }

// get returns the plaintext of tree object id, from the cache or the store.
func (l *Loader) get(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	l.mu.Lock()
	if el, ok := l.byID[id]; ok {
		l.lru.MoveToFront(el)
		data := el.Value.(*cached).data
		l.mu.Unlock()
		return data, nil
	}
	l.gets++
	l.mu.Unlock()
	data, err := getObject(ctx, l.store, chunkstore.TreeKey(id), id, chunkstore.MaxTreeSize)
	if err != nil {
		return nil, err
	}
	if len(data) <= l.max/4 {
		l.mu.Lock()
		if _, ok := l.byID[id]; !ok {
			l.byID[id] = l.lru.PushFront(&cached{id: id, data: data})
			l.bytes += len(data)
			for l.bytes > l.max {
				el := l.lru.Back()
				c := el.Value.(*cached)
				l.lru.Remove(el)
				delete(l.byID, c.id)
				l.bytes -= len(c.data)
			}
		}
		l.mu.Unlock()
	}
	return data, nil
}

// Tree reads and decodes tree id.
func (l *Loader) Tree(ctx context.Context, id chunkstore.ID) (*tree.Tree, error) {
	t, _, err := l.object(ctx, id, tree.KindTree)
	return t, err
}

// Manifest reads and decodes manifest id.
func (l *Loader) Manifest(ctx context.Context, id chunkstore.ID) (*tree.Manifest, error) {
	_, m, err := l.object(ctx, id, tree.KindManifest)
	return m, err
}

// Gets returns how many objects the loader has read from its store (cache
// misses).
func (l *Loader) Gets() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gets
}

// Object reads object id of the trees area, which holds trees and
// manifests alike, and returns it decoded: exactly one of the results is
// set.
func (l *Loader) Object(ctx context.Context, id chunkstore.ID) (*tree.Tree, *tree.Manifest, error) {
	return l.object(ctx, id, 0)
}

// object reads and decodes object id, which must be of kind want (0: a
// tree or a manifest).
func (l *Loader) object(ctx context.Context, id chunkstore.ID, want tree.Kind) (*tree.Tree, *tree.Manifest, error) {
	data, err := l.get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	kind, err := tree.KindOf(data)
	if err == nil && want != 0 && kind != want {
		err = fmt.Errorf("a %s where a %s was expected: %w", kind, want, tree.ErrCorrupt)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("object %s: %w", id, err)
	}
	switch kind {
	case tree.KindTree:
		t, err := tree.Decode(data)
		if err != nil {
			return nil, nil, fmt.Errorf("tree %s: %w", id, err)
		}
		return t, nil, nil
	case tree.KindManifest:
		m, err := tree.DecodeManifest(data)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest %s: %w", id, err)
		}
		return nil, m, nil
	}
	return nil, nil, fmt.Errorf("object %s: a %s in the trees area: %w", id, kind, tree.ErrCorrupt)
}
