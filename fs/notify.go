package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/index"
)

// Changes made behind the kernel's back (another machine's commits,
// pulled into the index) reach the kernel's caches through notifications:
// an entry invalidation for each name added, removed or replaced (a
// deletion notice, which inotify watchers see, where the kernel holds the
// removed inode), and an attribute invalidation for each inode whose
// attributes changed. A file whose content changed remotely is a new
// inode under its name, so the pages the kernel caches of the old one
// stay right for the descriptors that still read it (close-to-open), and
// nothing invalidates data.
//
// Notifications are sent from the goroutine that pulled, never from a
// FUSE request (the kernel may hold a directory lock that a request it
// waits for needs), and only for inodes the kernel holds (f.nodes).

// inode returns the go-fuse Inode of ino when the kernel holds it.
func (f *FS) inode(ino uint64) *gofs.Inode {
	v, ok := f.nodes.Load(ino)
	if !ok {
		return nil
	}
	in := v.(*gofs.Inode)
	if in.Forgotten() {
		return nil
	}
	return in
}

// Invalidate drops what the kernel caches of the entries and attributes
// vs name (it implements the puller's Notifier).
func (f *FS) Invalidate(vs []index.Invalidation) {
	for _, v := range vs {
		if v.Dir != 0 {
			f.invalidateEntry(v)
		}
		if v.Ino != 0 {
			if in := f.inode(v.Ino); in != nil {
				f.notifyErr("inode", in.NotifyContent(-1, 0))
			}
		}
	}
}

func (f *FS) invalidateEntry(v index.Invalidation) {
	parent := f.inode(v.Dir)
	if parent == nil {
		return // the kernel holds no entry of a directory it does not hold
	}
	if v.Removed != 0 {
		if child := f.inode(v.Removed); child != nil {
			f.notifyErr("delete", parent.NotifyDelete(v.Name, child))
			if c := parent.GetChild(v.Name); c == child {
				parent.RmChild(v.Name)
			}
			return
		}
	}
	f.notifyErr("entry", parent.NotifyEntry(v.Name))
}

// notifyErr logs a failed notification: ENOENT means the kernel had
// nothing cached, which is fine.
func (f *FS) notifyErr(what string, errno syscall.Errno) {
	if errno != 0 && errno != syscall.ENOENT {
		f.log.Debug("kernel cache notification", zap.String("kind", what), zap.Error(errno))
	}
}

// Orphaned is told the inodes a pull took the last name of: one that
// neither the kernel nor an open file holds is deleted now (the kernel
// would never send its forget).
func (f *FS) Orphaned(inos []uint64) {
	for _, ino := range inos {
		if f.inode(ino) != nil {
			continue
		}
		f.mu.Lock()
		open := f.files[ino] != nil
		f.mu.Unlock()
		if !open {
			f.forget(context.Background(), ino)
		}
	}
}
