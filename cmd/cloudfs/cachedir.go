package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// defaultCacheDir is $XDG_CACHE_HOME/cloudfs/<volume name>.
func defaultCacheDir(volume string) (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", userError("cannot find the cache directory: set XDG_CACHE_HOME, HOME or --cache-dir")
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "cloudfs", volume), nil
}

// prepareCacheDir creates dir, checks that it is writable and locks it
// against a second daemon. The returned file holds the lock; keep it open.
func prepareCacheDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, userError("cache dir %s: %v", dir, unwrapPath(err))
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, userError("cache dir %s is not writable: %v", dir, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, userError("cache dir %s: %v", dir, unwrapPath(err))
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, userError("cache dir %s is in use by another cloudfs mount", dir)
		}
		return nil, userError("cache dir %s: lock: %v", dir, err)
	}
	return lock, nil
}

// unwrapPath drops the *PathError wrapper whose path the message already
// names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
