package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func mkdirOwned(t *testing.T, dir string, uid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if uid != os.Geteuid() {
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrivateCacheDir(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	fresh := filepath.Join(base, "new", "parent", "vol")
	lock, err := prepareCacheDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	lock.Close()
	for _, d := range []string{fresh, filepath.Dir(fresh), filepath.Dir(filepath.Dir(fresh))} {
		if m := mode(d); m != 0o700 {
			t.Errorf("%s made with mode %v, want 0700", d, m)
		}
	}

	wide := filepath.Join(base, "wide")
	os.Mkdir(wide, 0o755)
	os.Chmod(wide, 0o775)
	if err := privateCacheDir(wide); err != nil || mode(wide) != 0o700 {
		t.Errorf("wide cache dir: %v, mode %v; want tightened to 0700", err, mode(wide))
	}

	// Root may use a directory of another user it is pointed at, tightened.
	theirs := filepath.Join(base, "theirs")
	mkdirOwned(t, theirs, otherUID)
	os.Chmod(theirs, 0o755)
	if err := privateCacheDir(theirs); err != nil || mode(theirs) != 0o700 {
		t.Errorf("root, another user's dir: %v, mode %v; want used, 0700", err, mode(theirs))
	}

	// A symlink to a directory of this user is followed and the target
	// tightened; one to another user's is refused.
	own := filepath.Join(base, "own-target")
	os.Mkdir(own, 0o755)
	os.Chmod(own, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink(own, link)
	if err := privateCacheDir(link); err != nil || mode(own) != 0o700 {
		t.Errorf("symlink to own dir: %v, target mode %v; want used, 0700", err, mode(own))
	}
	other := filepath.Join(base, "other-link")
	os.Symlink(theirs, other)
	_, err = prepareCacheDir(other)
	if err == nil || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), "uid 65534") ||
		strings.Contains(err.Error(), "\n") {
		t.Errorf("symlink to another user's dir: %v, want refused in one line", err)
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := prepareCacheDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as cache dir: %v", err)
	}
}

// TestPrivateCacheDirOtherUser runs prepareCacheDir as an unprivileged user
// on a world-writable directory of root's: refused, since its owner
// controls what the daemon reads and writes there.
func TestPrivateCacheDirOtherUser(t *testing.T) {
	needRoot(t)
	base := openTempDir(t)
	rootDir := filepath.Join(base, "roots")
	os.Mkdir(rootDir, 0o777)
	os.Chmod(rootDir, 0o777)
	ownDir := filepath.Join(base, "own")
	mkdirOwned(t, ownDir, otherUID)
	os.Chmod(ownDir, 0o777)

	bin := filepath.Join(openTempDir(t), "cmd.test")
	copyExecutable(t, os.Args[0], bin)
	run := func(dir string) string {
		cmd := exec.Command(bin, "-test.run", "^TestPrivateCacheDirHelper$")
		cmd.Env = append(os.Environ(), "CLOUDFS_TEST_CACHEDIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid %d: %v\n%s", otherUID, err, out)
		}
		return string(out)
	}
	if out := run(rootDir); !strings.Contains(out, "result: cache dir: "+rootDir+" belongs to uid 0, not to this user (uid 65534)\n") {
		t.Errorf("root's dir as another user's cache dir:\n%s", out)
	}
	if out := run(ownDir); !strings.Contains(out, "result: ok\n") {
		t.Errorf("the user's own dir:\n%s", out)
	}
	if fi, err := os.Stat(ownDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the user's own dir left at %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

// TestPrivateCacheDirHelper is TestPrivateCacheDirOtherUser's other user.
func TestPrivateCacheDirHelper(t *testing.T) {
	dir := os.Getenv("CLOUDFS_TEST_CACHEDIR")
	if dir == "" {
		return // run only as the helper
	}
	lock, err := prepareCacheDir(dir)
	if err != nil {
		fmt.Printf("result: %v\n", err)
		return
	}
	lock.Close()
	fmt.Println("result: ok")
}
