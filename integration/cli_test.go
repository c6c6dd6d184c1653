package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/integration/harness"
	"golang.org/x/sys/unix"
)

// cloudfsCmd runs the binary with args and returns its exit code and
// output.
func cloudfsCmd(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(harness.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("run cloudfs: %v", err)
	return 0, ""
}

// TestBadInput: each mistake gets a one-line message and a non-zero exit.
func TestBadInput(t *testing.T) {
	harness.RequireFUSE(t)
	tmp := t.TempDir()
	env := []string{"XDG_DATA_HOME=" + filepath.Join(tmp, "data")}
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(tmp, "full")
	if err := os.MkdirAll(filepath.Join(full, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	live := harness.StartMount(t, harness.MountOptions{})
	roCache := filepath.Join(tmp, "rocache")
	if err := os.Mkdir(roCache, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", roCache).CombinedOutput(); err != nil {
		t.Fatalf("mount read-only tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", roCache).Run() })
	empty := func() string { return t.TempDir() }

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing mountpoint", []string{"mount", "--cache-dir", empty(), filepath.Join(tmp, "nope")}, "does not exist"},
		{"file mountpoint", []string{"mount", "--cache-dir", empty(), file}, "not a directory"},
		{"non-empty mountpoint", []string{"mount", "--cache-dir", empty(), full}, "not empty"},
		{"mounted mountpoint", []string{"mount", "--cache-dir", empty(), live.Dir}, "already mounted"},
		{"unwritable cache dir", []string{"mount", "--cache-dir", filepath.Join(roCache, "c"), empty()}, "cache dir"},
		{"cache dir in use", []string{"mount", "--cache-dir", live.Opts.CacheDir, empty()}, "in use"},
		{"bad option", []string{"mount", "-o", "frobnicate", empty()}, "unknown mount option"},
		{"bad flag", []string{"mount", "--frob", empty()}, "unknown flag"},
		{"no mountpoint", []string{"mount"}, "MOUNTPOINT"},
		{"remote is a file", []string{"mount", "--cache-dir", empty(), file, empty()}, "not a directory"},
		{"background error", []string{"mount", "--background", "--cache-dir", empty(), filepath.Join(tmp, "nope")}, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := cloudfsCmd(t, env, tc.args...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			last := lines[len(lines)-1]
			if code == 0 || !strings.Contains(last, tc.want) || !strings.HasPrefix(last, "cloudfs: ") {
				t.Errorf("exit %d, output:\n%s\nwant a non-zero exit and a last line 'cloudfs: ...%s...'", code, out, tc.want)
			}
		})
	}
	// -o nonempty mounts over a non-empty directory.
	m := harness.StartMount(t, harness.MountOptions{MountPoint: full, Args: []string{"-o", "nonempty"}})
	if _, err := os.Stat(m.Path("x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount over non-empty dir shows the dir below: %v", err)
	}
}

// TestFullCacheDisk fills the cache disk: the writer gets ENOSPC, the
// daemon keeps serving, and nothing closed before is lost. On a 24 MiB
// disk writes go through the daemon, which keeps a reserve for the index.
func TestFullCacheDisk(t *testing.T) { fillCacheDisk(t, 24) }

// TestFullCacheDiskPassthrough is TestFullCacheDisk on a disk large enough
// for passthrough sessions, whose writes bypass the daemon's reserve: the
// index's ballast (fs.Ballast) lets the close, the unlink that frees the
// space and the next file go through.
func TestFullCacheDiskPassthrough(t *testing.T) { fillCacheDisk(t, 400) }

func fillCacheDisk(t *testing.T, mib int) {
	cache := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mib), "tmpfs", cache).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", cache).Run() })
	m := harness.StartMount(t, harness.MountOptions{CacheDir: cache})
	keep := bytes.Repeat([]byte("keep me "), 1000)
	if err := os.WriteFile(m.Path("kept"), keep, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(m.Path("huge"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{0xab}, 1<<20)
	var werr error
	for i := 0; i < 2*mib && werr == nil; i++ {
		_, werr = f.Write(chunk)
	}
	cerr := f.Close()
	if !errors.Is(werr, syscall.ENOSPC) && !errors.Is(cerr, syscall.ENOSPC) {
		t.Fatalf("writing %d MiB to a %d MiB cache disk: write %v, close %v; want ENOSPC", 2*mib, mib, werr, cerr)
	}
	if err := os.Remove(m.Path("huge")); err != nil {
		t.Fatalf("remove after ENOSPC: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // the kernel forgets the inode, freeing its staging file
	if err := os.WriteFile(m.Path("after"), []byte("still serving"), 0o644); err != nil {
		t.Fatalf("write after ENOSPC: %v", err)
	}
	if got, err := os.ReadFile(m.Path("kept")); err != nil || !bytes.Equal(got, keep) {
		t.Fatalf("file closed before ENOSPC: %v", err)
	}
	m.Unmount()
	m.Remount()
	if got, err := os.ReadFile(m.Path("kept")); err != nil || !bytes.Equal(got, keep) {
		t.Fatalf("file closed before ENOSPC after remount: %v", err)
	}
	if got, err := os.ReadFile(m.Path("after")); err != nil || string(got) != "still serving" {
		t.Fatalf("file written after ENOSPC, after remount: %q, %v", got, err)
	}
}

// TestBackgroundAndSignals: --background returns once the mount is live;
// SIGTERM unmounts cleanly.
func TestBackgroundAndSignals(t *testing.T) {
	mnt, cache, env := daemonDirs(t)
	code, out := cloudfsCmd(t, env, "mount", "--background", "--cache-dir", cache, mnt)
	if code != 0 {
		t.Fatalf("background mount: exit %d: %s", code, out)
	}
	if !harness.Mounted(mnt) {
		t.Fatal("background mount returned before the mount was live")
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("bg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		t.Fatalf("unmount: %v %s", err, out)
	}
	waitFor(t, func() bool { return !cacheLocked(cache) }, "the background daemon to exit")

	d := startDaemon(t, env, cache, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "bg" {
		t.Fatalf("after remount: %q %v", got, err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(t, "after SIGTERM"); err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, d.log.String())
	}
	if harness.Mounted(mnt) {
		t.Fatal("still mounted after SIGTERM")
	}

	// A busy mount is detached at SIGTERM; the daemon serves the open
	// file until it is closed, then exits.
	d = startDaemon(t, env, cache, mnt)
	busy, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !harness.Mounted(mnt) }, "the busy mount to be detached")
	if _, err := busy.WriteString("+late"); err != nil {
		t.Errorf("write to a file open across the detach: %v", err)
	}
	if err := busy.Close(); err != nil {
		t.Errorf("close after detach: %v", err)
	}
	if err := d.wait(t, "after the last file closed"); err != nil {
		t.Fatalf("daemon exit after detach: %v\n%s", err, d.log.String())
	}
	backgroundMount(t, env, cache, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "bg+late" {
		t.Errorf("after detach and remount: %q %v", got, err)
	}
}

// daemonDirs returns a mount point, a cache dir and the environment (its
// own data dir) for daemons the test starts itself, and makes sure no
// mount is left on the mount point when the test ends.
func daemonDirs(t *testing.T) (mnt, cache string, env []string) {
	t.Helper()
	harness.RequireFUSE(t)
	mnt, cache = t.TempDir(), t.TempDir()
	env = []string{"XDG_DATA_HOME=" + t.TempDir()}
	// Registered after TempDir, so it runs first: never leave a mount
	// behind for the directory removal to hang on.
	t.Cleanup(func() {
		if harness.Mounted(mnt) {
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	return mnt, cache, env
}

// daemon is a `cloudfs mount` running in the foreground.
type daemon struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer // what it printed
	done chan error    // its exit
}

// startDaemon runs `cloudfs mount --cache-dir cache mnt` in the foreground
// and returns once mnt is mounted.
func startDaemon(t *testing.T, env []string, cache, mnt string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(harness.Binary(t), "mount", "--cache-dir", cache, mnt), log: &bytes.Buffer{}, done: make(chan error, 1)}
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	waitFor(t, func() bool { return harness.Mounted(mnt) }, "the mount")
	return d
}

// wait returns the daemon's exit error; it fails the test if the daemon
// does not exit within 30 s (what names the awaited event).
func (d *daemon) wait(t *testing.T, what string) error {
	t.Helper()
	select {
	case err := <-d.done:
		return err
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
		}
		t.Fatalf("daemon did not exit %s\n%s", what, d.log.String())
		return nil
	}
}

// backgroundMount mounts mnt with `cloudfs mount --background` until the
// test ends.
func backgroundMount(t *testing.T, env []string, cache, mnt string) {
	t.Helper()
	if code, out := cloudfsCmd(t, env, "mount", "--background", "--cache-dir", cache, mnt); code != 0 {
		t.Fatalf("background mount: %d %s", code, out)
	}
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", mnt).Run()
		waitFor(t, func() bool { return !cacheLocked(cache) }, "the background daemon to exit")
	})
}

func cacheLocked(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "lock"))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConnectionAbort aborts the mount's FUSE connection from
// /sys/fs/fuse/connections (what an administrator does to a hung mount):
// the daemon exits non-zero naming the dead mount it leaves, and once that
// is unmounted a new daemon on the same cache dir has every closed file.
func TestConnectionAbort(t *testing.T) {
	mnt, cache, env := daemonDirs(t)
	d := startDaemon(t, env, cache, mnt)
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("before the abort"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	abort := filepath.Join(fusectl(t), fmt.Sprint(unix.Minor(st.Dev)), "abort")
	if err := os.WriteFile(abort, []byte("1"), 0o200); err != nil {
		d.cmd.Process.Kill()
		t.Fatalf("abort the connection: %v", err)
	}
	if err := d.wait(t, "after its connection was aborted"); err == nil {
		t.Fatalf("daemon exited 0 after its connection was aborted\n%s", d.log.String())
	}
	if !strings.Contains(d.log.String(), "FUSE connection of "+mnt+" ended while it was still mounted") {
		t.Errorf("daemon output does not name the dead mount:\n%s", d.log.String())
	}
	if !harness.Mounted(mnt) {
		t.Fatal("the aborted mount is gone: the case this test is about did not happen")
	}
	if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
		t.Fatalf("unmount the dead mount: %v %s", err, out)
	}
	backgroundMount(t, env, cache, mnt)
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != "before the abort" {
		t.Errorf("after the abort and a remount: %q %v", got, err)
	}
}

// fusectl returns the FUSE control file system's directory, mounting it
// (until the test ends) where the machine has not.
func fusectl(t *testing.T) string {
	const dir = "/sys/fs/fuse/connections"
	if harness.Mounted(dir) {
		return dir
	}
	if out, err := exec.Command("mount", "-t", "fusectl", "fusectl", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount fusectl on %s (needs root): %v %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// TestMountThroughSymlink: a mount point reached through a symlink (a
// /home that links to /data/home) mounts, and sync and status find the
// mount by either path; the background daemon's log is the user's alone.
func TestMountThroughSymlink(t *testing.T) {
	mnt, cache, env := daemonDirs(t)
	link := filepath.Join(t.TempDir(), "home")
	if err := os.Symlink(filepath.Dir(mnt), link); err != nil {
		t.Fatal(err)
	}
	via := filepath.Join(link, filepath.Base(mnt))
	if code, out := cloudfsCmd(t, env, "mount", "--background", "--cache-dir", cache, via); code != 0 {
		t.Fatalf("mount through a symlink: exit %d: %s", code, out)
	}
	t.Cleanup(func() {
		exec.Command("fusermount3", "-u", mnt).Run()
		waitFor(t, func() bool { return !cacheLocked(cache) }, "the background daemon to exit")
	})
	if !harness.Mounted(mnt) {
		t.Fatalf("%s is not mounted", mnt)
	}
	if err := os.WriteFile(filepath.Join(via, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{via, mnt} {
		if code, out := cloudfsCmd(t, env, "sync", p); code != 0 {
			t.Errorf("sync %s: exit %d: %s", p, code, out)
		}
		if code, out := cloudfsCmd(t, env, "status", p); code != 0 || !strings.Contains(out, mnt) {
			t.Errorf("status %s: exit %d: %s", p, code, out)
		}
	}
	fi, err := os.Stat(filepath.Join(cache, "cloudfs.log"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("daemon log: %v %v, want mode 0600", fi, err)
	}
}
