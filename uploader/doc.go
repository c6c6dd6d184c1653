// Package uploader is cloudfs's write-back loop: it takes files off the
// index's durable dirty queue, uploads their content as content-defined
// chunks, and commits a new version of the remote tree.
//
// Terms (see package index for inode, extent, staging and dirty, and
// package tree for tree, manifest and commit):
//
//   - round: one pass of the loop. It takes the settled queue entries (no
//     change for Options.SettleDelay, retry time come), takes a snapshot,
//     uploads and commits, then records the result in the index. Rounds
//     run one at a time, on the uploader's own lifetime context (Run's),
//     never on the context of the file system request that queued a file.
//   - snapshot: a consistent view of what the commit must write
//     (index.Snapshot): the directories that changed, rebuilt from the
//     index, and the content state of their files (data version, staged
//     ranges, extents). A file's staged bytes are read after the snapshot
//     and checked afterwards (index.ContentCurrent): bytes read while the
//     file changed are read again, so writers are never blocked.
//   - commit: a commit object naming the new root tree and its parent (the
//     base commit); written after every chunk and tree it names is in the
//     store and every chunk the new entries name was checked with Stat (or
//     put by the round itself). A file's chunks are uploaded while the
//     file is still being cut (cache.Uploads).
//   - head: the store object holding the current commit's id (hex). A
//     round replaces it only with a conditional put on the ETag it read
//     (If-None-Match for the first commit), so a concurrent writer is never
//     overwritten. Before the swap the commit is recorded as pending in the
//     index; a round that finds head equal to its pending commit knows the
//     earlier swap succeeded although its reply (or the index update) was
//     lost, and builds on it.
//   - orphan candidate: an object (chunk, tree, manifest or commit) a
//     failed round wrote. It is recorded in the index with a time; gc
//     deletes it once no commit it must keep references it and a grace
//     period has passed. Never delete at once: another machine may have
//     found the same content-addressed object present and committed it.
//
// Failure: any error before the head swap leaves head and the index as
// they were; the round's objects become orphan candidates and its queue
// entries get the error and a retry time (exponential backoff with jitter,
// Options.MinBackoff to MaxBackoff). Errors retrying cannot heal
// (chunkstore.IsPermanent, a file whose staged bytes vanished) mark the
// entry failed until the file changes again (or SyncNow, or the next Run).
// A lost head race (another device committed, found before the upload or at
// the head swap) pulls that commit through Options.Puller, which merges it
// into the index with the queued changes (package uploader/pull,
// index.DB.ApplyPull), and starts the round again on top of it; without a
// Puller it is ErrHeadMoved and everything stays queued. Run also polls
// head every Options.PullInterval and pulls what is new.
package uploader
