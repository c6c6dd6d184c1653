// Package fs is cloudfs's FUSE file system: go-fuse v2 nodes and file
// handles over the metadata index (package index) and the chunk cache.
//
// Terms (see package index for inode, entry, extent, staging and dirty):
//
//   - node: the go-fuse Inode of one index inode; its number
//     (StableAttr.Ino) is the index's inode number, so the kernel sees the
//     same numbers across remounts.
//   - handle: one open file description (what open(2) returns), holding
//     the open flags and the readahead state.
//   - file data: the in-memory state of a regular file that has handles:
//     its staging file, its staged ranges, the ranges written since the
//     last commit, and size/mtime/ctime while they are ahead of the index.
//     All handles of one inode share it.
//   - commit: writing a file data's pending state to the index
//     (index.CommitData); the file is then on the dirty queue for the
//     uploader. close(2) (FLUSH) commits without fsync: the staged bytes
//     are in the kernel's page cache and the commit in SQLite's WAL once
//     their write(2)s return, so data close returned for survives kill -9
//     of the daemon (guarantee 1), and a power loss only once fsynced, as
//     on ext4. fsync(2) (and close with Config.SyncOnClose, -o sync_close)
//     commit durably: they fdatasync the staging file first, then fsync
//     the WAL, which makes every earlier commit durable too.
//
// Caches (what the kernel and this package keep, and what keeps them
// right):
//
//   - kernel page cache: kept across opens (FOPEN_KEEP_CACHE) and
//     attribute changes (explicit data cache control), because every
//     change on this machine goes through the kernel; node.cacheMtime and
//     cacheSize record what the pages were left holding at the last
//     release, and an open that finds the file changed otherwise (not
//     through the kernel) drops them.
//   - xattrs: index.MayHaveXattrs answers getxattr/listxattr for inodes
//     with no xattrs without a query (ls -l, security.capability before
//     the first write of an inode).
//   - passthrough sessions and clean staging files: see passthrough.go
//     and trim.go; setuid/setgid clearing: killpriv.go.
//   - staging pool: empty staging files created and fsynced in batches in
//     the background, handed out open.
//   - changes from other machines (a pull): the kernel is told by entry and
//     attribute notifications (notify.go); a file whose content changed is
//     a new inode, so cached pages of the old one stay right for the
//     descriptors that still read it.
//   - kernel inodes (and go-fuse's nodes for them): bounded by
//     Config.MaxKernelInodes; the shedder asks the kernel to forget the
//     oldest unused ones.
//
// Semantics are ext4's where a local file system has a choice: the mount
// uses default_permissions, so the kernel checks mode bits, ownership for
// chmod/chown/utimes, sticky directories and setgid stripping; this package
// adds what the kernel leaves to file systems: setgid directories pass
// their group (and, for subdirectories, the setgid bit) on, names longer
// than 255 bytes fail with ENAMETOOLONG, ctime and mtime change where ext4
// changes them. atime is only set explicitly (as with noatime). flock and
// fcntl locks are handled by the kernel (the mount does not ask for lock
// requests), which is exact for a file system mounted on one machine.
//
// Errors: everything below this package returns wrapped Go errors; toErrno
// is the one place that maps them to errno, and logs errors it does not
// know (they become EIO).
//
// Lock order: FS.mu before fileData.mu; never hold fileData.mu while
// taking FS.mu. Two file datas (copy_file_range) are locked in inode
// order. Index calls may be made under fileData.mu; the index never calls
// back. stagingPool.mu and shedder.mu are leaves (taken under fileData.mu
// or go-fuse's locks, nothing under them).
package fs
