package fs

// Passthrough sessions (FUSE_PASSTHROUGH, Linux 6.9 and later).
//
// A file whose whole content is in its staging file can be served by the
// kernel itself: reads, writes and mmap of its handles go straight to the
// staging file, with no request to this process. The file system then
// learns what was written only when a request comes (getattr, flush,
// fsync, release, truncate, ...), from the staging file's size and mtime.
//
// Terms:
//   - session: the time a file data's handles are in passthrough mode. It
//     starts when a handle opens a file that has no other handle, whose
//     content is all staged (a new file, an O_TRUNC open, or for reading a
//     file written here whose staging file is still kept, see trim.go)
//     and that the opening process is not copying from another file of
//     this mount (see ptEligibleLocked); it
//     ends when the last handle is released and go-fuse has dropped the
//     kernel's backing file. Every handle opened during a session is in
//     passthrough mode too (the kernel refuses a mix).
//   - refresh: taking the staging file's size and mtime as the file's,
//     with [0, size) staged, when they changed (ptRefreshLocked).
//
// While a session has a handle open for writing, the file stays marked
// unpersisted in the index (its staging file changes behind the index's
// back), so the uploader leaves it queued until the writers are gone;
// flush and fsync still commit it (kill -9 of the daemon loses nothing
// close() or fsync() returned for). A session of readers marks nothing.
//
// Passthrough is used only when the daemon may register backing files
// (CAP_SYS_ADMIN, probed at mount), not with --writeback=false (close
// waits for an upload that waits for the session to end), when the cache
// disk has room to spare
// (writes in a session bypass the reserve kept for the index), and not for
// setuid/setgid files (the kernel does not clear those bits on writes it
// serves itself).

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// ptMinFree is the free space the cache disk must have, beyond the
// reserve, for a session to start.
const ptMinFree = 256 << 20

// ptState is a file data's passthrough state. ptHandles is guarded by
// FS.mu, the rest by fileData.mu.
type ptState struct {
	pt        bool  // in a session
	ptUsed    bool  // was in a session: the kernel's page cache of the inode is stale
	ptWriters int   // handles of the session open for writing
	ptMtime   int64 // the staging file's mtime when last looked at
	// ptHandles counts the session's handles that go-fuse has not fully
	// released: it keeps the session (and this file data) alive until
	// the kernel's backing file is gone, so that an open racing with the
	// last release joins the session instead of starting a cached one.
	ptHandles int
}

// probePassthrough enables sessions if the kernel lets this process
// register backing files.
func (f *FS) probePassthrough(srv *fuse.Server) {
	if f.cfg.NoPassthrough {
		f.log.Info("kernel passthrough off (-o nopassthrough): reads and writes go through the daemon")
		return
	}
	path := filepath.Join(f.stagingDir, "passthrough-probe")
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		f.log.Warn("passthrough probe", zap.Error(err))
		return
	}
	defer os.Remove(path)
	defer file.Close()
	id, errno := srv.RegisterBackingFd(&fuse.BackingMap{Fd: int32(file.Fd())})
	if errno != 0 {
		f.log.Info("kernel passthrough unavailable: reads and writes go through the daemon", zap.Error(errno))
		return
	}
	if errno := srv.UnregisterBackingFd(id); errno != 0 {
		f.log.Warn("passthrough probe: unregister", zap.Error(errno))
	}
	f.ptOn.Store(true)
	f.log.Info("kernel passthrough on: the kernel reads and writes files being written straight from their staging files")
}

// callerPID returns the process (thread) a request came from, 0 if unknown.
func callerPID(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Pid
	}
	return 0
}

// ptOpenLocked decides, for handle h just opened on fd, whether it is in
// passthrough mode: it joins a session in progress, or starts one when fd
// is eligible. fresh is set when the open left the file empty (create,
// O_TRUNC): only such an open for writing starts a session, because the
// daemon sees a session's writes only as "all of it changed", and an edit
// of a large file must be re-chunked around the edit alone. f.mu is held.
func (f *FS) ptOpenLocked(h *handle, fd *fileData, fresh bool) error {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if !fd.pt {
		if fd.refs != 1 || fd.ptHandles != 0 || h.writable && !fresh || !f.ptEligibleLocked(fd, h.pid) {
			return nil
		}
		if err := fd.ptStartLocked(); err != nil {
			return err
		}
	}
	h.pt = true
	fd.ptHandles++
	if h.writable {
		fd.ptWriters++ // the caller marks the file unpersisted: ptMarkWriting
	}
	return nil
}

// ptMarkWriting marks fd unpersisted in the index for a writable handle
// of a session: the kernel writes the staging file behind the index from
// the open's reply on, and the uploader must leave the file alone. It runs
// after the open's decision, outside FS.mu (the index may be busy with a
// long transaction), but before the reply.
func (fd *fileData) ptMarkWriting() {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if !fd.unpersisted {
		fd.fsys.idx.MarkUnpersisted(fd.ino)
		fd.unpersisted = true
	}
}

// ptEligibleLocked reports whether a session may start on fd, which has
// no other handle, for process pid. f.mu and fd.mu are held.
func (f *FS) ptEligibleLocked(fd *fileData, pid uint32) bool {
	switch {
	case !f.ptOn.Load():
		return false
	case f.cfg.Committer != nil:
		// close and fsync wait for the upload, which waits for the
		// session to end: no session.
		return false
	case fd.mode&(syscall.S_ISUID|syscall.S_ISGID) != 0:
		return false
	case fd.size > 0 && !fd.ranges.Contains(0, fd.size):
		return false // part of the content is only in chunks
	case pid != 0 && f.openers[pid] > 0:
		// The process has another file of this mount open: it may be
		// copying it with copy_file_range, which clones chunks only
		// into a file outside a session.
		return false
	}
	return f.space.roomy(ptMinFree)
}

// ptStartLocked starts a session: the staging file gets the file's size
// and holds all of its bytes. fd.mu is held.
func (fd *fileData) ptStartLocked() error {
	if err := fd.ensureStagingLocked(); err != nil {
		return err
	}
	// Only bytes past the size can differ (the content is all staged):
	// cut them, so that the kernel's reads and appends see exactly the
	// file.
	mt, err := fd.fitStagingLocked()
	if err != nil {
		return err
	}
	fd.pt, fd.ptUsed = true, true
	fd.ptMtime = mt
	return nil
}

// fitStagingLocked makes the staging file exactly as long as the file and
// returns its mtime. fd.mu is held.
func (fd *fileData) fitStagingLocked() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(fd.staging.Fd()), &st); err != nil {
		return 0, err
	}
	if st.Size != fd.size {
		if err := fd.staging.Truncate(fd.size); err != nil {
			return 0, err
		}
		if err := unix.Fstat(int(fd.staging.Fd()), &st); err != nil {
			return 0, err
		}
	}
	return st.Mtim.Nano(), nil
}

// ptRefreshLocked takes what the kernel wrote into the staging file during
// the session: its size, mtime, and [0, size) staged. While a handle of
// the session is open for writing, a commit always records a new version:
// a write that leaves size and mtime as they were (same size, within one
// timestamp tick) must not be missed. fd.mu is held.
func (fd *fileData) ptRefreshLocked() {
	if !fd.pt {
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(fd.staging.Fd()), &st); err != nil {
		fd.fsys.log.Error("stat staging file", zap.Uint64("ino", fd.ino), zap.Error(err))
		return
	}
	mt := st.Mtim.Nano()
	if st.Size == fd.size && mt == fd.ptMtime && (fd.ptWriters == 0 || fd.dirty || st.Size == 0) {
		return // nothing written (a write to an empty file would have grown it)
	}
	if mt != fd.ptMtime {
		// Written at mt (the staging file's clock: the kernel's).
		fd.mtime, fd.ctime = mt, mt
		fd.ptMtime = mt
	}
	fd.size = st.Size
	fd.ranges = nil
	if st.Size > 0 {
		fd.ranges = fd.ranges.Add(0, st.Size)
		fd.added = fd.added.Add(0, st.Size)
	}
	fd.dirty, fd.dataUnsynced = true, true
}

// ptSyncSizeLocked, after this process changed a file in a session
// (fallocate, copy_file_range), makes the staging file as long as the file
// (the kernel reads it alone; a missing tail reads as zeros once there)
// and takes its mtime as the session's own. fd.mu is held.
func (fd *fileData) ptSyncSizeLocked() error {
	if !fd.pt {
		return nil
	}
	mt, err := fd.fitStagingLocked()
	if err != nil {
		return err
	}
	fd.ptMtime = mt
	return nil
}

// ptWriting reports whether the kernel may be writing the staging file
// behind the index: a session with a handle open for writing. fd.mu is
// held.
func (fd *fileData) ptWriting() bool { return fd.pt && fd.ptWriters > 0 }

// ptRebaseLocked records the staging file's mtime after this process
// changed the staging file itself (truncate, fallocate, copy), so that the
// next refresh does not take that change for a write of the kernel's.
func (fd *fileData) ptRebaseLocked() {
	if !fd.pt {
		return
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(fd.staging.Fd()), &st); err == nil {
		fd.ptMtime = st.Mtim.Nano()
	}
}

// PassthroughFd gives go-fuse the staging file of a handle in passthrough
// mode (it registers it with the kernel as the backing file).
func (h *handle) PassthroughFd() (int, bool) {
	if !h.pt {
		return 0, false
	}
	h.fd.mu.RLock()
	defer h.fd.mu.RUnlock()
	if h.fd.staging == nil {
		return 0, false
	}
	return int(h.fd.staging.Fd()), true
}

// ptReleasing remembers, for the Release request in progress, the file
// data of a passthrough handle, until go-fuse has released the handle's
// hold on the kernel's backing file (rawFS.Release).
func (f *FS) ptReleasing(ctx context.Context, fd *fileData) {
	if c, ok := ctx.(*fuse.Context); ok && c.Cancel != nil {
		f.ptRelease.Store(c.Cancel, fd)
		return
	}
	f.ptReleased(ctx, fd) // not from a request (tests): nothing to wait for
}

// ptReleased ends a passthrough handle's part in its session, and the
// session with the last one.
func (f *FS) ptReleased(ctx context.Context, fd *fileData) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd.ptHandles--
	if fd.refs == 0 && fd.ptHandles == 0 {
		f.finalReleaseLocked(ctx, fd)
	}
}

// rawFS is the go-fuse bridge with the one request passthrough needs to
// see after go-fuse: Release, after which the kernel's backing file of a
// handle is gone.
type rawFS struct {
	fuse.RawFileSystem
	f *FS
}

func (r *rawFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	r.RawFileSystem.Release(cancel, in)
	if v, ok := r.f.ptRelease.LoadAndDelete(cancel); ok {
		r.f.ptReleased(context.Background(), v.(*fileData))
	}
}
