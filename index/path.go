package index

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
)

// maxPathDepth bounds the directories PathOf climbs: deeper is a cycle in
// a damaged index, not a tree.
const maxPathDepth = 4096

// PathOf returns a path of inode ino from the root ("/a/b"; "/" for the
// root), through the entry Parent names at each level. An orphan or an
// inode under one has no path: "" and no error.
func (db *DB) PathOf(ctx context.Context, ino uint64) (string, error) {
	var names []string
	for ino != RootIno {
		if len(names) == maxPathDepth {
			return "", fmt.Errorf("path of %d: deeper than %d directories: %w", ino, maxPathDepth, ErrInvalid)
		}
		parent, name, err := db.Parent(ctx, ino)
		if errors.Is(err, ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		names = append(names, name)
		ino = parent
	}
	slices.Reverse(names)
	return path.Join(append([]string{"/"}, names...)...), nil
}
