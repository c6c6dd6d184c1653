package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudfs/cloudfs/fs"
)

// The runtime file records, for each live mount, where its daemon's
// control socket is, so that `cloudfs sync MOUNTPOINT` and `cloudfs status
// MOUNTPOINT` can find the daemon from the mount point alone. It is
// <runtime dir>/<escaped mount point>.json, written once the mount is live
// and removed when the daemon exits; the runtime dir is the first of
//
//	$XDG_RUNTIME_DIR/cloudfs    (a user's session)
//	/run/cloudfs                (root: mount(8), fstab, systemd units)
//	$TMPDIR/cloudfs-<uid>       (anything else)
//
// that applies to the daemon. Clients look in all three, so a mount made by
// root from a unit is found from a root shell with a session too. Clients
// first check /proc/self/mountinfo that the directory is a live cloudfs
// mount, so a file left by a killed daemon is never trusted on its own.
type runtimeInfo struct {
	Mountpoint string `json:"mountpoint"`
	CacheDir   string `json:"cache_dir"`
	Socket     string `json:"socket"`
	Remote     string `json:"remote"`
	PID        int    `json:"pid"`
}

// fuseType is the file system type of a cloudfs mount in the mount table
// ("fuse." and the name fs.Mount gives go-fuse).
const fuseType = "fuse.cloudfs"

// runtimeDirs returns the candidate runtime dirs, the daemon's first.
func runtimeDirs() []string {
	var dirs []string
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		if fi, err := os.Stat(x); err == nil && fi.IsDir() {
			dirs = append(dirs, filepath.Join(x, "cloudfs"))
		}
	}
	if os.Geteuid() == 0 {
		dirs = append(dirs, "/run/cloudfs")
	}
	dirs = append(dirs, filepath.Join(os.TempDir(), "cloudfs-"+strconv.Itoa(os.Geteuid())))
	if os.Geteuid() != 0 {
		dirs = append(dirs, "/run/cloudfs") // readable only if root let it be
	}
	return dirs
}

// runtimeName is the file name of mount point mp (absolute): its path
// made file-name-safe, with a hash so distinct paths never collide.
func runtimeName(mp string) string {
	sum := sha256.Sum256([]byte(mp))
	base := strings.Trim(unsafeName.ReplaceAllString(mp, "-"), "-")
	if len(base) > 64 {
		base = base[len(base)-64:]
	}
	return base + "-" + hex.EncodeToString(sum[:4]) + ".json"
}

// writeRuntime records info in the daemon's runtime dir and returns the
// file's path (to remove at exit). The dir is made private first (see
// makePrivateDir) and the file is written under a fresh temporary name
// (O_EXCL) and renamed into place, so nothing another user planted there
// is followed or overwritten.
func writeRuntime(info runtimeInfo) (string, error) {
	dir := runtimeDirs()[0]
	if err := makePrivateDir(dir); err != nil {
		return "", fmt.Errorf("runtime dir: %w", err)
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, runtimeName(info.Mountpoint))
	f, err := os.CreateTemp(dir, runtimeName(info.Mountpoint)+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("runtime file: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("runtime file: %w", err)
	}
	return path, nil
}

// findRuntime returns the runtime record of the cloudfs mount at mnt, or a
// one-line user error saying why there is none.
func findRuntime(mnt string) (runtimeInfo, error) {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return runtimeInfo{}, userError("%s: %v", mnt, err)
	}
	// A dead mount (ENOTCONN) cannot be resolved: use the path as given.
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	typ, mounted, err := mountType(abs)
	if err != nil {
		return runtimeInfo{}, err
	}
	if !mounted {
		if _, err := os.Lstat(abs); errors.Is(err, os.ErrNotExist) {
			return runtimeInfo{}, userError("%s is not a cloudfs mount (it does not exist)", abs)
		}
		return runtimeInfo{}, userError("%s is not a cloudfs mount (nothing is mounted there)", abs)
	}
	if typ != fuseType {
		return runtimeInfo{}, userError("%s is not a cloudfs mount (it is %s)", abs, typ)
	}
	dirs := runtimeDirs()
	name := runtimeName(abs)
	// A daemon writes its runtime file just after its mount appears: one
	// that is starting gets a moment.
	for deadline := time.Now().Add(runtimeWait); ; {
		for _, d := range dirs {
			b, err := readTrusted(filepath.Join(d, name))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return runtimeInfo{}, &exitError{code: 1, msg: fmt.Sprintf("%s: untrusted runtime file: %v", abs, err)}
			}
			var info runtimeInfo
			if err := json.Unmarshal(b, &info); err != nil || info.Socket == "" {
				return runtimeInfo{}, &exitError{code: 1, msg: fmt.Sprintf("%s: bad runtime file %s", abs, filepath.Join(d, name))}
			}
			return info, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return runtimeInfo{}, &exitError{code: 1, msg: fmt.Sprintf("%s is a cloudfs mount, but its daemon left no runtime file "+
		"(looked for %s in %s; was it mounted by another user?)", abs, name, strings.Join(dirs, ", "))}
}

// runtimeWait is how long the commands wait for the runtime file of a
// mount that is there (its daemon may be starting).
const runtimeWait = 2 * time.Second

// mountType returns the file system type of the mount at dir and whether
// dir is a mount point.
func mountType(dir string) (typ string, mounted bool, err error) {
	return fs.MountType(dir)
}
