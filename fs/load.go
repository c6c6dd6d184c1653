package fs

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudfs/cloudfs/index"
)

// DirLoader loads a directory's entries from the remote tree into the
// index (the lazy mount of a remote tree). The file system calls it when
// the index reports a directory not loaded, from the goroutine serving the
// request, and retries the request once it returns nil. It must be safe
// for concurrent calls, also for one directory.
type DirLoader interface {
	LoadDir(ctx context.Context, dir uint64) error
}

// maxLoads bounds the directories one request may load (a rename needs at
// most its two parents and a replaced directory).
const maxLoads = 4

// withLoad runs op; while it fails because a directory is not loaded, it
// loads that directory through Config.Loader and runs op again.
func (f *FS) withLoad(ctx context.Context, op func() error) error {
	for i := 0; ; i++ {
		err := op()
		var nl *index.NotLoadedError
		if err == nil || f.cfg.Loader == nil || i == maxLoads || !errors.As(err, &nl) {
			return err
		}
		// bg: a FUSE interrupt must not abort a load half-way (the
		// loader's store calls are bounded by their own retry limits).
		if lerr := f.cfg.Loader.LoadDir(bg(ctx), nl.Dir); lerr != nil {
			return fmt.Errorf("load directory %d: %w", nl.Dir, lerr)
		}
	}
}
