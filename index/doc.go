// Package index is cloudfs's local metadata database: one SQLite file
// (index.db, WAL mode) per mount that holds the whole namespace, where every
// file's bytes are, and what still has to reach the remote store.
//
// Terms:
//
//   - inode: one file, directory, symlink, fifo, socket or device node,
//     identified by a stable inode number (Ino) that is never reused
//     (AUTOINCREMENT), so the numbers handed to the kernel stay valid across
//     remounts. The root directory is RootIno. An inode whose link count
//     dropped to zero (an orphan) stays until the file system calls Forget,
//     because open file descriptors may still use it; Open purges orphans
//     left by a crash.
//   - entry (dentry): a name in a directory pointing at an inode. Each entry
//     carries a cookie, a number unique within its directory that only grows,
//     so a directory listing resumed from a cookie neither repeats nor skips
//     entries that were not changed meanwhile (stable readdir offsets).
//   - extent: a range of a regular file whose bytes are a slice of a chunk
//     (chunk id, offset in the chunk, length). A file's extents do not
//     overlap; a byte below the file size covered by neither an extent nor a
//     staged range is a hole and reads as zero.
//   - staging: local bytes written to a file and not yet uploaded. They live
//     in a sparse staging file (in the cache directory, named by the staging
//     row) at the same offsets as in the file; the staged ranges say which
//     bytes of it are valid. Staged ranges shadow extents.
//   - dirty: an inode whose local state differs from the last remote commit
//     (data, attributes, or a directory's entries). Mutations put the inode
//     on the durable dirty queue in the same transaction; the uploader takes
//     it off once its change is committed remotely.
//   - data version: a per-inode counter bumped by every change of a file's
//     content, so an uploader can tell whether a file changed while it was
//     being uploaded (ReplaceContent).
//   - base commit, tree id: the remote commit this index was last synced
//     with (meta key "base_commit"), and for each directory the id of the
//     remote tree object it was loaded from, with that tree's totals
//     (tree.Stats). A directory whose entries have not been fetched yet is
//     "not loaded" (lazy mount of a remote tree).
//   - link id: the id a remote tree gives the names of one hard-linked
//     inode; the links table maps it to the inode loaded for it (or
//     committed with it), whose link count counts the names in directories
//     not loaded yet too (links.go).
//   - pull: merging a commit another device made into the index and making
//     it the base commit (pull*.go): names this machine left alone take the
//     remote's version, names both changed follow tree.Resolve's rules
//     (conflict copies beside the name), and what the merge leaves
//     different from the remote's trees is queued for the next commit.
//   - displaced inode: one a pull took the last name of (another machine
//     replaced or deleted the file) while it may be open; written
//     afterwards, it comes back as a conflict copy. departed name: a name a
//     local rename took out of a committed directory, which a pull follows
//     to where the inode went.
//
// Durability: the database runs in WAL mode with synchronous=NORMAL, so a
// commit survives a crash of the daemon but may be lost with power: ordinary
// namespace operations and the commit of close(2) behave like ext4 (durable
// at the next fsync). Operations that promise durability against power
// loss (fsync of a file, fsyncdir, close with the sync_close mount option,
// Sync) commit with synchronous=FULL, which fsyncs the WAL before
// returning; since the WAL is one sequential file, that fsync also makes
// every earlier NORMAL commit durable, and Sync does nothing when no NORMAL
// commit happened since the last FULL one.
//
// Caches: besides SQLite's own page caches, the index keeps in memory the
// set of inodes that may have extended attributes (MayHaveXattrs; a
// superset, updated under the write mutex before a commit that adds one
// and after one that removes the last), so the file system answers
// getxattr for the others without a query. Single-statement reads run
// without a transaction, on the write connection when it is idle (its page
// cache is never invalidated by another connection's commit).
//
// Concurrency: all writes go through one connection under one mutex (SQLite
// has a single writer anyway; queueing in Go avoids SQLITE_BUSY); reads use
// a pool of read-only connections that see the last committed state, or the
// idle write connection (never waiting for it). Every method is one
// transaction or one statement. Lock order: DB.wmu, then DB.rmu or the
// xattr set's mutex (both leaves). Errors are wrapped with the operation; the
// sentinels (ErrNotFound, ErrExist, ...) are checked with errors.Is.
package index
