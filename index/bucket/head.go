package bucket

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// maxHeadSize bounds the head object's content: a hex commit id and a
// newline. (The store bounds what it reads of head by
// chunkstore.MaxHeadSize, far above.)
const maxHeadSize = 2*chunkstore.IDSize + 2

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
	if len(data) > maxHeadSize {
		return id, "", false, fmt.Errorf("read head: %d bytes: %w", len(data), tree.ErrCorrupt)
	}
	if id, err = chunkstore.ParseID(strings.TrimSpace(string(data))); err != nil {
		return id, "", false, fmt.Errorf("read head: %w: %w", err, tree.ErrCorrupt)
	}
	return id, etag, true, nil
}

// HeadETag returns head's ETag without its content (one HEAD request: the
// cost of a poll that finds nothing new); ok is false when there is no
// head.
func HeadETag(ctx context.Context, s chunkstore.Store) (etag string, ok bool, err error) {
	info, err := s.Stat(ctx, chunkstore.HeadKey)
	if errors.Is(err, chunkstore.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("stat head: %w", err)
	}
	return info.ETag, true, nil
}

// ErrHeadMoved is returned (wrapped) by SwapHead when head is no longer
// what the caller read: another device committed first.
var ErrHeadMoved = errors.New("remote head moved")

// SwapHead makes commit id head, provided head still has ETag etag (or,
// with etag "", that there is no head yet). A lost race is ErrHeadMoved.
// It returns head's new ETag.
func SwapHead(ctx context.Context, s chunkstore.Store, id chunkstore.ID, etag string) (string, error) {
	cond := chunkstore.Cond{IfMatch: etag}
	if etag == "" {
		cond = chunkstore.Cond{IfNoneMatch: true}
	}
	newTag, err := s.Put(ctx, chunkstore.HeadKey, []byte(id.String()), cond)
	if errors.Is(err, chunkstore.ErrPrecondition) {
		return "", fmt.Errorf("%w: swap of head to %s refused: %v", ErrHeadMoved, id, err)
	}
	if err != nil {
		return "", fmt.Errorf("swap head to %s: %w", id, err)
	}
	return newTag, nil
}
