// Package bucket reads and writes the objects of a volume's bucket that
// describe its versions: the volume settings, head, commits, trees,
// manifests and device records, and walks what a commit reaches. The
// write-back loop (uploader), the pull of other machines' commits
// (uploader/pull), the lazy mount of a fresh machine and the maintenance
// commands all go through it, so each object has one reader and one
// writer. It does no caching of mutable objects and holds no state beyond
// a Loader's cache of immutable ones.
//
// Terms (see package tree for tree, manifest, commit and generation, and
// package chunkstore for the keys and the stored form):
//
//   - settings: the volume's cloudfs.json (chunkstore.Volume), written
//     once by the first machine with If-None-Match and never changed.
//   - head: the object naming the current commit, its id in hex. It is
//     replaced only by a conditional put on the ETag it had when read
//     (SwapHead), so a writer never overwrites a commit it has not seen.
//   - device record: devices/<id>, one small JSON object per mount (Device)
//     naming the commit it last applied; gc keeps what a live device may
//     still need.
//   - gc mark: gc/<time>-<random>, the objects a garbage collection will
//     delete after a grace period if still unreachable (marks.go); every
//     writer checks its commit against them (Collections).
//   - reachable: an object named by head's commit, its ancestors, and the
//     trees, manifests and chunks (and the bases of delta chunks) they name.
//
// Every object read from the bucket is untrusted: content-addressed objects
// are verified against their id (chunkstore.Decode) and decoded strictly
// (tree.Decode); head and device records are parsed and checked.
package bucket
