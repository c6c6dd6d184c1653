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
