// Package chunkstore holds everything below the filesystem that touches chunk
// bytes: content-defined chunking, chunk IDs, the object Store interface and
// its decorators, and the local chunk cache.
//
// Terms:
//
//   - object: a named byte string in a Store (a bucket key, a file in a
//     directory). Keys are slash-separated relative paths such as
//     "chunks/ab/<id>" or "head".
//   - chunk: a piece of file content cut by the content-defined chunker
//     (restic/chunker with the volume's polynomial). Chunks are immutable.
//   - ID: the BLAKE3-256 hash of a chunk's plaintext. Two chunks with equal
//     IDs are the same bytes, so a chunk is stored once however many files
//     and versions use it.
//   - stored form: what a chunk object holds in the Store: a one-byte header
//     naming the encoding (raw or zstd) followed by the payload.
//   - ETag: an opaque version token of a mutable object (head, the volume
//     settings), used for conditional writes (optimistic locking).
//
// This package imports no other cloudfs package.
package chunkstore
