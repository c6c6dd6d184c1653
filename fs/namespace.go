package fs

import (
	"context"
	"errors"
	"syscall"

	"github.com/cloudfs/cloudfs/index"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// maxSymlinkLen is the longest symlink target (PATH_MAX - 1).
const maxSymlinkLen = 4095

// create makes a child inode owned by the caller.
func (n *node) create(ctx context.Context, name string, nn index.NewNode) (index.Attr, syscall.Errno) {
	if len(name) > index.MaxNameLen {
		return index.Attr{}, syscall.ENAMETOOLONG
	}
	if c, ok := fuse.FromContext(ctx); ok {
		nn.UID, nn.GID = c.Uid, c.Gid
	}
	var a index.Attr
	err := n.fsys.withLoad(ctx, func() (err error) {
		a, err = n.fsys.idx.Create(bg(ctx), n.ino(), name, nn)
		return err
	})
	if err != nil {
		return a, n.fsys.toErrno("create", err)
	}
	return a, 0
}

var _ = (gofs.NodeCreater)((*node)(nil))

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	a, errno := n.create(ctx, name, index.NewNode{Mode: syscall.S_IFREG | mode&07777})
	if errno != 0 {
		return nil, nil, 0, errno
	}
	child := n.newChild(ctx, a)
	cn := child.Operations().(*node)
	h, _, err := cn.openAttr(ctx, flags&^syscall.O_TRUNC, &a)
	if err != nil {
		return nil, nil, 0, n.fsys.toErrno("create", err)
	}
	n.fsys.fillEntry(a, out)
	return child, h, 0, 0
}

var _ = (gofs.NodeTmpfiler)((*node)(nil))

// Tmpfile implements O_TMPFILE: an open file in no directory, which
// linkat(2) may name later.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	nn := index.NewNode{Mode: syscall.S_IFREG | mode&07777}
	if c, ok := fuse.FromContext(ctx); ok {
		nn.UID, nn.GID = c.Uid, c.Gid
	}
	var a index.Attr
	err := n.fsys.withLoad(ctx, func() (err error) {
		a, err = n.fsys.idx.CreateUnlinked(bg(ctx), n.ino(), nn)
		return err
	})
	if err != nil {
		return nil, nil, 0, n.fsys.toErrno("tmpfile", err)
	}
	child := n.NewInode(ctx, &node{fsys: n.fsys}, stable(a))
	n.fsys.nodes.Store(a.Ino, child)
	h, _, err := child.Operations().(*node).openAttr(ctx, flags&^syscall.O_TRUNC, &a)
	if err != nil {
		return nil, nil, 0, n.fsys.toErrno("tmpfile", err)
	}
	n.fsys.fillEntry(a, out)
	return child, h, 0, 0
}

var _ = (gofs.NodeMkdirer)((*node)(nil))

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, errno := n.create(ctx, name, index.NewNode{Mode: syscall.S_IFDIR | mode&07777})
	if errno != 0 {
		return nil, errno
	}
	n.fsys.fillEntry(a, out)
	return n.newChild(ctx, a), 0
}

var _ = (gofs.NodeMknoder)((*node)(nil))

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	switch mode & syscall.S_IFMT {
	case 0:
		mode |= syscall.S_IFREG
	case syscall.S_IFREG, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	default:
		return nil, syscall.EINVAL
	}
	a, errno := n.create(ctx, name, index.NewNode{Mode: mode, Rdev: dev})
	if errno != 0 {
		return nil, errno
	}
	n.fsys.fillEntry(a, out)
	return n.newChild(ctx, a), 0
}

var _ = (gofs.NodeSymlinker)((*node)(nil))

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(target) > maxSymlinkLen {
		return nil, syscall.ENAMETOOLONG
	}
	a, errno := n.create(ctx, name, index.NewNode{Mode: syscall.S_IFLNK | 0o777, Target: target})
	if errno != 0 {
		return nil, errno
	}
	n.fsys.fillEntry(a, out)
	return n.newChild(ctx, a), 0
}

var _ = (gofs.NodeLinker)((*node)(nil))

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if len(name) > index.MaxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	ino := target.EmbeddedInode().StableAttr().Ino
	var a index.Attr
	err := n.fsys.withLoad(ctx, func() (err error) {
		a, err = n.fsys.idx.Link(bg(ctx), ino, n.ino(), name)
		return err
	})
	if err != nil {
		if errors.Is(err, index.ErrIsDir) {
			return nil, syscall.EPERM
		}
		return nil, n.fsys.toErrno("link", err)
	}
	n.fsys.overlayOpen(&a)
	n.fsys.fillEntry(a, out)
	return n.newChild(ctx, a), 0
}

var _ = (gofs.NodeUnlinker)((*node)(nil))

// Unlink removes a name. An inode left without links stays in the index
// until the kernel forgets it (OnForget) while open descriptors may use it;
// a regular file that no open file data uses goes with its last name.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	var rm index.Removed
	err := f.withLoad(ctx, func() (err error) {
		// Under f.mu no open can start: a regular file that loses its
		// last name with no open file data is deleted in the unlink's
		// own transaction, not at the kernel's forget. (A create holds
		// the directory's lock in the kernel until its open is done.)
		f.mu.Lock()
		defer f.mu.Unlock()
		rm, err = f.idx.UnlinkUnused(bg(ctx), n.ino(), name, func(ino uint64) bool { return f.files[ino] == nil })
		return err
	})
	if err == nil && rm.Deleted && rm.Staging != "" {
		f.removeStaging(rm.Staging)
	}
	return f.toErrno("unlink", err)
}

var _ = (gofs.NodeRmdirer)((*node)(nil))

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	err := n.fsys.withLoad(ctx, func() error {
		_, err := n.fsys.idx.Rmdir(bg(ctx), n.ino(), name)
		return err
	})
	return n.fsys.toErrno("rmdir", err)
}

var _ = (gofs.NodeRenamer)((*node)(nil))

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if len(newName) > index.MaxNameLen {
		return syscall.ENAMETOOLONG
	}
	if flags&^uint32(index.RenameNoReplace|index.RenameExchange) != 0 {
		return syscall.EINVAL // RENAME_WHITEOUT is for overlayfs on block file systems
	}
	np := newParent.EmbeddedInode().StableAttr().Ino
	err := n.fsys.withLoad(ctx, func() error {
		_, err := n.fsys.idx.Rename(bg(ctx), n.ino(), name, np, newName, index.RenameFlags(flags))
		return err
	})
	return n.fsys.toErrno("rename", err)
}
