package fs

// Clearing setuid, setgid and file capabilities (FUSE_HANDLE_KILLPRIV_V2).
//
// The mount asks the kernel to leave this to the file system. The kernel
// then marks the superblock SB_NOSEC: it asks for security.capability
// before the first write of an inode only, not before every write (a
// FUSE round trip each), and flags instead the requests that must clear:
// a write by a caller without CAP_FSETID (FUSE_WRITE_KILL_SUIDGID), an
// open with O_TRUNC by such a caller (FUSE_OPEN_KILL_SUIDGID), a truncate
// by one (FATTR_KILL_SUIDGID), and a chown of a non-directory
// (FATTR_KILL_SUIDGID). As the VFS does, clearing removes setuid, setgid
// when the group may execute (a setgid bit without it marks mandatory
// locking), and the security.capability attribute.
//
// go-fuse passes neither the write nor the open flags to the node's
// methods, so rawFS notes such a request by its cancel channel (unique
// among the requests in progress) and the handler asks killRequested.

import (
	"context"
	"errors"
	"syscall"

	"github.com/cloudfs/cloudfs/index"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// killMark notes, for the duration of inner, that the request with cancel
// channel cancel must clear setuid/setgid.
func (f *FS) killMark(cancel <-chan struct{}, kill bool, inner func()) {
	if !kill || cancel == nil {
		inner()
		return
	}
	f.killReq.Store(cancel, struct{}{})
	defer f.killReq.Delete(cancel)
	inner()
}

// killRequested reports whether the request ctx belongs to was flagged to
// clear setuid/setgid (see killMark).
func (f *FS) killRequested(ctx context.Context) bool {
	c, ok := ctx.(*fuse.Context)
	if !ok || c.Cancel == nil {
		return false
	}
	_, ok = f.killReq.Load(c.Cancel)
	return ok
}

// killPrivs clears inode ino's setuid bit, its setgid bit when the group
// may execute, and its security.capability attribute. A mode it changes
// outside a setattr (a write, an open) is also dropped from the kernel's
// attribute cache through n, which the kernel does not refresh by itself
// after such a request.
func (f *FS) killPrivs(ctx context.Context, ino uint64, n *node) error {
	a, err := f.idx.GetAttr(bg(ctx), ino)
	if err != nil {
		return err
	}
	mode := a.Mode &^ syscall.S_ISUID
	if a.Mode&syscall.S_IXGRP != 0 {
		mode &^= syscall.S_ISGID
	}
	if mode != a.Mode {
		a, err = f.idx.SetAttr(bg(ctx), ino, index.AttrChange{Mask: index.SetMode, Mode: mode})
		if err != nil {
			return err
		}
		f.setOpenTimes(a)
		if n != nil {
			// Attributes only (offset -1): the kernel takes no lock
			// the request in progress holds.
			n.NotifyContent(-1, 0)
		}
	}
	if f.idx.MayHaveXattrs(ino) {
		if err := f.idx.RemoveXattr(bg(ctx), ino, "security.capability"); err != nil && !errors.Is(err, index.ErrNoData) {
			return err
		}
	}
	return nil
}

func (r *rawFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (n uint32, st fuse.Status) {
	r.f.killMark(cancel, in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0, func() {
		n, st = r.RawFileSystem.Writev(cancel, in, data)
	})
	return n, st
}

func (r *rawFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (n uint32, st fuse.Status) {
	r.f.killMark(cancel, in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0, func() {
		n, st = r.RawFileSystem.Write(cancel, in, data)
	})
	return n, st
}

func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) (st fuse.Status) {
	r.f.killMark(cancel, in.Mode&fuse.OPEN_KILL_SUIDGID != 0, func() {
		st = r.RawFileSystem.Open(cancel, in, out)
	})
	return st
}
