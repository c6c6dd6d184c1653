package fs

import (
	"context"
	"syscall"
	"time"

	"github.com/cloudfs/cloudfs/index"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// node is the go-fuse node of one index inode (any type).
type node struct {
	gofs.Inode
	fsys *FS

	// cacheMtime and cacheSize are the mtime and size seen by the last
	// open; an open that sees the same keeps the kernel's page cache.
	// Guarded by fsys.mu.
	cacheMtime, cacheSize int64
}

func (n *node) ino() uint64 { return n.StableAttr().Ino }

// newChild returns the go-fuse Inode for a, reusing the existing one if
// the kernel already knows the inode (hard links).
func (n *node) newChild(ctx context.Context, a index.Attr) *gofs.Inode {
	child := n.NewInode(ctx, &node{fsys: n.fsys}, stable(a))
	n.fsys.nodes.Store(a.Ino, child)
	n.fsys.shed.handed(child)
	return child
}

func (f *FS) fillEntry(a index.Attr, out *fuse.EntryOut) {
	f.fillAttr(a, &out.Attr)
	out.SetEntryTimeout(f.cfg.EntryTimeout)
	out.SetAttrTimeout(f.cfg.AttrTimeout)
}

var _ = (gofs.NodeLookuper)((*node)(nil))

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(name) > index.MaxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	var a index.Attr
	err := n.fsys.withLoad(ctx, func() (err error) {
		a, err = n.fsys.idx.Lookup(bg(ctx), n.ino(), name)
		return err
	})
	if err != nil {
		return nil, n.fsys.toErrno("lookup", err)
	}
	n.fsys.overlayOpen(&a)
	n.fsys.fillEntry(a, out)
	return n.newChild(ctx, a), 0
}

// overlayOpen lays the open file data of a's inode over a.
func (f *FS) overlayOpen(a *index.Attr) {
	if !a.IsRegular() {
		return
	}
	f.mu.Lock()
	fd := f.files[a.Ino]
	f.mu.Unlock()
	if fd != nil {
		fd.overlay(a)
	}
}

var _ = (gofs.NodeGetattrer)((*node)(nil))

func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.fsys.attr(ctx, n.ino())
	if err != nil {
		return n.fsys.toErrno("getattr", err)
	}
	n.fsys.fillAttr(a, &out.Attr)
	out.SetTimeout(n.fsys.cfg.AttrTimeout)
	return 0
}

var _ = (gofs.NodeSetattrer)((*node)(nil))

// Setattr implements chmod, chown, truncate and utimens. The kernel has
// checked permissions (default_permissions); clearing setuid/setgid is
// ours where it flags it (killpriv.go).
func (n *node) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	ino := n.ino()
	if size, ok := in.GetSize(); ok {
		if n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFREG {
			return syscall.EINVAL
		}
		if size > maxFileSize {
			return syscall.EFBIG
		}
		fd, err := f.acquire(ctx, ino)
		if err != nil {
			return f.toErrno("truncate", err)
		}
		err = fd.truncate(ctx, int64(size))
		f.release(ctx, fd)
		if err != nil {
			return f.toErrno("truncate", err)
		}
	}
	var ch index.AttrChange
	if mode, ok := in.GetMode(); ok {
		ch.Mask |= index.SetMode
		ch.Mode = mode
	}
	if uid, ok := in.GetUID(); ok {
		ch.Mask |= index.SetUID
		ch.UID = uid
	}
	if gid, ok := in.GetGID(); ok {
		ch.Mask |= index.SetGID
		ch.GID = gid
	}
	if t, ok := in.GetATime(); ok {
		ch.Mask |= index.SetAtime
		ch.Atime = t.UnixNano()
	}
	if t, ok := in.GetMTime(); ok {
		ch.Mask |= index.SetMtime
		ch.Mtime = t.UnixNano()
	}
	if t, ok := in.GetCTime(); ok {
		ch.Mask |= index.SetCtime
		ch.Ctime = t.UnixNano()
	}
	var a index.Attr
	fresh := false // a holds the attributes after this call
	if ch.Mask != 0 {
		var err error
		if a, err = f.setAttr(ctx, ino, ch); err != nil {
			return f.toErrno("setattr", err)
		}
		fresh = true
	}
	if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 && n.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFDIR {
		// A truncate by a caller without CAP_FSETID, or a chown (see
		// killpriv.go).
		if err := f.killPrivs(ctx, ino, nil); err != nil { // the reply carries the new mode
			return f.toErrno("setattr", err)
		}
		fresh = false
	}
	if fresh {
		f.overlayOpen(&a)
	} else {
		var err error
		if a, err = f.attr(ctx, ino); err != nil {
			return f.toErrno("setattr", err)
		}
	}
	f.fillAttr(a, &out.Attr)
	out.SetTimeout(f.cfg.AttrTimeout)
	return 0
}

// maxFileSize is the largest file size (ext4 with 4 KiB blocks: 16 TiB).
const maxFileSize = 16 << 40

var _ = (gofs.NodeReadlinker)((*node)(nil))

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	a, err := n.fsys.idx.GetAttr(bg(ctx), n.ino())
	if err != nil {
		return nil, n.fsys.toErrno("readlink", err)
	}
	if !a.IsSymlink() {
		return nil, syscall.EINVAL
	}
	return []byte(a.Target), 0
}

var _ = (gofs.NodeStatfser)((*node)(nil))

// Statfs reports the space of the disk holding the cache (where writes
// land first) and the index's inode count.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st unix.Statfs_t
	if err := unix.Statfs(n.fsys.stagingDir, &st); err != nil {
		return n.fsys.toErrno("statfs", err)
	}
	stats, err := n.fsys.stats(ctx)
	if err != nil {
		return n.fsys.toErrno("statfs", err)
	}
	const bsize = 4096
	free := st.Bavail * uint64(st.Bsize) / bsize
	used := uint64(stats.Bytes+bsize-1) / bsize
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = used + free
	out.Bfree = free
	out.Bavail = free
	out.Files = uint64(stats.Inodes) + st.Ffree
	out.Ffree = st.Ffree
	out.NameLen = index.MaxNameLen
	return 0
}

var _ = (gofs.NodeOnForgetter)((*node)(nil))

// OnForget runs when the kernel has dropped the inode: an unlinked inode
// can now go from the index.
func (n *node) OnForget() {
	ino := n.ino()
	if ino == index.RootIno {
		return
	}
	n.fsys.nodes.CompareAndDelete(ino, n.EmbeddedInode())
	n.fsys.mu.Lock()
	open := n.fsys.files[ino] != nil
	n.fsys.mu.Unlock()
	if open {
		return
	}
	n.fsys.forget(context.Background(), ino)
}

// forget deletes inode ino from the index if it has no links left, and
// its staging file with it.
func (f *FS) forget(ctx context.Context, ino uint64) {
	name, deleted, err := f.idx.Forget(ctx, ino)
	if err != nil {
		f.log.Error("forget inode", zap.Uint64("ino", ino), zap.Error(err))
		return
	}
	if deleted && name != "" {
		f.removeStaging(name)
	}
}

var _ = (gofs.NodeFsyncer)((*node)(nil))

// Fsync without a handle (fsyncdir; a file's fsync goes to its handle):
// make every committed change durable.
func (n *node) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		return h.Fsync(ctx, flags)
	}
	return n.fsys.toErrno("fsync", n.fsys.idx.Sync(bg(ctx)))
}

// statsTTL bounds how stale the index counts in statfs may be: counting a
// large index scans it, and df-style callers poll.
const statsTTL = 2 * time.Second

// stats returns the index counts, computed at most every statsTTL.
func (f *FS) stats(ctx context.Context) (index.Stats, error) {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	if time.Since(f.statsAt) < statsTTL {
		return f.statsVal, nil
	}
	st, err := f.idx.Stats(bg(ctx))
	if err != nil {
		return st, err
	}
	f.statsVal, f.statsAt = st, time.Now()
	return st, nil
}
