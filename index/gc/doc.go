// Package gc is cloudfs's garbage collection: it deletes the objects of a
// volume that nothing it keeps can reach, without a lock, while other
// machines write.
//
// Terms (see package bucket for reachable, device record and gc mark):
//
//   - kept commit: head; the newest KeepLast commits of its history and
//     those made within KeepWithin (the retention policy); each live
//     device's acknowledged commit; every commit object younger than the
//     grace period (one in flight on another machine, about to become
//     head).
//   - live device: one whose record was written within DeviceExpiry. A
//     device unseen for longer no longer holds anything back.
//   - reachable: named by a kept commit's tree (trees, manifests, chunks,
//     packs), or the base of a reachable delta.
//   - grace period: an object younger than it is never marked, so that
//     an upload in flight is never broken; and marked objects are deleted
//     by a run at least one grace period after their mark.
//   - mark and sweep: a run marks (writes a gc mark naming) the objects
//     that are unreachable and older than the grace period, and sweeps
//     the marks of earlier runs whose grace period has passed: it deletes
//     each marked object still unreachable, and then the mark. A writer
//     whose commit names a marked object must swap head before the mark's
//     deadline (bucket.Collections), so a sweep, which reads head after
//     the deadline, sees every commit that names what it deletes.
//   - freed: deleted by the sweep (or, in a dry run, that would be).
//
// A collection needs two runs at least one grace period apart to delete
// anything; run it periodically (cron, a systemd timer). It reads every
// kept commit's trees and the header of every reachable chunk object
// (deltas name their base there), and lists the bucket once.
package gc
