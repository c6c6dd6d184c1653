package bucket

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
)

// TestReadCommitBounded: a commit object that inflates past MaxCommitSize
// is corrupt, found without inflating it.
func TestReadCommitBounded(t *testing.T) {
	s := mem.New(t.Name())
	ctx := context.Background()
	plain := make([]byte, 48<<20) // zeros: a few KiB of zstd
	id := chunkstore.Hash(plain)
	stored := chunkstore.Encode(plain)
	if int64(len(stored)) > chunkstore.MaxObjectSize(chunkstore.CommitKey(id)) {
		t.Fatalf("%d bytes stored: the store would refuse it", len(stored))
	}
	if _, err := s.Put(ctx, chunkstore.CommitKey(id), stored, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadCommit(ctx, s, id)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, chunkstore.ErrCorrupt) {
		t.Errorf("ReadCommit of a 48 MiB commit: %v, want ErrCorrupt", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("ReadCommit of a 48 MiB commit allocated %d bytes", got)
	}
}

// TestReadOversized: each reader refuses an object grown past its kind's
// bound, with the store's ErrTooLarge.
func TestReadOversized(t *testing.T) {
	s := mem.New(t.Name())
	ctx := context.Background()
	put := func(key string, n int64) {
		t.Helper()
		if _, err := s.Put(ctx, key, make([]byte, n), chunkstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	}
	id := chunkstore.Hash([]byte("x"))
	put(chunkstore.HeadKey, chunkstore.MaxHeadSize+1)
	if _, _, _, err := ReadHead(ctx, s); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("ReadHead: %v, want ErrTooLarge", err)
	}
	put(chunkstore.VolumeKey, chunkstore.MaxVolumeSize+1)
	if _, err := ReadVolume(ctx, s); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("ReadVolume: %v, want ErrTooLarge", err)
	}
	put(chunkstore.DeviceKey("d"), chunkstore.MaxDeviceSize+1)
	if _, _, err := ReadDevice(ctx, s, "d"); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("ReadDevice: %v, want ErrTooLarge", err)
	}
	put(chunkstore.CommitKey(id), chunkstore.MaxCommitSize+2)
	if _, err := ReadCommit(ctx, s, id); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("ReadCommit: %v, want ErrTooLarge", err)
	}
	put(chunkstore.TreeKey(id), chunkstore.MaxTreeSize+2)
	if _, err := NewLoader(s).Tree(ctx, id); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("Loader.Tree: %v, want ErrTooLarge", err)
	}
}
