package fs

import (
	"context"
	"errors"
	"syscall"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// toErrno maps an error from below the file system to the errno the
// kernel gets. op names the operation for the log line written for errors
// it does not know, which become EIO.
func (f *FS) toErrno(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, index.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, index.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, index.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, index.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, index.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, index.ErrNoData):
		return syscall.ENODATA
	case errors.Is(err, index.ErrInvalid), errors.Is(err, index.ErrNotSymlink):
		return syscall.EINVAL
	case errors.Is(err, index.ErrTooManyLink):
		return syscall.EMLINK
	case errors.Is(err, index.ErrFull):
		return syscall.ENOSPC
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, chunkstore.ErrNotFound), errors.Is(err, chunkstore.ErrCorrupt):
		// An object the index names is missing from the remote, or
		// fails its check: the remote's fault, never the caller's
		// ENOENT.
		f.log.Error("remote object missing or corrupt", zap.String("op", op), zap.Error(err))
		return syscall.EIO
	case errors.Is(err, chunkstore.ErrUnreachable):
		// The remote's network errors (ECONNREFUSED, ...) are not the
		// caller's: reading what is not cached fails with EIO.
		f.log.Error("remote unreachable", zap.String("op", op), zap.Error(err))
		return syscall.EIO
	case errors.As(err, &errno):
		// A system call's own error (ENOSPC, EDQUOT from the staging
		// disk, ...) passes through unchanged.
		if errno == syscall.EIO {
			f.log.Error("I/O error", zap.String("op", op), zap.Error(err))
		}
		return errno
	}
	f.log.Error("operation failed", zap.String("op", op), zap.Error(err))
	return syscall.EIO
}
