package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// A private dir is a directory only its owner may enter: the runtime dir,
// whose files tell the commands which socket to trust. Another local user
// who can create a name before we do (under /tmp, say) must not be able to
// plant a directory, a symlink or a file there that we then follow.

// makePrivateDir creates dir (mode 0700) if it is missing and checks that
// it is a real directory (not a symlink) owned by this user; one owned by
// us with wider permissions is tightened. The parent must exist.
func makePrivateDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return err
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%s is a symlink (refusing to follow it)", dir)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", dir)
	case int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d)", dir, st.Uid, os.Geteuid())
	case st.Mode&0o077 != 0:
		if err := unix.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%s: tighten mode %#o: %w", dir, st.Mode&0o777, err)
		}
	}
	return nil
}

// trustedUID reports whether a file or peer of uid may speak for a
// daemon to this user: it is this user or root.
func trustedUID(uid uint32) bool {
	return uid == 0 || int(uid) == os.Geteuid()
}

// readTrusted reads the file at path if neither it nor its directory is a
// symlink, and both belong to this user or root, and the directory is not
// writable by others; it returns os.ErrNotExist for a missing file and a
// descriptive error for an untrusted one.
func readTrusted(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	var ds unix.Stat_t
	if err := unix.Lstat(dir, &ds); err != nil {
		return nil, err
	}
	if ds.Mode&unix.S_IFMT != unix.S_IFDIR || !trustedUID(ds.Uid) || ds.Mode&0o022 != 0 {
		return nil, fmt.Errorf("%s is not a private directory of this user or root (mode %#o, uid %d)", dir, ds.Mode&0o7777, ds.Uid)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s is a symlink (refusing to follow it)", path)
		}
		return nil, err
	}
	defer f.Close()
	var fst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
		return nil, err
	}
	if fst.Mode&unix.S_IFMT != unix.S_IFREG || !trustedUID(fst.Uid) {
		return nil, fmt.Errorf("%s is not a regular file of this user or root (uid %d)", path, fst.Uid)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTrustedFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxTrustedFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxTrustedFile)
	}
	return b, nil
}

// maxTrustedFile bounds what readTrusted reads (a runtime file is a few
// hundred bytes).
const maxTrustedFile = 64 << 10

// peerUID returns the uid of the process at the other end of the unix
// socket c (SO_PEERCRED: the credentials it had when it connected or
// listened).
func peerUID(c net.Conn) (uint32, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, fmt.Errorf("not a unix socket: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	return cred.Uid, nil
}
