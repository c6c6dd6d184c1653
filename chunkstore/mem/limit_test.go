package mem

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// TestOversized: objects larger than their kind allows are refused, as the
// other stores refuse them.
func TestOversized(t *testing.T) {
	s := New(t.Name())
	ctx := context.Background()
	big := make([]byte, chunkstore.MaxHeadSize+1)
	if _, err := s.Put(ctx, chunkstore.HeadKey, big, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, chunkstore.HeadKey); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("Get of a head of %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	if _, err := s.GetRange(ctx, chunkstore.HeadKey, 0, 1); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("GetRange of a head of %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	// The same bytes are a fine chunk-sized object.
	if _, err := s.Put(ctx, "other/x", big, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if data, _, err := s.Get(ctx, "other/x"); err != nil || len(data) != len(big) {
		t.Errorf("Get of other/x: %d bytes, %v", len(data), err)
	}
}
