package fs

import (
	"context"
	"sync"
	"syscall"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// handle is an open regular file.
type handle struct {
	n          *node
	fd         *fileData
	appendMode bool
	writable   bool   // opened for writing: close waits for Config.Committer
	pid        uint32 // the process that opened it (0: unknown)
	pt         bool   // in passthrough mode (see passthrough.go)

	mu         sync.Mutex // guards the readahead state
	nextOff    int64      // where a sequential reader reads next
	prefetched int64      // readahead was started up to here
}

var _ = (gofs.NodeOpener)((*node)(nil))

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, 0, syscall.EINVAL
	}
	h, keep, err := n.open(ctx, flags)
	if err != nil {
		return nil, 0, n.fsys.toErrno("open", err)
	}
	var fuseFlags uint32
	if keep {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	return h, fuseFlags, 0
}

// open makes a handle; keep reports whether the kernel's cached pages of
// the file are still valid (see node.cacheMtime).
func (n *node) open(ctx context.Context, flags uint32) (*handle, bool, error) {
	return n.openAttr(ctx, flags, nil)
}

// openAttr is open; created, when set, are the attributes of the inode
// just created, which has no data in the index yet (so opening it costs
// no query).
func (n *node) openAttr(ctx context.Context, flags uint32, created *index.Attr) (*handle, bool, error) {
	f := n.fsys
	var fd *fileData
	var err error
	if created != nil {
		fd = f.acquireCreated(*created)
	} else if fd, err = f.acquire(ctx, n.ino()); err != nil {
		return nil, false, err
	}
	if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
		if err := fd.truncate(ctx, 0); err != nil {
			f.release(ctx, fd)
			return nil, false, err
		}
		if f.killRequested(ctx) {
			if err := f.killPrivs(ctx, fd.ino, n); err != nil {
				f.release(ctx, fd)
				return nil, false, err
			}
		}
	}
	fd.mu.RLock()
	mtime, size := fd.mtime, fd.size
	fd.mu.RUnlock()
	h := &handle{n: n, fd: fd, appendMode: flags&syscall.O_APPEND != 0,
		writable: flags&syscall.O_ACCMODE != syscall.O_RDONLY, pid: callerPID(ctx)}
	f.mu.Lock()
	fresh := created != nil || flags&syscall.O_TRUNC != 0 && h.writable
	if err := f.ptOpenLocked(h, fd, fresh); err != nil {
		f.mu.Unlock()
		f.release(ctx, fd)
		return nil, false, err
	}
	if h.pid != 0 {
		f.openers[h.pid]++
	}
	// While the file data stays open every change goes through the
	// kernel, whose cache therefore stays valid; a file data loaded
	// afresh is compared with what the kernel's cache was left holding.
	// (A passthrough handle does not use that cache.)
	keep := fd.refs > 1 || n.cacheMtime == mtime && n.cacheSize == size
	n.cacheMtime, n.cacheSize = mtime, size
	f.mu.Unlock()
	if h.pt && h.writable {
		fd.ptMarkWriting()
	}
	return h, keep, nil
}

var _ = (gofs.FileReader)((*handle)(nil))

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.pt {
		// Only if the kernel did not take the handle after all: see
		// what it wrote first.
		h.fd.mu.Lock()
		h.fd.ptRefreshLocked()
		h.fd.mu.Unlock()
	}
	// Readahead first, so that its fetches overlap this read's.
	sequential := h.readahead(ctx, off, int64(len(dest)))
	data, err := h.fd.readData(ctx, dest, off, !sequential)
	if err != nil {
		return nil, h.n.fsys.toErrno("read", err)
	}
	return fuse.ReadResultData(data), 0
}

// seqSlack is how far from the end of the reads before it a read may start
// and still count as sequential: the kernel's readahead requests of one
// sequential reader are served concurrently and arrive slightly out of
// order.
const seqSlack = 512 << 10

// readahead prefetches the chunks of the next Config.Readahead bytes when
// reads are sequential, topping the window up every quarter of it so that
// fetches stay in flight while the reader consumes the bytes ahead. It
// reports whether this read continues a sequential run (a handle's first
// read counts as one when it starts in the first 512 KiB).
func (h *handle) readahead(ctx context.Context, off, n int64) (sequential bool) {
	h.mu.Lock()
	sequential = n > 0 && off >= h.nextOff-seqSlack && off <= h.nextOff+seqSlack
	if sequential {
		h.nextOff = max(h.nextOff, off+n)
	} else {
		h.nextOff = off + n
	}
	end := h.nextOff
	window := h.n.fsys.cfg.Readahead
	from := max(h.prefetched, end)
	if !sequential || h.prefetched-end > window-window/4 {
		h.mu.Unlock()
		return sequential
	}
	to := end + window
	h.prefetched = to
	h.mu.Unlock()

	exts, err := h.n.fsys.idx.Extents(bg(ctx), h.fd.ino, from, to-from)
	if err != nil || len(exts) == 0 {
		return true
	}
	h.fd.mu.RLock()
	staged := h.fd.ranges
	h.fd.mu.RUnlock()
	var ids []chunkstore.ID
	seen := map[chunkstore.ID]bool{}
	for _, e := range exts {
		if !seen[e.Chunk] && !staged.Contains(e.Off, e.Len) {
			seen[e.Chunk] = true
			ids = append(ids, e.Chunk)
		}
	}
	if len(ids) > 0 && !h.n.fsys.chunks.Prefetch(bg(ctx), ids) {
		// Dropped: let a later read ask for these bytes again.
		h.mu.Lock()
		if h.prefetched == to {
			h.prefetched = from
		}
		h.mu.Unlock()
	}
	return true
}

var _ = (gofs.FileWriter)((*handle)(nil))

func (h *handle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.n.fsys.killRequested(ctx) {
		if err := h.n.fsys.killPrivs(ctx, h.fd.ino, h.n); err != nil {
			return 0, h.n.fsys.toErrno("write", err)
		}
	}
	n, err := h.fd.write(data, off, h.appendMode)
	if err != nil && n == 0 {
		return 0, h.n.fsys.toErrno("write", err)
	}
	return uint32(n), 0
}

var _ = (gofs.FileFlusher)((*handle)(nil))

// Flush runs on every close(2) of a descriptor: it commits the file's
// data and metadata to the index and queues it for upload. The commit
// survives kill -9 of the daemon (the staged bytes are in the kernel's
// page cache and the commit in SQLite's WAL once their write(2)s return);
// it is made durable against power loss only with Config.SyncOnClose, as
// ext4 makes it durable only at fsync (see the package doc).
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	h.fd.mu.Lock()
	err := h.fd.commitLocked(ctx, h.n.fsys.cfg.SyncOnClose)
	h.fd.mu.Unlock()
	if err != nil {
		return h.n.fsys.toErrno("flush", err)
	}
	return h.waitCommitted(ctx)
}

var _ = (gofs.FileFsyncer)((*handle)(nil))

func (h *handle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	h.fd.mu.Lock()
	err := h.fd.commitLocked(ctx, true)
	h.fd.mu.Unlock()
	if err != nil {
		return h.n.fsys.toErrno("fsync", err)
	}
	return h.waitCommitted(ctx)
}

var _ = (gofs.FileReleaser)((*handle)(nil))

func (h *handle) Release(ctx context.Context) syscall.Errno {
	f := h.n.fsys
	f.mu.Lock()
	if h.pid != 0 {
		if f.openers[h.pid]--; f.openers[h.pid] <= 0 {
			delete(f.openers, h.pid)
		}
	}
	f.mu.Unlock()
	h.fd.mu.Lock()
	if h.pt && h.writable {
		h.fd.ptWriters--
	}
	h.fd.mu.Unlock()
	f.release(bg(ctx), h.fd)
	// The kernel's cache now holds what this handle left (every change
	// went through it): a later open that finds the same keeps it. A
	// passthrough session bypassed that cache, which is stale since.
	h.fd.mu.RLock()
	mtime, size, stale := h.fd.mtime, h.fd.size, h.fd.ptUsed
	h.fd.mu.RUnlock()
	f.mu.Lock()
	h.n.cacheMtime, h.n.cacheSize = mtime, size
	if stale {
		h.n.cacheMtime = -1
	}
	f.mu.Unlock()
	if h.pt {
		f.ptReleasing(ctx, h.fd)
	}
	return 0
}

// fallocate(2) modes.
const (
	fallocKeepSize  = unix.FALLOC_FL_KEEP_SIZE
	fallocPunchHole = unix.FALLOC_FL_PUNCH_HOLE
	fallocZeroRange = unix.FALLOC_FL_ZERO_RANGE
)

var _ = (gofs.FileAllocater)((*handle)(nil))

func (h *handle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return h.n.fsys.toErrno("fallocate", h.fd.allocate(ctx, int64(off), int64(size), mode))
}

// allocate implements fallocate: reservation (space in the staging file,
// so later writes do not hit ENOSPC), punching holes and zeroing ranges.
func (fd *fileData) allocate(ctx context.Context, off, n int64, mode uint32) error {
	if mode&^(fallocKeepSize|fallocPunchHole|fallocZeroRange) != 0 {
		return syscall.EOPNOTSUPP
	}
	if off < 0 || n <= 0 {
		return syscall.EINVAL
	}
	if off+n > maxFileSize {
		return syscall.EFBIG
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.ptRefreshLocked()
	if err := fd.ensureStagingLocked(); err != nil {
		return err
	}
	fd.dataUnsynced = true
	switch {
	case mode&(fallocPunchHole|fallocZeroRange) != 0:
		fd.beginChangeLocked()
		end := min(off+n, fd.size)
		if end > off {
			fd.cutLocked(off, end-off)
			if err := unix.Fallocate(int(fd.staging.Fd()), fallocPunchHole|fallocKeepSize, off, end-off); err != nil {
				return err
			}
		}
		if mode&fallocZeroRange != 0 && mode&fallocKeepSize == 0 {
			fd.size = max(fd.size, off+n)
		}
	default:
		if err := fd.fsys.space.take(n); err != nil {
			return err
		}
		if err := unix.Fallocate(int(fd.staging.Fd()), fallocKeepSize, off, n); err != nil {
			return err
		}
		if mode&fallocKeepSize != 0 || off+n <= fd.size {
			fd.ptRebaseLocked()
			return nil
		}
		fd.beginChangeLocked()
		fd.size = off + n
	}
	if err := fd.ptSyncSizeLocked(); err != nil {
		return err
	}
	return fd.commitLocked(ctx, false)
}

var _ = (gofs.FileLseeker)((*handle)(nil))

// Lseek implements SEEK_DATA and SEEK_HOLE (the kernel does the others):
// data is what is staged or has an extent.
func (h *handle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lseekIno(ctx, off, whence)
}

func (h *handle) lseekIno(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	fd := h.fd
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.ptRefreshLocked()
	o := int64(off)
	if o >= fd.size {
		return 0, syscall.ENXIO
	}
	if fd.pt {
		// The staging file is the whole file, holes included.
		r, err := unix.Seek(int(fd.staging.Fd()), o, int(whence))
		if err != nil {
			return 0, fd.fsys.toErrno("lseek", err)
		}
		return uint64(min(r, fd.size)), 0
	}
	exts, err := fd.fsys.idx.Extents(bg(ctx), fd.ino, o, fd.size-o)
	if err != nil {
		return 0, fd.fsys.toErrno("lseek", err)
	}
	data := fd.ranges.Clip(o, fd.size-o)
	for _, e := range exts {
		if c, ok := e.Clip(o, fd.size-o); ok {
			data = data.Add(c.Off, c.Len)
		}
	}
	switch whence {
	case unix.SEEK_DATA:
		d, ok := data.NextData(o)
		if !ok {
			return 0, syscall.ENXIO
		}
		return uint64(d), 0
	case unix.SEEK_HOLE:
		return uint64(min(data.NextHole(o), fd.size)), 0
	}
	return 0, syscall.EINVAL
}
