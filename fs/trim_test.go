package fs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// TestTrimStaging: after an upload, a file's staging file keeps serving
// its reads; the trimmer drops it once it has been clean long enough and
// no handle uses it, having handed the chunks the file maps whole to the
// chunk cache, and the file then reads from its chunks.
func TestTrimStaging(t *testing.T) {
	ctx := context.Background()
	f, mc, ino, content := newTestFS(t)
	fd := acquireT(t, f, ino)
	// Rewrite the whole file: every byte is staged.
	for i := range content {
		content[i] = 'a' + byte(i%26)
	}
	if _, err := fd.write(content, 0, false); err != nil {
		t.Fatal(err)
	}
	fd.mu.Lock()
	err := fd.commitLocked(ctx, false)
	name := fd.stagingName
	fd.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// The upload: new chunks, and the staged bytes become clean.
	v, err := f.idx.DataVersion(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	// The second extent maps the first 150 bytes of a longer chunk: the
	// staging file does not hold that chunk.
	partial := append(bytes.Clone(content[150:]), "more"...)
	exts := []index.Extent{{Off: 0, Len: 150, Chunk: mc.add(content[:150])}, {Off: 150, Len: 150, Chunk: mc.add(partial)}}
	if err := f.idx.ReplaceContent(ctx, ino, v, exts); err != nil {
		t.Fatal(err)
	}
	f.cfg.StagingKeep = time.Hour
	if n := f.trimStaging(ctx); n != 0 {
		t.Fatalf("trimmed %d staging files clean for less than StagingKeep", n)
	}
	f.cfg.StagingKeep = time.Nanosecond
	time.Sleep(time.Millisecond)
	if n := f.trimStaging(ctx); n != 0 {
		t.Fatalf("trimmed %d staging files of an open file", n)
	}
	saved := mc.chunks
	mc.chunks = nil // reads must not need a chunk
	if got := readAll(t, fd); !bytes.Equal(got, content) {
		t.Fatalf("read of the open, uploaded file = %q: want it from the staging file", got)
	}
	mc.chunks = saved
	delete(mc.chunks, exts[0].Chunk) // the cache lacks it: the trimmer must hand it over
	f.release(ctx, fd)
	if n := f.trimStaging(ctx); n != 1 {
		t.Fatalf("trimmed %d staging files, want the closed file's", n)
	}
	if !slices.Equal(mc.kept, []chunkstore.ID{exts[0].Chunk}) || !bytes.Equal(mc.chunks[exts[0].Chunk], content[:150]) {
		t.Fatalf("chunks kept by the trimmer = %v: want only the one the file maps whole (%v)", mc.kept, exts[0].Chunk)
	}
	if _, err := os.Stat(filepath.Join(f.stagingDir, name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging file after trim: %v", err)
	}
	fd = acquireT(t, f, ino)
	defer f.release(ctx, fd)
	if got := readAll(t, fd); !bytes.Equal(got, content) || mc.reads[exts[0].Chunk] != 1 || mc.reads[exts[1].Chunk] != 1 {
		t.Fatalf("read after trim = %q (chunk reads %v): want it from the chunks", got, mc.reads)
	}
}
