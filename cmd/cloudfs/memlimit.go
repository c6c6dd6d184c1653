package main

import (
	"os"
	"runtime/debug"
)

// defaultMemoryLimit is the daemon's soft Go heap limit when GOMEMLIMIT is
// not set. With the default GOGC the heap may grow to twice what is live
// before a collection; near this limit the collector runs earlier instead.
// What is live stays well below it: the kernel is made to forget inodes
// beyond fs.Config.MaxKernelInodes, and SQLite's caches (outside the Go
// heap) are a few MiB per connection. A live heap above it is not an
// error: the collector's CPU share is capped and the heap grows.
const defaultMemoryLimit = 112 << 20

// setMemoryLimit applies defaultMemoryLimit unless the environment chose a
// limit (GOMEMLIMIT, read by the Go runtime itself).
func setMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
}

// Chunk plaintexts in the daemon's memory during a sequential read: the
// readahead window ahead of the reader (fs.Config.Readahead: 16 chunks of
// 1 MiB on average, enough to keep the eight parallel GETs busy) and the
// cache's memory layer of verified chunks (cache.WithMemoryLimit), which
// must hold that window or prefetched chunks are read back from disk and
// hashed again. Both count against the heap limit above: with a 32 MiB
// window and a 64 MiB layer a cold read of 512 MiB ran 39-45 collections
// and 65,000-74,000 page faults of fresh heap; with these 18-20 and
// 33,000-45,000, and 5-7% less daemon CPU (docs/DESIGN.md).
const (
	readahead   = 16 << 20
	chunkMemory = 32 << 20
)
