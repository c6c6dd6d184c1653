package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The cache dir of a mount holds its index, staging files, chunk cache,
// log and control socket. It is the mounting user's alone: see
// privateCacheDir.

// defaultCacheDir returns the cache dir of a remote mounted without
// --cache-dir: <base>/cloudfs/<identity>. The base is
//
//	$XDG_CACHE_HOME   (when set, for any user)
//	/var/cache        (root: mount(8), fstab and systemd give it no HOME)
//	$HOME/.cache      (any other user; without HOME, the home directory
//	                  of the euid's entry in the password database)
//
// Root keeps using a cache dir of the remote that an older cloudfs made
// under $HOME/.cache, or under root's home in the password database, when
// /var/cache has none: it may hold uploads still queued, and a second,
// empty cache dir next to it would hide them. Only one owned by root
// counts (with a borrowed HOME, sudo's say, the one there may be its
// user's).
//
// The identity is the volume name of the remote (remoteSpec.name) and, for
// an S3 remote at an endpoint other than AWS itself, that endpoint, so the
// same bucket on two endpoints gets two indexes. AWS keeps the name older
// versions used for every endpoint, so their cache dirs are found as they
// are: nothing is renamed (a daemon of the older version may be running in
// it). An older version's cache dir of a custom endpoint has that name too,
// with nothing in it that tells its endpoint; it is not taken for one (it
// may be another endpoint's, and one index for two buckets is what the
// endpoint in the name prevents), and while it is there note says so for
// the caller to log. (A custom endpoint's dir of an older version that a
// later mount at AWS picks up is the one case this cannot tell apart.)
func defaultCacheDir(spec remoteSpec, f s3Flags) (dir, note string, err error) {
	endpoint := ""
	if spec.isS3() {
		if endpoint, err = s3Endpoint(f); err != nil {
			return "", "", err
		}
	}
	return defaultCacheDirAs(os.Geteuid(), spec, endpoint)
}

// defaultCacheDirAs is defaultCacheDir for the user euid and the resolved
// S3 endpoint ("" for AWS or a remote that is not S3).
func defaultCacheDirAs(euid int, spec remoteSpec, endpoint string) (dir, note string, err error) {
	name := cacheName(spec, endpoint)
	base, older, err := cacheBases(euid)
	if err != nil {
		return "", "", err
	}
	dir = filepath.Join(base, "cloudfs", name)
	if !exists(dir) {
		for _, b := range older {
			if d := filepath.Join(b, "cloudfs", name); ownedDir(d, euid) {
				return d, "", nil
			}
		}
	}
	if name != spec.name {
		for _, b := range append([]string{base}, older...) {
			if old := filepath.Join(b, "cloudfs", spec.name); exists(old) {
				note = fmt.Sprintf("cache dir %s, made by an older cloudfs that left the endpoint out of its name, "+
					"is not used for %s at %s (this mount uses %s); if it was this endpoint's, "+
					"the uploads it may still have queued are made by a mount with --cache-dir=%s",
					old, spec.url, endpoint, dir, old)
				break
			}
		}
	}
	return dir, note, nil
}

// cacheName is the identity of a remote's default cache dir: its volume
// name, and for an S3 endpoint other than AWS the endpoint's host and a
// hash of its whole URL (scheme, host, port and path).
func cacheName(spec remoteSpec, endpoint string) string {
	if !spec.isS3() || endpoint == "" {
		return spec.name
	}
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		host = u.Host
	}
	sum := sha256.Sum256([]byte(endpoint))
	return spec.name + "-at-" + unsafeName.ReplaceAllString(host, "-") + "-" + hex.EncodeToString(sum[:4])
}

// cacheBases returns the base of euid's cache dirs (see defaultCacheDir)
// and, for root, the older bases where a cache dir of a remote may already
// be.
func cacheBases(euid int) (base string, older []string, err error) {
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return x, nil, nil
	}
	if euid == 0 {
		if h := os.Getenv("HOME"); h != "" {
			older = append(older, filepath.Join(h, ".cache"))
		}
		if h, err := lookupHome(0); err == nil && h != "" && !slices.Contains(older, filepath.Join(h, ".cache")) {
			older = append(older, filepath.Join(h, ".cache"))
		}
		return "/var/cache", older, nil
	}
	home, err := homeDir(euid)
	if err != nil {
		return "", nil, userError("cannot find the cache directory: %v; set XDG_CACHE_HOME, HOME or --cache-dir", err)
	}
	return filepath.Join(home, ".cache"), nil, nil
}

// homeDir is $HOME, else the home directory of euid in the password
// database (mount(8) and boot-time mounts pass no HOME).
func homeDir(euid int) (string, error) {
	if h := os.Getenv("HOME"); h != "" {
		return h, nil
	}
	h, err := lookupHome(euid)
	if err != nil {
		return "", fmt.Errorf("HOME is not set and uid %d has no home directory in the password database (%v)", euid, err)
	}
	if h == "" {
		return "", fmt.Errorf("HOME is not set and uid %d has no home directory in the password database", euid)
	}
	return h, nil
}

// lookupHome returns the home directory of uid in the password database.
// A variable for the tests.
var lookupHome = func(uid int) (string, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// ownedDir reports whether path is (or leads by symlink to) a directory
// owned by uid.
func ownedDir(path string, uid int) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == uid
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
