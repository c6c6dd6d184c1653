package bucket_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/index/bucket"
)

func TestLoadOrInitVolume(t *testing.T) {
	ctx := context.Background()
	s := mem.New("vol")
	v, err := bucket.LoadOrInitVolume(ctx, s, chunkstore.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Format != chunkstore.FormatVersion || v.Hash != "blake3-256" || v.Compression != "zstd" ||
		v.Chunker.MinSize != chunkstore.DefaultMinSize || v.Chunker.MaxSize != chunkstore.DefaultMaxSize ||
		v.Chunker.Pol == 0 || v.Chunker.Pol == chunkstore.TestPol {
		t.Errorf("new volume %+v: want defaults with a random polynomial", v)
	}
	again, err := bucket.LoadOrInitVolume(ctx, s, chunkstore.DefaultParams(chunkstore.TestPol))
	if err != nil || again != v {
		t.Errorf("second load = %+v, %v; want the stored %+v", again, err, v)
	}
	data, _, err := s.Get(ctx, chunkstore.VolumeKey)
	if err != nil || !strings.Contains(string(data), `"polynomial"`) {
		t.Errorf("stored settings %q, %v", data, err)
	}
}

// TestVolumeRace: machines initialising one store at once all end up with
// the winner's settings.
func TestVolumeRace(t *testing.T) {
	s := mem.New("race")
	const n = 8
	vols := make([]chunkstore.Volume, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vols[i], errs[i] = bucket.LoadOrInitVolume(context.Background(), s, chunkstore.Params{})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || vols[i] != vols[0] {
			t.Errorf("machine %d: %+v, %v; want %+v", i, vols[i], errs[i], vols[0])
		}
	}
}

// racingStore lets another machine create the volume just before the
// first Put reaches the store.
type racingStore struct {
	chunkstore.Store
	winner chunkstore.Volume
	err    error
}

func (r *racingStore) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	if r.winner.Format == 0 {
		r.winner, r.err = bucket.LoadOrInitVolume(ctx, r.Store, chunkstore.DefaultParams(chunkstore.TestPol))
	}
	return r.Store.Put(ctx, key, data, cond)
}

// TestVolumeLostRace: our create fails its condition because another
// machine wrote in between; the winner's settings are read and returned.
func TestVolumeLostRace(t *testing.T) {
	f := fault.New(mem.New("lost"))
	s := &racingStore{Store: f}
	got, err := bucket.LoadOrInitVolume(context.Background(), s, chunkstore.Params{})
	if s.err != nil {
		t.Fatal(s.err)
	}
	if err != nil || got != s.winner || got.Chunker.Pol != chunkstore.TestPol {
		t.Errorf("got %+v, %v; want the winner's %+v", got, err, s.winner)
	}
	if n := f.Calls(fault.OpPut); n != 2 {
		t.Errorf("%d puts, want 2 (the winner's and our failed one)", n)
	}
}

// TestVolumeUpgrade: a format-2 volume is read by ReadVolume as it is,
// and raised to the current format by the first LoadOrInitVolume, keeping
// its chunker; a second machine's raise that lost the race reads the
// winner's settings.
func TestVolumeUpgrade(t *testing.T) {
	ctx := context.Background()
	s := mem.New("v2")
	old := `{"format": 2, "hash": "blake3-256", "compression": "zstd", "chunker": {"polynomial": "3da3358b4dc173", "min_size": 524288, "max_size": 8388608, "average_bits": 20}}`
	if _, err := s.Put(ctx, chunkstore.VolumeKey, []byte(old), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if v, err := bucket.ReadVolume(ctx, s); err != nil || v.Format != 2 {
		t.Fatalf("ReadVolume of a format-2 volume: %+v, %v", v, err)
	}
	v, err := bucket.LoadOrInitVolume(ctx, s, chunkstore.Params{})
	if err != nil || v.Format != chunkstore.FormatVersion || v.Chunker.Pol != 0x3da3358b4dc173 || v.Chunker.AverageBits != 20 {
		t.Fatalf("LoadOrInitVolume of a format-2 volume: %+v, %v", v, err)
	}
	if again, err := bucket.ReadVolume(ctx, s); err != nil || again != v {
		t.Fatalf("settings after the raise: %+v, %v; want %+v", again, err, v)
	}
}

func TestVolumeRejectsUnknown(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, json, want string }{
		{"future format", `{"format": 4, "hash": "blake3-256", "compression": "zstd", "chunker": {"polynomial": "3da3358b4dc173", "min_size": 524288, "max_size": 8388608, "average_bits": 20}}`, "format version 4"},
		{"old format", `{"format": 1, "hash": "blake3-256", "compression": "zstd", "chunker": {"polynomial": "3da3358b4dc173", "min_size": 524288, "max_size": 8388608, "average_bits": 20}}`, "earlier"},
		{"other hash", `{"format": 2, "hash": "sha256", "compression": "zstd", "chunker": {"polynomial": "3da3358b4dc173", "min_size": 524288, "max_size": 8388608, "average_bits": 20}}`, "sha256"},
		{"bad polynomial", `{"format": 2, "hash": "blake3-256", "compression": "zstd", "chunker": {"polynomial": "2", "min_size": 524288, "max_size": 8388608}}`, "polynomial"},
		{"not json", `cloudfs`, "cloudfs.json"},
		{"no format", `{}`, "format version 0"},
	} {
		s := mem.New(tc.name)
		if _, err := s.Put(ctx, chunkstore.VolumeKey, []byte(tc.json), chunkstore.Cond{}); err != nil {
			t.Fatal(err)
		}
		_, err := bucket.LoadOrInitVolume(ctx, s, chunkstore.Params{})
		if !errors.Is(err, chunkstore.ErrVolumeFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrVolumeFormat mentioning %q", tc.name, err, tc.want)
		}
	}
	// A store error is not a format error.
	f := fault.New(mem.New("down"))
	f.FailPrefix(fault.OpGet, "", errors.New("connection refused"))
	if _, err := bucket.LoadOrInitVolume(ctx, f, chunkstore.Params{}); err == nil || errors.Is(err, chunkstore.ErrVolumeFormat) {
		t.Errorf("unreachable store: %v", err)
	}
}
