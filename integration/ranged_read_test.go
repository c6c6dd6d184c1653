package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// preadsRandom opens path with POSIX_FADV_RANDOM and preads 4 KiB at each
// offset, from the last to the first (no two reads in a sequential run),
// checking the bytes against want. It returns the first error of a read.
func preadsRandom(t *testing.T, path string, offs []int64, want []byte) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		n, err := f.ReadAt(buf, off)
		if err != nil {
			return err
		}
		if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
			t.Fatalf("%s: 4 KiB at %d differ from what was written", path, off)
		}
	}
	return nil
}

// TestRandomReadsByRange: on a fresh cache dir, random 4 KiB reads of an
// incompressible file fetch only the 256 KiB groups around them, verified
// with the outboard the uploader stored beside each chunk; a compressible
// file is read whole; a corrupted object is EIO, and the mount keeps
// serving and recovers once the object is good again.
func TestRandomReadsByRange(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "vol"}
	vol.initFixedChunking(t)
	a := vol.mount(t, "", "--settle-delay", "0")
	random := patterned(11, 24<<20+333)
	text := bytes.Repeat([]byte("a compressible line of text, over and over\n"), 200_000)
	writeClose(t, a.Path("random"), random)
	writeClose(t, a.Path("text"), text)
	cloudfsSyncOK(t, m, a.Dir)
	a.Unmount()

	var offs []int64
	for off := int64(1 << 20); off+4096 < int64(len(text)); off += 700_001 {
		offs = append(offs, off)
	}

	b := vol.mount(t, "")
	if err := preadsRandom(t, b.Path("random"), offs, random); err != nil {
		t.Fatalf("random reads: %v", err)
	}
	st := cloudfsStatus(t, b.Dir)
	t.Logf("random file: %d ranged fetches, %d whole", st.Cache.Ranged, st.Cache.Misses)
	if st.Cache.Ranged < int64(len(offs)) || st.Cache.Misses != 0 {
		t.Fatalf("%d random reads of an incompressible file: %d ranged fetches, %d whole chunks; want every read ranged",
			len(offs), st.Cache.Ranged, st.Cache.Misses)
	}
	if err := preadsRandom(t, b.Path("text"), offs, text); err != nil {
		t.Fatalf("random reads of the text file: %v", err)
	}
	if st2 := cloudfsStatus(t, b.Dir); st2.Cache.Misses == 0 {
		t.Fatal("random reads of a compressible file fetched no chunk whole")
	}
	b.Unmount()

	// Corrupt every chunk that carries an outboard: one byte of its data.
	ctx := context.Background()
	store := vol.store(t)
	type saved struct {
		key  string
		data []byte
		meta chunkstore.Meta
	}
	var originals []saved
	err := store.List(ctx, chunkstore.ChunksPrefix, func(in chunkstore.Info) error {
		r, err := chunkstore.GetRangeMeta(ctx, store, in.Key, 0, in.Size)
		if err != nil || r.Meta[chunkstore.MetaOutboard] == "" {
			return err
		}
		originals = append(originals, saved{in.Key, r.Data, r.Meta})
		return nil
	})
	if err != nil || len(originals) < 10 {
		t.Fatalf("chunks with an outboard: %d, %v; want those of a 24 MiB random file", len(originals), err)
	}
	for _, o := range originals {
		bad := bytes.Clone(o.data)
		for i := 1 + 4096; i < len(bad); i += chunkstore.GroupSize {
			bad[i] ^= 0x40
		}
		if _, err := chunkstore.PutMeta(ctx, store, o.key, bad, chunkstore.Cond{}, o.meta); err != nil {
			t.Fatal(err)
		}
	}
	c := vol.mount(t, "")
	err = preadsRandom(t, c.Path("random"), offs[len(offs)-1:], random)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("random read of a corrupted chunk: %v, want EIO", err)
	}
	if err := preadsRandom(t, c.Path("text"), offs, text); err != nil {
		t.Fatalf("after EIO, reads of good chunks: %v", err)
	}
	for _, o := range originals {
		if _, err := chunkstore.PutMeta(ctx, store, o.key, o.data, chunkstore.Cond{}, o.meta); err != nil {
			t.Fatal(err)
		}
	}
	if err := preadsRandom(t, c.Path("random"), offs, random); err != nil {
		t.Fatalf("random reads once the chunks are good again: %v", err)
	}
	c.Unmount()
}
