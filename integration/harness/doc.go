// Package harness starts the real parts that cloudfs's end-to-end tests run
// against: a MinIO server on a free 127.0.0.1 port, and the built cloudfs
// binary mounted as a subprocess on a real FUSE mount point.
//
// Everything a harness function starts is registered with t.Cleanup, which
// stops it (unmounts, kills and reaps the process group, removes temporary
// directories) also when the test fails, panics or times out, and prints the
// process's log when the test failed. Missing prerequisites (no minio
// binary, no /dev/fuse, no fusermount3) fail the test; nothing is skipped.
package harness
