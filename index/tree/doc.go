// Package tree is the codec and the pure logic of the remote tree: the
// content-addressed objects that describe one version of the volume in the
// bucket, the diff of two versions and the three-way merge of concurrent
// changes. It does no I/O: objects come in through a Loader callback and go
// out as Object values for the caller to store.
//
// Terms:
//
//   - tree: the object for one directory, a list of entries sorted by name
//     (bytewise) with unique names. Its ID is the BLAKE3-256 hash of its
//     encoding, so equal directories have equal IDs and an unchanged subtree
//     is shared between versions (a Merkle tree). The empty directory has the
//     ID EmptyTreeID; the zero ID is never stored in an object, but Diff and
//     Merge accept it as a root meaning "no tree yet" (empty).
//   - entry: one name in a tree with its type and attributes (mode, owner,
//     mtime, size, xattrs) and its content: chunk refs or a manifest ID for a
//     regular file, a subtree ID and the subtree's totals for a directory, a
//     target for a symlink, a device number for a device node; and, for a
//     name of an inode with several hard links, a link ID and link count.
//   - totals (Stats): files, directories, bytes and chunk refs under a
//     directory, counted by name. A directory entry carries its subtree's,
//     so the totals of a changed tree are summed from the changed
//     directories alone; a commit's Stats are its root tree's.
//   - chunk ref: a chunk ID and its length. A file is the concatenation of its
//     chunks in order; offsets are implied.
//   - manifest: an object that lists the chunk refs of a file with more than
//     MaxInlineChunks chunks, so that directories of large files stay small.
//     Whether a file's refs are inline or in a manifest depends only on their
//     number, so equal files always give equal entries.
//   - commit: an object naming one version of the volume: the root tree ID
//     and the root directory's attributes (it has no entry), the parent
//     commit(s) (two for a merge), the device that wrote it, a time, a
//     generation and the root's totals. The bucket's head holds a commit ID.
//   - generation: 1 for a commit without parents, otherwise one more than
//     the largest generation of its parents. It orders commits without
//     trusting clocks; devices acknowledge the generation they have seen.
//   - base, local, remote: the three inputs of a merge. base is the commit
//     this machine last synced with, local is base plus this machine's changes,
//     remote is the bucket's current head. Changes are what local and remote
//     each did relative to base.
//
// # Encoding
//
// Every object starts with two bytes: a kind byte ('t' tree, 'm' manifest,
// 'c' commit) and a format version (2; version 1 had no totals, manifest
// chunk counts, link counts or root attributes and is refused). The kind byte also separates the
// hash domains: a tree and a manifest never share an ID. Integers are
// unsigned LEB128 varints (encoding/binary Uvarint) and mtimes and commit
// times zig-zag varints (Varint); IDs are 32 raw bytes; strings are a varint
// length and the bytes. The encoding is canonical: each value has exactly one
// encoding, Decode rejects any other (non-minimal varints, unsorted or
// duplicate names, flags for absent fields, a wrong inline/manifest choice),
// so Encode(Decode(b)) == b for every accepted b, and the ID of an object can
// be recomputed from its decoded form. A tree entry is
//
//	name     string (1..255 bytes, no '/' or NUL, not "." or "..")
//	type     byte (Type)
//	flags    byte: 1 xattrs, 2 manifest, 4 link, 8 packed; other bits zero
//	mode     varint (permission bits with setuid, setgid, sticky: <= 0o7777)
//	uid, gid varint (<= 2^32-1)
//	mtime    zig-zag varint, nanoseconds since the Unix epoch
//	content  by type: file: size, then the manifest ID and its chunk count
//	         (flag 2; > MaxInlineChunks, <= size) or a count
//	         (<= MaxInlineChunks) of (ID, length) refs whose lengths sum to
//	         size; dir: subtree ID, then its totals: files, dirs (>= 1),
//	         bytes, chunks; symlink: target string; char/block device:
//	         rdev; fifo, socket: nothing
//	xattrs   if flag 1: count (>= 1), then (name string, value string)
//	         sorted by name, names unique
//	link     if flag 4: LinkID (non-zero), then the link count (>= 2)
//	packed   if flag 8 (files with chunks only): count (>= 1) of locations
//	         (ref, pack ID, offset, length), refs ascending and unique:
//	         chunk number ref of the file is in that pack (chunkstore
//	         pack.go), at most chunkstore.PackChunkMax bytes
//
// Flag 8 came with volume format 3 (packs); the objects' version byte stays
// 2, as a version-2 object without the flag means what it always meant.
//
// A tree is the header, an entry count and the entries. A manifest is the
// header, a count (> MaxInlineChunks) and the refs. A commit is described in
// commit.go.
//
// Binary rather than canonical JSON: on a 10,000-entry directory the binary
// form is about a third of the size and decodes an order of magnitude faster
// (see BenchmarkDecode and BenchmarkDecodeJSONBaseline), and a mount of a
// large volume decodes trees on its lookup path.
//
// Objects are returned uncompressed. The caller stores them in the same
// stored form as chunks (a one-byte header naming raw or zstd, then the
// payload) and the ID is always the hash of the uncompressed encoding, so an
// ID does not depend on the compressor or its version.
package tree
