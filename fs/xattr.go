package fs

import (
	"context"
	"strings"
	"syscall"

	"github.com/cloudfs/cloudfs/index"
	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// Limits of extended attributes (as Linux's VFS).
const (
	maxXattrName  = 255
	maxXattrValue = 64 << 10
)

// xattrErrno rejects names cloudfs does not store, with EOPNOTSUPP as
// ext4 does for what it was mounted without:
//   - POSIX ACLs would be stored but not enforced, so they are refused as
//     on a file system mounted with noacl;
//   - security.selinux: a label belongs to the policy of the machine that
//     mounts, not to the bucket (NFS without labeled NFS refuses it too).
//     On a host with SELinux enabled the kernel answers it from the
//     mount's policy label without asking the file system.
//
// Refusing them (rather than answering ENODATA) also tells ls, cp and
// other coreutils that the file system has neither, once: they remember
// it per device and stop asking for every file (two FUSE round trips per
// entry of ls -l).
func xattrErrno(name string) syscall.Errno {
	switch {
	case len(name) > maxXattrName:
		return syscall.ERANGE
	case name == "system.posix_acl_access", name == "system.posix_acl_default", name == "security.selinux":
		return syscall.EOPNOTSUPP
	case !strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "trusted.") &&
		!strings.HasPrefix(name, "security.") && !strings.HasPrefix(name, "system."):
		return syscall.EOPNOTSUPP
	}
	return 0
}

var _ = (gofs.NodeGetxattrer)((*node)(nil))

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if e := xattrErrno(attr); e != 0 {
		return 0, e
	}
	if !n.fsys.idx.MayHaveXattrs(n.ino()) {
		// ls -l asks for security.selinux and ACLs of every entry, and
		// the kernel asks for security.capability before every write.
		return 0, syscall.ENODATA
	}
	v, err := n.fsys.idx.GetXattr(bg(ctx), n.ino(), attr)
	if err != nil {
		return 0, n.fsys.toErrno("getxattr", err)
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

var _ = (gofs.NodeListxattrer)((*node)(nil))

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	if !n.fsys.idx.MayHaveXattrs(n.ino()) {
		return 0, 0
	}
	names, err := n.fsys.idx.ListXattr(bg(ctx), n.ino())
	if err != nil {
		return 0, n.fsys.toErrno("listxattr", err)
	}
	size := 0
	for _, nm := range names {
		size += len(nm) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	off := 0
	for _, nm := range names {
		off += copy(dest[off:], nm)
		dest[off] = 0
		off++
	}
	return uint32(size), 0
}

var _ = (gofs.NodeSetxattrer)((*node)(nil))

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if e := xattrErrno(attr); e != 0 {
		return e
	}
	if len(data) > maxXattrValue {
		return syscall.E2BIG
	}
	if flags&^3 != 0 || flags == 3 {
		return syscall.EINVAL
	}
	err := n.fsys.idx.SetXattr(bg(ctx), n.ino(), attr, data, index.XattrFlags(flags))
	return n.fsys.toErrno("setxattr", err)
}

var _ = (gofs.NodeRemovexattrer)((*node)(nil))

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if e := xattrErrno(attr); e != 0 {
		if e == syscall.EOPNOTSUPP {
			return syscall.ENODATA
		}
		return e
	}
	return n.fsys.toErrno("removexattr", n.fsys.idx.RemoveXattr(bg(ctx), n.ino(), attr))
}
