package fs

import (
	"context"
	"syscall"

	"go.uber.org/zap"
)

// Committer waits for the remote commit of a file (a mount with
// --writeback=false). The file system never imports the uploader; cmd
// passes it in.
type Committer interface {
	// WaitCommitted returns once inode ino's queued content and names are
	// committed to the remote, or the error of an upload attempt that
	// failed after the call. It is called from the goroutine serving
	// close(2) or fsync(2), after the durable local commit, with no lock
	// of the file system held.
	WaitCommitted(ctx context.Context, ino uint64) error
}

// waitCommitted waits, when the mount asked for it (Config.Committer),
// until the file of a writable handle is committed remotely. A failure is
// EIO for the caller and a log line naming the file; the data stays
// durable locally and queued.
func (h *handle) waitCommitted(ctx context.Context) syscall.Errno {
	c := h.n.fsys.cfg.Committer
	if c == nil || !h.writable {
		return 0
	}
	ino := h.n.ino()
	// Not on the request's context: FUSE interrupts (any signal the
	// caller gets) would cancel it, and the commit is what close promises.
	if err := c.WaitCommitted(bg(ctx), ino); err != nil {
		h.n.fsys.log.Error("close: remote commit failed; the file stays queued", zap.Uint64("ino", ino), zap.Error(err))
		return syscall.EIO
	}
	return 0
}
