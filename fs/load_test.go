package fs

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/index"
)

type fakeLoader struct{ loaded []uint64 }

func (l *fakeLoader) LoadDir(ctx context.Context, dir uint64) error {
	l.loaded = append(l.loaded, dir)
	return nil
}

func TestWithLoad(t *testing.T) {
	l := &fakeLoader{}
	f := &FS{cfg: Config{Loader: l}}
	missing := []uint64{7, 9}
	err := f.withLoad(context.Background(), func() error {
		if len(missing) > 0 {
			d := missing[0]
			missing = missing[1:]
			return &index.NotLoadedError{Dir: d}
		}
		return nil
	})
	if err != nil || len(l.loaded) != 2 || l.loaded[0] != 7 || l.loaded[1] != 9 {
		t.Fatalf("withLoad = %v, loaded %v", err, l.loaded)
	}
	// It gives up on a directory that never loads.
	err = f.withLoad(context.Background(), func() error { return &index.NotLoadedError{Dir: 3} })
	if !errors.Is(err, index.ErrNotLoaded) || len(l.loaded) != 2+maxLoads {
		t.Fatalf("endless load: %v after %d loads", err, len(l.loaded))
	}
	// Without a loader the error passes through.
	f.cfg.Loader = nil
	if err := f.withLoad(context.Background(), func() error { return &index.NotLoadedError{Dir: 3} }); !errors.Is(err, index.ErrNotLoaded) {
		t.Fatalf("no loader: %v", err)
	}
}
