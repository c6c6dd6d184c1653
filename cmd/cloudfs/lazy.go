package main

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// loadRemoteHead makes an index that has never synced (no base commit) a
// lazy copy of the remote's head, when there is one: the root becomes a
// not-loaded directory and every directory is fetched on first use
// (dirLoader). An index with a base commit is left as it is.
func loadRemoteHead(ctx context.Context, idx *index.DB, s chunkstore.Store, log *zap.Logger) error {
	_, err := idx.Meta(ctx, index.MetaBaseCommit)
	if err == nil {
		return nil
	}
	if !errors.Is(err, index.ErrNotFound) {
		return err
	}
	head, _, ok, err := bucket.ReadHead(ctx, s)
	if err != nil {
		return fmt.Errorf("store %s: %w", s, err)
	}
	if !ok {
		return nil
	}
	c, err := bucket.ReadCommit(ctx, s, head)
	if err != nil {
		return fmt.Errorf("store %s: head: %w", s, err)
	}
	err = idx.LoadRemote(ctx, head, c)
	if errors.Is(err, index.ErrNotEmpty) {
		// Written here before this machine ever synced, while another
		// device committed: the uploader keeps it queued (ErrHeadMoved).
		log.Warn("this cache dir has local changes but no base commit, and the remote has commits: "+
			"the local changes stay queued until they can be merged", zap.Stringer("head", head))
		return nil
	}
	if err != nil {
		return fmt.Errorf("load the remote tree: %w", err)
	}
	log.Info("mounted the remote tree lazily", zap.Stringer("commit", head), zap.String("device", c.Device))
	return nil
}

// dirLoader adapts index.EnsureLoaded to fs.DirLoader.
type dirLoader struct {
	idx  *index.DB
	load index.RemoteLoader
}

func (l dirLoader) LoadDir(ctx context.Context, dir uint64) error {
	return l.idx.EnsureLoaded(ctx, dir, l.load)
}
