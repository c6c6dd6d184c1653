package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// ChunkReader is what the file system needs of the chunk cache.
type ChunkReader interface {
	// ReadChunk returns the plaintext of chunk id, verified against id.
	// The caller must not modify the returned bytes.
	ReadChunk(ctx context.Context, id chunkstore.ID) ([]byte, error)
	// ReadChunkRange returns the n bytes at off of chunk id's plaintext
	// (fewer at its end), verified against id, fetching only what
	// covers them when the chunk has an outboard; noOutboard reports a
	// chunk that had to be fetched whole. The caller must not modify
	// the returned bytes.
	ReadChunkRange(ctx context.Context, id chunkstore.ID, off, n int64) (data []byte, noOutboard bool, err error)
	// Prefetch starts fetching ids into the cache in the background
	// (readahead) and returns at once. Failures are only logged. It
	// reports false when it dropped the request (too many in progress).
	Prefetch(ctx context.Context, ids []chunkstore.ID) bool
	// KeepChunk caches plain as chunk id, which the store holds, unless
	// it is cached already; plain not hashing to id is an error matching
	// chunkstore.ErrCorrupt. The trimmer hands over a file's chunks before
	// dropping its staging file. The caller may reuse plain once it
	// returns.
	KeepChunk(ctx context.Context, id chunkstore.ID, plain []byte) error
}

// Config configures New.
type Config struct {
	Index      *index.DB
	Chunks     ChunkReader
	StagingDir string // one sparse file per file with staged bytes
	// RecoveryDir receives the staging files that the index does not
	// account for (recover.go); default: "recovered" beside StagingDir.
	RecoveryDir string
	Log         *zap.Logger
	// EntryTimeout and AttrTimeout bound how long the kernel caches names
	// and attributes; 0 means one second.
	EntryTimeout, AttrTimeout time.Duration
	// Readahead is how far ahead of a sequential reader chunks are
	// prefetched; 0 means 8 MiB.
	Readahead int64
	// Loader loads directories of a lazily mounted remote tree; nil when
	// every directory is in the index.
	Loader DirLoader
	// Committer, when set, makes close(2) and fsync(2) of a file opened
	// for writing return only once the file is committed remotely
	// (--writeback=false); nil means they return after the local commit.
	Committer Committer
	// SyncOnClose makes close(2) durable against power loss (the staging
	// file fdatasynced and the index commit fsynced, two disk flushes per
	// close). Without it close(2) survives kill -9 of the daemon but a
	// power loss only after the next fsync/syncfs, as on ext4: see the
	// package doc. Mount option -o sync_close.
	SyncOnClose bool
	// MaxKernelInodes bounds the inodes the kernel holds (and so the
	// nodes this process keeps for them): beyond it the oldest unused
	// ones are forgotten (see shedder). 0 means 50,000; negative means
	// no bound (the kernel forgets only under memory pressure).
	MaxKernelInodes int
	// Reserve is the free space on the cache disk that staged writes leave
	// for the index and the chunk cache; 0 means 5% of the disk, at least
	// 1 MiB and at most 64 MiB.
	Reserve int64
	// StagingKeep is how long the staging file of an uploaded file is
	// kept for local reads once the file is closed (see trim.go); 0
	// means 10 minutes.
	StagingKeep time.Duration
	// Ballast, when set, is space the index can release when the cache
	// disk is full (see Ballast); the file system allocates it again
	// once the disk has room.
	Ballast *Ballast
	// UID and GID, when set, are the owner every inode is presented with
	// (mount options uid= and gid=, as sshfs and s3fs have them), for the
	// same person having other numbers on another machine; the owners
	// stored (and committed) are left as they are, and a file created here
	// is stored with its creator's. nil: the stored owner.
	UID, GID *uint32
	// NoPassthrough keeps every read and write going through this
	// process, even where the kernel could serve them from the staging
	// file (see passthrough.go). Mount option -o nopassthrough.
	NoPassthrough bool
}

// FS is the cloudfs file system. Create it with New and serve it with Mount.
type FS struct {
	idx        *index.DB
	chunks     ChunkReader
	stagingDir string
	log        *zap.Logger
	cfg        Config
	space      *spaceGuard
	pool       *stagingPool
	shed       *shedder

	mu      sync.Mutex // guards files, openers, retry and the file datas' refs
	files   map[uint64]*fileData
	retry   releaseRetrier
	openers map[uint32]int // open handles by the process that opened them

	// nodes maps the inode numbers the kernel holds to their go-fuse
	// Inodes, for the notifications of changes made behind the kernel's
	// back (notify.go). Set when a node is handed out, removed at forget.
	nodes sync.Map

	ptOn      atomic.Bool // passthrough sessions may start (probed at mount)
	ptRelease sync.Map    // Release request (its cancel channel) -> *fileData; see rawFS
	killReq   sync.Map    // requests (their cancel channels) that must clear setuid/setgid; see killpriv.go

	faults faultHooks // tests only

	statsMu  sync.Mutex // guards the statfs counts
	statsVal index.Stats
	statsAt  time.Time
}

// New checks cfg, moves staging files the index does not account for to
// the recovery folder (recover.go), and returns the file system.
func New(ctx context.Context, cfg Config) (*FS, error) {
	if cfg.Index == nil || cfg.Chunks == nil || cfg.StagingDir == "" || cfg.Log == nil {
		return nil, errors.New("fs.New: Index, Chunks, StagingDir and Log are required")
	}
	if cfg.EntryTimeout == 0 {
		cfg.EntryTimeout = time.Second
	}
	if cfg.AttrTimeout == 0 {
		cfg.AttrTimeout = time.Second
	}
	if cfg.MaxKernelInodes == 0 {
		cfg.MaxKernelInodes = defaultMaxKernelInodes
	}
	if cfg.Readahead == 0 {
		cfg.Readahead = 8 << 20
	}
	if cfg.RecoveryDir == "" {
		cfg.RecoveryDir = filepath.Join(filepath.Dir(cfg.StagingDir), "recovered")
	}
	if cfg.StagingKeep == 0 {
		cfg.StagingKeep = 10 * time.Minute
	}
	if err := os.MkdirAll(cfg.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("staging dir: %w", err)
	}
	f := &FS{idx: cfg.Index, chunks: cfg.Chunks, stagingDir: cfg.StagingDir, log: cfg.Log, cfg: cfg,
		files: map[uint64]*fileData{}, openers: map[uint32]int{}, space: &spaceGuard{dir: cfg.StagingDir, reserve: cfg.Reserve},
		pool: newStagingPool(cfg.StagingDir), shed: newShedder(cfg.MaxKernelInodes, cfg.Log.Named("shed"))}
	if err := f.sweepStaging(ctx); err != nil {
		return nil, err
	}
	return f, nil
}

// Close makes a last attempt at the releases whose commit failed (see
// release_retry.go) and waits for the file system's background work on
// the staging directory (the pool's batches) to finish. The trimmer and
// the shedder run for the life of the process.
func (f *FS) Close() {
	f.flushParked()
	f.pool.wait()
}

// MountOptions are the mount's user-visible options.
type MountOptions struct {
	AllowOther bool
	ReadOnly   bool
	Debug      bool   // log every FUSE request
	FsName     string // first column of /proc/mounts
	// Extra are further options for the kernel (-o), passed through.
	Extra []string
}

// Mount is a served mount.
type Mount struct {
	srv *fuse.Server
	dir string
}

// Mount mounts the file system on dir and starts serving it; it returns
// once the kernel has the mount.
func (f *FS) Mount(dir string, mo MountOptions) (*Mount, error) {
	root := &node{fsys: f}
	opts := &gofs.Options{
		EntryTimeout:    &f.cfg.EntryTimeout,
		AttrTimeout:     &f.cfg.AttrTimeout,
		NegativeTimeout: &f.cfg.EntryTimeout,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: index.RootIno, Gen: 1},
		MountOptions: fuse.MountOptions{
			AllowOther:   mo.AllowOther,
			FsName:       mo.FsName,
			Name:         "cloudfs",
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			// See killpriv.go; with ATOMIC_O_TRUNC an open with
			// O_TRUNC truncates in Open (one request, and a file it
			// empties may start a passthrough session).
			ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2 | fuse.CAP_ATOMIC_O_TRUNC,
			// The kernel keeps a file's pages across opens and
			// attribute changes: every change on this machine goes
			// through it (open decides with FOPEN_KEEP_CACHE, see
			// node.cacheMtime). Without this the kernel would drop
			// them whenever it sees a new mtime, and the mtime of a
			// write is stamped here, not by the kernel.
			ExplicitDataCacheControl: true,
			// nosuid,nodev whatever the library's defaults: the
			// bucket's trees may carry any mode, owner and device
			// number; -o suid or -o dev (later, so they win) is the
			// administrator's choice.
			Options: append([]string{"default_permissions", "nosuid", "nodev"}, mo.Extra...),
			Debug:   mo.Debug,
			Logger:  zap.NewStdLog(f.log.Named("fuse")),
		},
	}
	if mo.ReadOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	srv, err := fuse.NewServer(&rawFS{RawFileSystem: gofs.NewNodeFS(root, opts), f: f}, dir, &opts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	f.probePassthrough(srv)
	f.setKernelReadahead(dir)
	f.nodes.Store(index.RootIno, root.EmbeddedInode())
	f.shed.start(root.EmbeddedInode())
	f.startTrimmer()
	return &Mount{srv: srv, dir: dir}, nil
}

// kernelReadahead is the kernel's readahead for the mount (its bdi's
// read_ahead_kb): the default 128 KiB makes the kernel read a sequential
// file in 128 KiB requests, each a round trip through the daemon.
const kernelReadahead = 4 << 20

// setKernelReadahead raises the mount's read_ahead_kb (root only; a
// failure only costs speed).
func (f *FS) setKernelReadahead(dir string) {
	// The device number from the mount table: a stat of dir would be a
	// request to this very mount (see mountOn).
	m, mounted, err := mountOn(dir)
	if err != nil || !mounted {
		f.log.Debug("kernel readahead", zap.Bool("mounted", mounted), zap.Error(err))
		return
	}
	path := fmt.Sprintf("/sys/class/bdi/%s/read_ahead_kb", m.dev)
	if err := os.WriteFile(path, []byte(fmt.Sprint(kernelReadahead>>10)), 0o644); err != nil {
		f.log.Debug("kernel readahead", zap.String("path", path), zap.Error(err))
	}
}

// Wait blocks until the mount is unmounted (fusermount -u, Unmount).
func (m *Mount) Wait() { m.srv.Wait() }

// Unmount asks the kernel to unmount; it fails while the mount is busy
// unless lazy is set, which detaches the mount at once and lets the kernel
// finish when its last open file closes. Wait returns after either. As
// root it calls umount2 itself rather than forking fusermount3 from the
// serving process.
func (m *Mount) Unmount(lazy bool) error {
	var err error
	if os.Geteuid() == 0 {
		flags := 0
		if lazy {
			flags = unix.MNT_DETACH
		}
		err = unix.Unmount(m.dir, flags)
	} else {
		args := []string{"-u", "-q"}
		if lazy {
			args = append(args, "-z")
		}
		var out []byte
		if out, err = exec.Command("fusermount3", append(args, m.dir)...).CombinedOutput(); err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", m.dir, err)
	}
	return nil
}

// bg detaches ctx from FUSE interrupts for index work: every signal the
// caller gets (Go programs get SIGURG constantly) interrupts the request,
// and a metadata transaction must not fail half-way for that.
func bg(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func nowNS() int64 { return time.Now().UnixNano() }

// fillAttr converts index attributes to FUSE attributes, with the owner
// the mount presents.
func (f *FS) fillAttr(a index.Attr, out *fuse.Attr) {
	fillAttr(a, out)
	if f.cfg.UID != nil {
		out.Owner.Uid = *f.cfg.UID
	}
	if f.cfg.GID != nil {
		out.Owner.Gid = *f.cfg.GID
	}
}

// fillAttr converts index attributes to FUSE attributes.
func fillAttr(a index.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Size = uint64(a.Size)
	if a.IsDir() {
		out.Size = 4096 // as ext4 shows a small directory
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Owner = fuse.Owner{Uid: a.UID, Gid: a.GID}
	out.Rdev = a.Rdev
	at, mt, ct := index.Time(a.Atime), index.Time(a.Mtime), index.Time(a.Ctime)
	out.SetTimes(&at, &mt, &ct)
}

// stable returns the go-fuse identity of inode a.
func stable(a index.Attr) gofs.StableAttr {
	return gofs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: a.Ino, Gen: a.Gen}
}

// attr returns inode ino's attributes with the state of its open file data
// (size and times ahead of the index) laid over them.
func (f *FS) attr(ctx context.Context, ino uint64) (index.Attr, error) {
	a, err := f.idx.GetAttr(bg(ctx), ino)
	if err != nil {
		return a, err
	}
	f.mu.Lock()
	fd := f.files[ino]
	f.mu.Unlock()
	if fd != nil {
		fd.overlay(&a)
	}
	return a, nil
}
