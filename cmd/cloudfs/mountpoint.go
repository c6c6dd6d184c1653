package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cloudfs/cloudfs/fs"
)

// checkMountpoint returns dir as an absolute path with no symlinks, or
// reports, as a one-line user error, why it cannot be mounted on.
func checkMountpoint(dir string, nonempty bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", userError("mountpoint %s: %v", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return "", userError("mountpoint %s is a dead mount (its daemon is gone): run fusermount3 -u %s", abs, abs)
	case errors.Is(err, os.ErrNotExist):
		return "", userError("mountpoint %s does not exist", abs)
	case err != nil:
		return "", userError("mountpoint %s: %v", abs, err)
	case !fi.IsDir():
		return "", userError("mountpoint %s is not a directory", abs)
	}
	// Mount on the directory itself: fusermount refuses a path through a
	// symlink, and the mount table (which sync and status look the
	// mount up in) names the resolved path.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", userError("mountpoint %s: %v", dir, err)
	}
	if mounted, err := isMountpoint(abs); err != nil {
		return "", err
	} else if mounted {
		return "", userError("mountpoint %s is already mounted", abs)
	}
	if !nonempty {
		d, err := os.Open(abs)
		if err != nil {
			return "", userError("mountpoint %s: %v", abs, err)
		}
		_, err = d.Readdirnames(1)
		d.Close()
		if err == nil {
			return "", userError("mountpoint %s is not empty (use -o nonempty to mount over it)", abs)
		}
		if err != io.EOF {
			return "", userError("mountpoint %s: %v", abs, err)
		}
	}
	return abs, nil
}

// isMountpoint reports whether dir (absolute) is a mount point.
func isMountpoint(dir string) (bool, error) {
	_, mounted, err := fs.MountType(dir)
	return mounted, err
}
