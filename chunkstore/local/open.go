package local

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// ErrSymlink is returned (wrapped) for a key whose file, or a directory on
// the way to it below the root, is a symbolic link: the store never follows
// one, which could lead out of its directory.
var ErrSymlink = &chunkstore.Permanent{Err: errors.New("object path is a symbolic link, which the store does not follow")}

// ErrNotRegular is returned (wrapped) for a key whose file is not a
// regular file or a directory (a FIFO, a socket, a device node).
var ErrNotRegular = &chunkstore.Permanent{Err: errors.New("object is not a regular file")}

// open opens the file of key for reading, element by element from the root
// with O_NOFOLLOW, so that no symbolic link below the root is followed
// (ErrSymlink), and only as a regular file (a directory is ErrNotFound,
// anything else ErrNotRegular; O_NONBLOCK keeps a FIFO from blocking the
// open). The root itself is the user's choice and may be a link.
func (s *Store) open(key string) (*os.File, os.FileInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, nil, err
	}
	els := strings.Split(key, "/")
	dir, err := openat(unix.AT_FDCWD, s.root, unix.O_DIRECTORY)
	if err != nil {
		// The store's directory itself is gone (a disk not mounted, a
		// share away): the remote is unreachable, not the object absent.
		return nil, nil, fmt.Errorf("%w: %w", chunkstore.ErrUnreachable, &os.PathError{Op: "open", Path: s.root, Err: err})
	}
	for i, el := range els {
		last := i == len(els)-1
		flags := unix.O_NOFOLLOW | unix.O_DIRECTORY
		if last {
			flags = unix.O_NOFOLLOW | unix.O_NONBLOCK
		}
		fd, err := openat(dir, el, flags)
		if err != nil && (err == unix.ELOOP || err == unix.ENOTDIR) && isLink(dir, el) {
			err = ErrSymlink
		}
		unix.Close(dir)
		if err != nil {
			at := filepath.Join(s.root, filepath.Join(els[:i+1]...))
			if err == ErrSymlink {
				return nil, nil, fmt.Errorf("%s: %w", at, err)
			}
			return nil, nil, notFound(&os.PathError{Op: "open", Path: at, Err: err})
		}
		dir = fd
	}
	f := os.NewFile(uintptr(dir), p)
	fi, err := f.Stat()
	switch {
	case err != nil:
	case fi.IsDir():
		err = fmt.Errorf("%s is a directory: %w", p, chunkstore.ErrNotFound)
	case !fi.Mode().IsRegular():
		err = fmt.Errorf("%s (%s): %w", p, fi.Mode().Type(), ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// openat opens name under dir read-only, close-on-exec, retrying EINTR.
func openat(dir int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// isLink reports whether name under dir is a symbolic link.
func isLink(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// checkDirs fails with ErrSymlink when a directory on the way from the root
// to dir (a directory below the root, or the root) is a symbolic link. Put,
// Delete and List check before they act; as a check before use it does not
// stop a link planted in between, but it keeps the store from writing or
// deleting through links that were in place.
func (s *Store) checkDirs(dir string) error {
	rel, err := filepath.Rel(s.root, dir)
	if err != nil || rel == "." {
		return err
	}
	cur := s.root
	for _, el := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, el)
		fi, err := os.Lstat(cur)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // made, or refused, further on
		}
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s: %w", cur, ErrSymlink)
		}
	}
	return nil
}
