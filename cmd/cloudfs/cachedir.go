package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The cache dir of a mount holds its index, staging files, chunk cache,
// log and control socket. It is the mounting user's alone: see
// privateCacheDir.

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

// prepareCacheDir makes dir private (privateCacheDir), checks that it is
// writable and locks it against a second daemon. The returned file holds
// the lock; keep it open.
func prepareCacheDir(dir string) (*os.File, error) {
	if err := privateCacheDir(dir); err != nil {
		return nil, userError("cache dir: %v", err)
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

// privateCacheDir makes dir a cache dir only the mounting user can enter:
// created with mode 0700 (missing parents too), an existing one with group
// or other permissions tightened to 0700, silently. One of another user is
// refused (makePrivateDir), except for root, which may be pointed at a
// user's directory on purpose (cache_dir= of an fstab mount made for that
// user); it is tightened through a descriptor, so a symlink swapped in
// meanwhile is not followed. dir may be a symlink (the cache on another
// disk, say) to a directory of this user, root included; a symlink to one
// of another user is refused, since whoever owns it controls what the
// daemon writes.
func privateCacheDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	switch {
	case errors.Is(err, unix.ENOENT):
		return makePrivateDir(dir)
	case err != nil:
		return err
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		target, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return err
		}
		if err := makePrivateDir(target); err != nil {
			return fmt.Errorf("%s is a symlink to %s: %w", dir, target, err)
		}
		return nil
	case st.Mode&unix.S_IFMT == unix.S_IFDIR && os.Geteuid() == 0 && st.Uid != 0:
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: dir, Err: err}
		}
		defer unix.Close(fd)
		if err := unix.Fstat(fd, &st); err != nil {
			return &os.PathError{Op: "stat", Path: dir, Err: err}
		}
		if st.Mode&0o077 != 0 {
			if err := unix.Fchmod(fd, 0o700); err != nil {
				return fmt.Errorf("%s: tighten mode %#o: %w", dir, st.Mode&0o777, err)
			}
		}
		return nil
	default:
		return makePrivateDir(dir)
	}
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
