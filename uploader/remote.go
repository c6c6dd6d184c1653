package uploader

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/tree"
)

// ReadHead returns the current commit id and head's ETag; ok is false when
// the store has no head yet (no commit). head holds the id in hex.
func ReadHead(ctx context.Context, s chunkstore.Store) (id chunkstore.ID, etag string, ok bool, err error) {
	data, etag, err := s.Get(ctx, chunkstore.HeadKey)
	if errors.Is(err, chunkstore.ErrNotFound) {
		return id, "", false, nil
	}
	if err != nil {
		return id, "", false, fmt.Errorf("read head: %w", err)
	}
	if id, err = chunkstore.ParseID(strings.TrimSpace(string(data))); err != nil {
		return id, "", false, fmt.Errorf("read head: %w: %w", err, tree.ErrCorrupt)
	}
	return id, etag, true, nil
}

// objectKey returns the store key of a tree object: trees and manifests
// under TreeKey, commits under CommitKey.
func objectKey(o tree.Object) string {
	if o.Kind == tree.KindCommit {
		return chunkstore.CommitKey(o.ID)
	}
	return chunkstore.TreeKey(o.ID)
}

// putObject stores o in the stored form (chunkstore.Encode).
func putObject(ctx context.Context, s chunkstore.Store, o tree.Object) error {
	if _, err := s.Put(ctx, objectKey(o), chunkstore.Encode(o.Data), chunkstore.Cond{}); err != nil {
		return fmt.Errorf("put %s %s: %w", o.Kind, o.ID, err)
	}
	return nil
}

// getObject reads the object stored under key and checks it hashes to id.
func getObject(ctx context.Context, s chunkstore.Store, key string, id chunkstore.ID) ([]byte, error) {
	stored, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	data, err := chunkstore.Decode(stored, id)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return data, nil
}

// ReadCommit reads and decodes commit id.
func ReadCommit(ctx context.Context, s chunkstore.Store, id chunkstore.ID) (*tree.Commit, error) {
	data, err := getObject(ctx, s, chunkstore.CommitKey(id), id)
	if err != nil {
		return nil, err
	}
	c, err := tree.DecodeCommit(data)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", id, err)
	}
	return c, nil
}

// Loader reads tree and manifest objects from a store; it is the
// index.RemoteLoader of a mount (EnsureLoaded). Safe for concurrent use.
type Loader struct {
	store chunkstore.Store
}

var _ index.RemoteLoader = (*Loader)(nil)

// NewLoader returns a Loader reading from s.
func NewLoader(s chunkstore.Store) *Loader { return &Loader{store: s} }

// Tree reads and decodes tree id.
func (l *Loader) Tree(ctx context.Context, id chunkstore.ID) (*tree.Tree, error) {
	data, err := getObject(ctx, l.store, chunkstore.TreeKey(id), id)
	if err != nil {
		return nil, err
	}
	t, err := tree.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id, err)
	}
	return t, nil
}

// Manifest reads and decodes manifest id.
func (l *Loader) Manifest(ctx context.Context, id chunkstore.ID) (*tree.Manifest, error) {
	data, err := getObject(ctx, l.store, chunkstore.TreeKey(id), id)
	if err != nil {
		return nil, err
	}
	m, err := tree.DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", id, err)
	}
	return m, nil
}
