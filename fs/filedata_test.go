package fs

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
)

// memChunks is a ChunkReader over a map that counts reads.
type memChunks struct {
	mu       sync.Mutex
	chunks   map[chunkstore.ID][]byte
	reads    map[chunkstore.ID]int
	ranged   map[chunkstore.ID]int // ReadChunkRange calls
	prefetch []chunkstore.ID
	kept     []chunkstore.ID // KeepChunk calls
	// noOutboard makes ReadChunkRange read whole chunks and say so.
	noOutboard bool
}

func (m *memChunks) ReadChunk(ctx context.Context, id chunkstore.ID) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[id]++
	data, ok := m.chunks[id]
	if !ok {
		return nil, chunkstore.ErrNotFound
	}
	return data, nil
}

func (m *memChunks) ReadChunkRange(ctx context.Context, id chunkstore.ID, off, n int64) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.noOutboard {
		m.reads[id]++
	} else {
		m.ranged[id]++
	}
	data, ok := m.chunks[id]
	if !ok {
		return nil, false, chunkstore.ErrNotFound
	}
	return data[off:min(off+n, int64(len(data)))], m.noOutboard, nil
}

func (m *memChunks) Prefetch(ctx context.Context, ids []chunkstore.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prefetch = append(m.prefetch, ids...)
	return true
}

func (m *memChunks) KeepChunk(ctx context.Context, id chunkstore.ID, plain []byte) error {
	if chunkstore.Hash(plain) != id {
		return fmt.Errorf("keep chunk %s: data does not match: %w", id, chunkstore.ErrCorrupt)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.chunks[id]; !ok {
		m.chunks[id] = bytes.Clone(plain)
	}
	m.kept = append(m.kept, id)
	return nil
}

func (m *memChunks) add(data []byte) chunkstore.ID {
	id := chunkstore.Hash(data)
	m.chunks[id] = data
	return id
}

// newTestFS returns a file system over a fresh index, and a regular file
// whose content is three chunks of 100 bytes ("a"s, "b"s, "c"s), as the
// uploader would leave it.
func newTestFS(t *testing.T) (*FS, *memChunks, uint64, []byte) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := zaptest.NewLogger(t)
	idx, err := index.Open(ctx, filepath.Join(dir, "index.db"), index.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	mc := &memChunks{chunks: map[chunkstore.ID][]byte{}, reads: map[chunkstore.ID]int{}, ranged: map[chunkstore.ID]int{}}
	f, err := New(ctx, Config{Index: idx, Chunks: mc, StagingDir: filepath.Join(dir, "staging"), Log: log, Readahead: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close) // before TempDir's: no pool batch writes into it during its removal
	ino := createFile(t, idx, "f")
	var content []byte
	var exts []index.Extent
	for i, c := range []byte("abc") {
		data := bytes.Repeat([]byte{c}, 100)
		exts = append(exts, index.Extent{Off: int64(i * 100), Len: 100, Chunk: mc.add(data)})
		content = append(content, data...)
	}
	if _, err := idx.CommitData(ctx, ino, index.DataCommit{Size: 300, Insert: exts}); err != nil {
		t.Fatal(err)
	}
	return f, mc, ino, content
}

func readAll(t *testing.T, fd *fileData) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := fd.read(context.Background(), buf, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func TestEditFetchesOnlyWhatIsRead(t *testing.T) {
	ctx := context.Background()
	f, mc, ino, content := newTestFS(t)
	fd := acquireT(t, f, ino)
	// Overwrite bytes inside the middle chunk: nothing is fetched.
	if _, err := fd.write([]byte("XY"), 150, false); err != nil {
		t.Fatal(err)
	}
	if len(mc.reads) != 0 {
		t.Fatalf("a write fetched chunks: %v", mc.reads)
	}
	// Reading only the edited bytes fetches nothing either.
	buf := make([]byte, 2)
	if _, err := fd.read(ctx, buf, 150, false); err != nil || string(buf) != "XY" {
		t.Fatalf("read edit = %q, %v", buf, err)
	}
	if len(mc.reads) != 0 {
		t.Fatalf("reading staged bytes fetched chunks: %v", mc.reads)
	}
	copy(content[150:], "XY")
	if got := readAll(t, fd); !bytes.Equal(got, content) {
		t.Fatalf("read = %q\nwant %q", got, content)
	}
	// Durable commit, then a fresh file data sees the same.
	fd.mu.Lock()
	err := fd.commitLocked(ctx, true)
	fd.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	f.release(ctx, fd)
	fd = acquireT(t, f, ino)
	defer f.release(ctx, fd)
	if got := readAll(t, fd); !bytes.Equal(got, content) {
		t.Fatalf("after reopen read = %q", got)
	}
	if it, err := f.idx.Dirty(ctx, ino); err != nil || it.Reasons&index.DirtyData == 0 {
		t.Errorf("not queued dirty: %+v %v", it, err)
	}
}

func TestTruncateHolesAndSeek(t *testing.T) {
	ctx := context.Background()
	f, _, ino, content := newTestFS(t)
	fd := acquireT(t, f, ino)
	defer f.release(ctx, fd)
	if err := fd.truncate(ctx, 120); err != nil {
		t.Fatal(err)
	}
	if err := fd.truncate(ctx, 400); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, content[:120]...), make([]byte, 280)...)
	if got := readAll(t, fd); !bytes.Equal(got, want) {
		t.Fatalf("after shrink and grow: %q", got)
	}
	// Punch [10, 20) and write at 300: data is [0,10) [20,120) [300,301).
	if err := fd.allocate(ctx, 10, 10, fallocPunchHole|fallocKeepSize); err != nil {
		t.Fatal(err)
	}
	if _, err := fd.write([]byte("z"), 300, false); err != nil {
		t.Fatal(err)
	}
	h := &handle{n: &node{fsys: f}, fd: fd}
	for _, tc := range []struct {
		off    uint64
		whence uint32
		want   uint64
		errno  syscall.Errno
	}{
		{0, unix.SEEK_DATA, 0, 0},
		{0, unix.SEEK_HOLE, 10, 0},
		{10, unix.SEEK_DATA, 20, 0},
		{20, unix.SEEK_HOLE, 120, 0},
		{121, unix.SEEK_DATA, 300, 0},
		{301, unix.SEEK_HOLE, 301, 0},
		{300, unix.SEEK_HOLE, 301, 0},
		{301, unix.SEEK_DATA, 0, syscall.ENXIO},
		{400, unix.SEEK_HOLE, 0, syscall.ENXIO},
	} {
		got, errno := h.lseekIno(ctx, tc.off, tc.whence)
		if got != tc.want || errno != tc.errno {
			t.Errorf("lseek(%d, %d) = %d, %v; want %d, %v", tc.off, tc.whence, got, errno, tc.want, tc.errno)
		}
	}
}

func TestCopyRangeClonesExtents(t *testing.T) {
	ctx := context.Background()
	f, mc, ino, content := newTestFS(t)
	dstIno := createFile(t, f.idx, "g")
	src := acquireT(t, f, ino)
	defer f.release(ctx, src)
	dst := acquireT(t, f, dstIno)
	defer f.release(ctx, dst)
	if _, err := src.write([]byte("QQ"), 200, false); err != nil {
		t.Fatal(err)
	}
	n, err := copyRange(ctx, src, 50, dst, 5, 1000)
	if err != nil || n != 250 {
		t.Fatalf("copy = %d, %v; want 250", n, err)
	}
	if len(mc.reads) != 0 {
		t.Fatalf("copy read chunk bytes: %v", mc.reads)
	}
	copy(content[200:], "QQ")
	want := append(make([]byte, 5), content[50:]...)
	if got := readAll(t, dst); !bytes.Equal(got, want) {
		t.Fatalf("copy reads %q\nwant %q", got, want)
	}
	exts, err := f.idx.Extents(ctx, dstIno, 0, 1000)
	if err != nil || len(exts) != 3 || exts[0].Off != 5 || exts[0].ChunkOff != 50 {
		t.Fatalf("cloned extents %+v, %v", exts, err)
	}
	if _, err := copyRange(ctx, src, 0, src, 10, 20); err != syscall.EINVAL {
		t.Errorf("overlapping copy in one file: %v, want EINVAL", err)
	}
}

func TestReadahead(t *testing.T) {
	ctx := context.Background()
	f, mc, ino, _ := newTestFS(t)
	fd := acquireT(t, f, ino)
	defer f.release(ctx, fd)
	h := &handle{n: &node{fsys: f}, fd: fd}
	buf := make([]byte, 50)
	for off := int64(0); off < 100; off += 50 {
		if _, errno := h.Read(ctx, buf, off); errno != 0 {
			t.Fatal(errno)
		}
	}
	if len(mc.prefetch) == 0 {
		t.Fatal("sequential reads prefetched nothing")
	}
}

// TestRandomReadsByRange checks that random reads go through
// ReadChunkRange, until a chunk without an outboard turns the file's
// random reads to whole chunks.
func TestRandomReadsByRange(t *testing.T) {
	ctx := context.Background()
	f, mc, ino, content := newTestFS(t)
	fd := acquireT(t, f, ino)
	defer f.release(ctx, fd)
	buf := make([]byte, 20)
	if _, err := fd.read(ctx, buf, 190, true); err != nil || !bytes.Equal(buf, content[190:210]) {
		t.Fatalf("random read = %q, %v", buf, err)
	}
	if len(mc.ranged) != 2 || len(mc.reads) != 0 {
		t.Fatalf("a random read over two chunks: ranged %v, whole %v", mc.ranged, mc.reads)
	}
	mc.noOutboard = true
	if _, err := fd.read(ctx, buf, 10, true); err != nil || !bytes.Equal(buf, content[10:30]) {
		t.Fatalf("random read = %q, %v", buf, err)
	}
	mc.noOutboard = false
	if _, err := fd.read(ctx, buf, 250, true); err != nil || !bytes.Equal(buf, content[250:270]) {
		t.Fatalf("random read = %q, %v", buf, err)
	}
	if len(mc.ranged) != 2 || len(mc.reads) != 2 {
		t.Fatalf("after a chunk without an outboard: ranged %v, whole %v; want the file read whole", mc.ranged, mc.reads)
	}
}

// A read fills holes with zeros whatever dest held, serves a range that one
// extent maps from the chunk's own bytes (no copy), and never writes staged
// bytes into a chunk's bytes.
func TestReadHolesAndSharedChunk(t *testing.T) {
	ctx := context.Background()
	f, mc, _, _ := newTestFS(t)
	ino := createFile(t, f.idx, "holes")
	ca, cc := bytes.Repeat([]byte("a"), 100), bytes.Repeat([]byte("c"), 100)
	exts := []index.Extent{{Off: 0, Len: 100, Chunk: mc.add(ca)}, {Off: 200, Len: 100, Chunk: mc.add(cc)}}
	if _, err := f.idx.CommitData(ctx, ino, index.DataCommit{Size: 350, Insert: exts}); err != nil {
		t.Fatal(err)
	}
	fd := acquireT(t, f, ino)
	defer f.release(ctx, fd)
	want := slices.Concat(ca, make([]byte, 100), cc, make([]byte, 50))
	buf := bytes.Repeat([]byte{0xee}, 400)
	if n, err := fd.read(ctx, buf, 0, false); err != nil || n != 350 || !bytes.Equal(buf[:n], want) {
		t.Fatalf("read = %d bytes %q, %v; want %q", n, buf[:n], err, want)
	}
	data, err := fd.readData(ctx, make([]byte, 50), 210, false)
	if err != nil || !bytes.Equal(data, cc[:50]) {
		t.Fatalf("readData in one extent = %q, %v", data, err)
	}
	if &data[0] != &mc.chunks[exts[1].Chunk][10] {
		t.Error("a read within one extent copied the chunk's bytes")
	}
	if _, err := fd.write([]byte("XY"), 220, false); err != nil {
		t.Fatal(err)
	}
	data, err = fd.readData(ctx, bytes.Repeat([]byte{0xee}, 50), 210, false)
	if want := slices.Concat(cc[:10], []byte("XY"), cc[:38]); err != nil || !bytes.Equal(data, want) {
		t.Fatalf("readData over a staged edit = %q, %v; want %q", data, err, want)
	}
	if !bytes.Equal(mc.chunks[exts[1].Chunk], cc) {
		t.Error("a staged edit was written into the chunk's bytes")
	}
}

// acquireT is f.acquire(ino) that fails the test on an error.
func acquireT(t *testing.T, f *FS, ino uint64) *fileData {
	t.Helper()
	fd, err := f.acquire(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// createFile creates an empty regular file name in the root of idx and
// returns its inode.
func createFile(t *testing.T, idx *index.DB, name string) uint64 {
	t.Helper()
	a, err := idx.Create(context.Background(), index.RootIno, name, index.NewNode{Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	return a.Ino
}

// read is readData into dest (copied there when readData returned the
// chunk's own bytes), returning how many bytes it read.
func (fd *fileData) read(ctx context.Context, dest []byte, off int64, random bool) (int, error) {
	data, err := fd.readData(ctx, dest, off, random)
	if err != nil {
		return 0, err
	}
	if len(data) > 0 && &data[0] != &dest[0] {
		copy(dest, data)
	}
	return len(data), nil
}
