package uploader

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// The scale is a 512 MiB file with 1 MiB changed; these tests use
// 64 MiB (with the volume's 1 MiB average chunks the cost of an edit does
// not depend on the file size).
const bigSize = 64 << 20

func TestInPlaceEditUploadsOnlyAroundTheEdit(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB file")
	}
	f := newFixture(t)
	data := randBytes(30, bigSize)
	x := f.create(index.RootIno, "big", modeReg|0o644)
	f.write(x, 0, data)
	f.round()
	_, before := chunkBytes(t, f.mem)

	edit := randBytes(31, 1<<20)
	off := int64(30<<20 + 12345)
	f.write(x, off, edit)
	copy(data[off:], edit)
	r := f.round()
	_, after := chunkBytes(t, f.mem)
	added := after - before
	t.Logf("in-place 1 MiB edit of a 64 MiB file: %d chunks uploaded, %d bytes added (%d present)",
		r.Chunks.Uploaded, added, r.Chunks.Present)
	if added > 2<<20 {
		t.Fatalf("in-place 1 MiB edit added %d bytes, want <= 2 MiB", added)
	}
	if d := f.up.cache.Usage().Deltas; d == 0 {
		t.Fatal("no chunk of the edit was stored as a delta of the chunk it replaced")
	}
	if !bytes.Equal(f.read(x), data) {
		t.Fatal("local content wrong after the upload")
	}
	wantFile(t, loadRemote(t, f.mem), "/big", data)

	// Appending re-cuts only the tail.
	tail := randBytes(32, 100<<10)
	f.write(x, int64(len(data)), tail)
	data = append(data, tail...)
	f.round()
	_, after2 := chunkBytes(t, f.mem)
	t.Logf("100 KiB append: %d bytes added", after2-after)
	if after2-after > 1<<20 {
		t.Fatalf("100 KiB append added %d bytes, want <= 1 MiB (the tail chunk as a delta)", after2-after)
	}
	if !bytes.Equal(f.read(x), data) {
		t.Fatal("local content wrong after the append")
	}
}

func TestResaveAsNewFileDeduplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB file")
	}
	f := newFixture(t)
	data := randBytes(40, bigSize)
	x := f.create(index.RootIno, "doc", modeReg|0o644)
	f.write(x, 0, data)
	f.round()
	_, before := chunkBytes(t, f.mem)

	// An editor writes a new temp file with 1 MiB changed, renames it over.
	copy(data[40<<20:], randBytes(41, 1<<20))
	tmp := f.create(index.RootIno, ".doc.swp", modeReg|0o644)
	for off := 0; off < len(data); off += 4 << 20 {
		f.write(tmp, int64(off), data[off:min(off+4<<20, len(data))])
	}
	if _, err := f.db.Rename(f.ctx, index.RootIno, ".doc.swp", index.RootIno, "doc", 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.Forget(f.ctx, x); err != nil {
		t.Fatal(err)
	}
	r := f.round()
	_, after := chunkBytes(t, f.mem)
	t.Logf("re-saved 64 MiB file with 1 MiB changed: %d chunks uploaded, %d present, %d bytes added",
		r.Chunks.Uploaded, r.Chunks.Present, after-before)
	if after-before > 8<<20 {
		t.Fatalf("re-save added %d bytes, want <= 8 MiB", after-before)
	}
	wantFile(t, loadRemote(t, f.mem), "/doc", data)
}

// TestDeltaBaseCheckedBeforeCommit: a chunk stored as a delta needs its
// base; the pre-commit check asks for the base as for every referenced
// chunk, and a missing base fails the round with head unchanged.
func TestDeltaBaseCheckedBeforeCommit(t *testing.T) {
	f := newFixture(t)
	off := int64(4 << 20)
	x, data, base := f.uploadedFile(40, 8<<20, off)
	before := f.head()
	baseKey := chunkstore.ChunkKey(base)
	f.write(x, off, randBytes(41, 100<<10))
	f.hooked.setHook(func(op, key string, after bool) error {
		if op == "stat" && key == baseKey {
			return fmt.Errorf("hook: %s gone: %w", key, chunkstore.ErrNotFound)
		}
		return nil
	})
	if _, err := f.up.Round(f.ctx, true); !errors.Is(err, errMissingChunk) {
		t.Fatalf("round with the delta's base missing: %v, want errMissingChunk", err)
	}
	if f.head() != before {
		t.Fatal("head moved although a delta's base was missing")
	}
	if f.up.cache.Usage().Deltas == 0 {
		t.Fatal("the edit was not stored as a delta")
	}
	f.hooked.setHook(nil)
	f.round()
	copy(data[off:], randBytes(41, 100<<10))
	wantFile(t, loadRemote(t, f.mem), "/f", data)
}

// TestCheckReachableFindsAMissingBase: CheckReachable reports a missing
// chunk that a delta needs.
func TestCheckReachableFindsAMissingBase(t *testing.T) {
	f := newFixture(t)
	off := int64(2 << 20)
	x, _, base := f.uploadedFile(42, 8<<20, off)
	f.write(x, off, randBytes(43, 64<<10))
	f.round() // checks reachability, deltas and bases included
	if f.up.cache.Usage().Deltas == 0 {
		t.Fatal("the edit was not stored as a delta")
	}
	if err := f.mem.Delete(f.ctx, chunkstore.ChunkKey(base)); err != nil {
		t.Fatal(err)
	}
	err := bucket.CheckReachable(f.ctx, f.mem)
	if !errors.Is(err, bucket.ErrUnreachable) || !strings.Contains(err.Error(), base.String()) {
		t.Fatalf("CheckReachable with a delta's base deleted: %v", err)
	}
}

// uploadedFile creates /f with size random bytes made from seed, uploads
// it, and returns its inode, its bytes and the chunk that holds offset off.
func (f *fixture) uploadedFile(seed uint64, size int, off int64) (uint64, []byte, chunkstore.ID) {
	f.t.Helper()
	data := randBytes(seed, size)
	x := f.create(index.RootIno, "f", modeReg|0o644)
	f.write(x, 0, data)
	f.round()
	exts, err := f.db.Extents(f.ctx, x, off, 1)
	if err != nil || len(exts) != 1 {
		f.t.Fatalf("extents at %d: %v, %v", off, exts, err)
	}
	return x, data, exts[0].Chunk
}

// TestUploadCachesOnlyChunksNotStaged: the chunks of a file written whole
// are not copied into the chunk cache by its upload (its clean staging
// file holds them until the trimmer hands them over), but the chunks cut
// around an edit of a file whose staging file was dropped are: they also
// hold bytes that only the cache has on this machine.
func TestUploadCachesOnlyChunksNotStaged(t *testing.T) {
	f := newFixture(t)
	x, data, _ := f.uploadedFile(40, 4<<20, 0)
	if u := f.cache.Usage(); u.Chunks != 0 {
		t.Fatalf("upload of a wholly staged file cached %d chunks (%d bytes), want none", u.Chunks, u.Used)
	}
	name, err := f.db.DropCleanStaging(f.ctx, x)
	if err != nil || name == "" {
		t.Fatalf("drop the clean staging file: %q, %v", name, err)
	}
	if err := os.Remove(filepath.Join(f.staging, name)); err != nil {
		t.Fatal(err)
	}
	off := int64(2<<20 + 777)
	f.write(x, off, []byte("edit"))
	copy(data[off:], "edit")
	f.round()
	exts, err := f.db.Extents(f.ctx, x, off, 4)
	if err != nil || len(exts) != 1 {
		t.Fatalf("extents at the edit: %v, %v", exts, err)
	}
	got, ok, err := f.cache.Cached(exts[0].Chunk)
	if err != nil || !ok || int64(len(got)) < exts[0].Len {
		t.Fatalf("chunk cut around the edit not cached after the upload: ok %v, %v", ok, err)
	}
	if u := f.cache.Usage(); u.DirtyChunks != 0 {
		t.Fatalf("%d chunks still dirty after the round", u.DirtyChunks)
	}
	if !bytes.Equal(f.read(x), data) {
		t.Fatal("content wrong after the edit")
	}
}
