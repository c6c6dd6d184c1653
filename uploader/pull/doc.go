// Package pull brings the commits other machines make to a volume into
// this machine's index: it notices a new head (Changed: one request, a
// HEAD of the head object), fetches the remote trees the merge needs and
// has the index merge them with what this machine changed
// (index.DB.ApplyPull, tree.Resolve's rules), tells the kernel what
// changed (Notifier), and records in the bucket which commit this device
// has applied (its device record, for gc).
//
// Terms (see package index for base commit, and package tree for merge):
//
//   - pull: making the remote head the index's base commit, merged with
//     the local changes not yet committed; they stay queued, and the
//     uploader's next round commits the merged result on top of the head.
//   - poll: asking whether head changed since the last pull or commit
//     (its ETag), at the cost of one request.
//   - acknowledgement: the device record devices/<id>, rewritten when the
//     base commit moves (at most every AckInterval).
//
// The uploader drives a Puller from its loop, so pulls and rounds never
// overlap: a round that finds head moved, or loses the head swap, pulls
// and tries again. Methods are safe for concurrent use, but Pull must not
// run beside a round.
package pull
