package uploader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
	"github.com/cloudfs/cloudfs/uploader/pull"
)

const (
	modeReg  = 0o100000
	modeDir  = 0o040000
	modeLnk  = 0o120000
	modeFifo = 0o010000
)

// fixture is one machine: an index, staging dir, cache and uploader over a
// shared store (mem, behind a fault store).
type fixture struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	mem     *mem.Store
	store   *fault.Store // faults, over mem
	hooked  *hookStore   // what the cache and uploader use, over store
	db      *index.DB
	cache   *cache.Cache
	up      *Uploader
	staging string
	device  string       // "" is "test"
	pulls   bool         // the uploader has a Puller (set before open)
	puller  *pull.Puller // with pulls
}

func testVolume() chunkstore.Volume {
	return chunkstore.Volume{Format: chunkstore.FormatVersion, Hash: chunkstore.HashBLAKE3,
		Compression: chunkstore.CompressZstd, Chunker: chunkstore.DefaultParams(chunkstore.TestPol)}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), dir: t.TempDir(), mem: mem.New(t.Name())}
	f.store = fault.New(f.mem)
	f.hooked = &hookStore{Store: f.store}
	f.open()
	return f
}

// open opens (or reopens, as after a crash) the index, cache and uploader
// in f.dir.
func (f *fixture) open() {
	t := f.t
	t.Helper()
	log := zaptest.NewLogger(t)
	db, err := index.Open(f.ctx, filepath.Join(f.dir, "index.db"), index.Options{}, log.Named("index"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := cache.Open(filepath.Join(f.dir, "cache"), 1<<30, f.hooked, log.Named("cache"), cache.WithLocator(db.ChunkLoc))
	if err != nil {
		t.Fatal(err)
	}
	f.staging = filepath.Join(f.dir, "staging")
	if err := os.MkdirAll(f.staging, 0o700); err != nil {
		t.Fatal(err)
	}
	device := f.device
	if device == "" {
		device = "test"
	}
	opts := Options{StagingDir: f.staging, Device: device, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	if f.pulls {
		p, err := pull.New(db, f.hooked, bucket.NewLoader(f.hooked), pull.Options{Device: device}, log.Named("pull"))
		if err != nil {
			t.Fatal(err)
		}
		f.puller, opts.Puller = p, p
	}
	up, err := New(db, f.hooked, c, testVolume(), opts, log.Named("uploader"))
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.cache, f.up = db, c, up
}

// peer returns another machine on f's store, device device, with a fresh
// cache dir whose index mounts the store's head lazily (LoadRemote), as a
// new mount does: nothing but the root's attributes is loaded. It pulls
// when f does.
func (f *fixture) peer(device string) *fixture {
	f.t.Helper()
	p := &fixture{t: f.t, ctx: f.ctx, dir: f.t.TempDir(), mem: f.mem, store: f.store, hooked: f.hooked, device: device, pulls: f.pulls}
	p.open()
	head, _, ok, err := bucket.ReadHead(p.ctx, p.mem)
	if err != nil || !ok {
		f.t.Fatalf("peer: head: %v %v", ok, err)
	}
	c, err := bucket.ReadCommit(p.ctx, p.mem, head)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := p.db.LoadRemote(p.ctx, head, c); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// lookup returns the attributes of the slash path p (no leading slash),
// loading directories on the way as the file system does.
func (f *fixture) lookup(p string) index.Attr {
	f.t.Helper()
	a, err := f.db.GetAttr(f.ctx, index.RootIno)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, name := range strings.Split(p, "/") {
		if err := f.db.EnsureLoaded(f.ctx, a.Ino, bucket.NewLoader(f.hooked)); err != nil {
			f.t.Fatal(err)
		}
		if a, err = f.db.Lookup(f.ctx, a.Ino, name); err != nil {
			f.t.Fatalf("lookup %s: %v", p, err)
		}
	}
	return a
}

// headCommit returns the decoded head commit.
func (f *fixture) headCommit() *tree.Commit {
	f.t.Helper()
	c, err := bucket.ReadCommit(f.ctx, f.mem, f.head())
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// reopen simulates a crash and restart: the index is closed (its last
// commit is what a crash would leave) and everything is opened again.
func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

func (f *fixture) create(parent uint64, name string, mode uint32) uint64 {
	f.t.Helper()
	a, err := f.db.Create(f.ctx, parent, name, index.NewNode{Mode: mode, UID: 1000, GID: 1000, Target: "target/" + name})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Ino
}

// write writes data at off of file ino as the file system does: mark
// unpersisted, write the staging file, commit durably.
func (f *fixture) write(ino uint64, off int64, data []byte) {
	f.t.Helper()
	a, err := f.db.GetAttr(f.ctx, ino)
	if err != nil {
		f.t.Fatal(err)
	}
	name := strconv.FormatUint(ino, 10)
	f.db.MarkUnpersisted(ino)
	sf, err := os.OpenFile(filepath.Join(f.staging, name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := sf.WriteAt(data, off); err != nil {
		f.t.Fatal(err)
	}
	if err := sf.Close(); err != nil {
		f.t.Fatal(err)
	}
	now := time.Now().UnixNano()
	_, err = f.db.CommitData(f.ctx, ino, index.DataCommit{Size: max(a.Size, off+int64(len(data))), Mtime: now, Ctime: now,
		StagingName: name, AddStaged: index.Ranges{}.Add(off, int64(len(data))), Durable: true})
	if err != nil {
		f.t.Fatal(err)
	}
}

// read returns file ino's content as the index and cache give it.
func (f *fixture) read(ino uint64) []byte {
	f.t.Helper()
	return readFile(f.t, f.ctx, f.db, f.cache, f.staging, ino)
}

func readFile(t *testing.T, ctx context.Context, db *index.DB, c *cache.Cache, staging string, ino uint64) []byte {
	t.Helper()
	sf, err := db.FileSnapshot(ctx, ino)
	if err != nil {
		t.Fatal(err)
	}
	r, err := openFileReader(ctx, staging, sf, c.Get)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, sf.Size)
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return buf
}

// round runs an urgent round and fails the test on error.
func (f *fixture) round() RoundResult {
	f.t.Helper()
	r, err := f.up.Round(f.ctx, true)
	if err != nil {
		f.t.Fatalf("round: %v", err)
	}
	f.checkReachable()
	return r
}

func (f *fixture) checkReachable() {
	f.t.Helper()
	if err := bucket.CheckReachable(f.ctx, f.mem); err != nil {
		f.t.Fatalf("CheckReachable: %v", err)
	}
}

func (f *fixture) head() chunkstore.ID {
	f.t.Helper()
	id, _, _, err := bucket.ReadHead(f.ctx, f.mem)
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) queued() int {
	f.t.Helper()
	items, err := f.db.ListDirty(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return len(items)
}

// chunkBytes sums the stored size of the store's chunks.
func chunkBytes(t *testing.T, s chunkstore.Store) (n int, total int64) {
	t.Helper()
	err := s.List(context.Background(), chunkstore.ChunksPrefix, func(i chunkstore.Info) error {
		n++
		total += i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, total
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// remoteFile is one file of a namespace read back from a lazy index.
type remoteFile struct {
	mode   uint32
	target string
	data   []byte
	xattrs map[string]string
}

// loadRemote mounts head lazily on a fresh index and cache and returns
// the whole namespace by path (directories with nil data).
func loadRemote(t *testing.T, s chunkstore.Store) map[string]remoteFile {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	log := zaptest.NewLogger(t)
	db, err := index.Open(ctx, filepath.Join(tmp, "index.db"), index.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := cache.Open(filepath.Join(tmp, "cache"), 1<<30, s, log, cache.WithLocator(db.ChunkLoc))
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok, err := bucket.ReadHead(ctx, s)
	if err != nil || !ok {
		t.Fatalf("head: %v %v", ok, err)
	}
	commit, err := bucket.ReadCommit(ctx, s, head)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.LoadRemote(ctx, head, commit); err != nil {
		t.Fatal(err)
	}
	out := map[string]remoteFile{}
	var walk func(dir uint64, path string)
	walk = func(dir uint64, path string) {
		if err := db.EnsureLoaded(ctx, dir, bucket.NewLoader(s)); err != nil {
			t.Fatal(err)
		}
		ents, err := db.ReadDir(ctx, dir, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := path + "/" + e.Name
			rf := remoteFile{mode: e.Attr.Mode, target: e.Attr.Target, xattrs: map[string]string{}}
			names, err := db.ListXattr(ctx, e.Attr.Ino)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				v, err := db.GetXattr(ctx, e.Attr.Ino, n)
				if err != nil {
					t.Fatal(err)
				}
				rf.xattrs[n] = string(v)
			}
			switch {
			case e.Attr.IsDir():
				walk(e.Attr.Ino, p)
			case e.Attr.IsRegular():
				rf.data = readFile(t, ctx, db, c, tmp, e.Attr.Ino)
			}
			out[p] = rf
		}
	}
	walk(index.RootIno, "")
	return out
}

func wantFile(t *testing.T, ns map[string]remoteFile, path string, data []byte) {
	t.Helper()
	rf, ok := ns[path]
	if !ok {
		t.Fatalf("%s missing from the remote tree", path)
	}
	if !bytes.Equal(rf.data, data) {
		t.Fatalf("%s: remote content differs (%d bytes, want %d)", path, len(rf.data), len(data))
	}
}

// hookStore calls hook before every Put and Stat (and after, with after
// set), so tests can act in the middle of a round. A hook error is
// returned instead of the call's.
type hookStore struct {
	chunkstore.Store
	mu   sync.Mutex
	hook func(op, key string, after bool) error
}

func (h *hookStore) call(op, key string, after bool) error {
	h.mu.Lock()
	fn := h.hook
	h.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(op, key, after)
}

func (h *hookStore) setHook(fn func(op, key string, after bool) error) {
	h.mu.Lock()
	h.hook = fn
	h.mu.Unlock()
}

func (h *hookStore) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	if err := h.call("put", key, false); err != nil {
		return "", err
	}
	etag, err := h.Store.Put(ctx, key, data, cond)
	if herr := h.call("put", key, true); herr != nil {
		return "", herr
	}
	return etag, err
}

func (h *hookStore) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	if err := h.call("stat", key, false); err != nil {
		return chunkstore.Info{}, err
	}
	return h.Store.Stat(ctx, key)
}
