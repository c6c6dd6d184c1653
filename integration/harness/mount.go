package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cloudfs "github.com/cloudfs/cloudfs/fs"
)

// MountTimeout bounds how long Mount waits for the mount to appear in
// /proc/self/mountinfo, and Unmount for the daemon to exit.
var MountTimeout = 60 * time.Second

// MountOptions say how to start `cloudfs mount`. Empty fields get a fresh
// temporary directory (MountPoint, CacheDir) or are left out (Remote: the
// daemon's embedded default store under a temporary XDG_DATA_HOME).
type MountOptions struct {
	Remote     string   // REMOTE argument: "", a directory, or s3://bucket/prefix
	MountPoint string   // where to mount; created if empty
	CacheDir   string   // --cache-dir; created if empty
	Args       []string // extra flags, placed before REMOTE and MOUNTPOINT
	Env        []string // extra environment (e.g. MinIO.Env())
}

// Mount is a running `cloudfs mount` subprocess and its mount point.
type Mount struct {
	t    testing.TB
	Opts MountOptions
	Dir  string // the mount point
	Log  string // path of the daemon's combined stdout/stderr

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // the process's exit status, valid after done
}

// StartMount runs `cloudfs mount` with opts and waits until the mount is
// live. The mount is unmounted and the daemon reaped when the test ends.
func StartMount(t testing.TB, opts MountOptions) *Mount {
	t.Helper()
	RequireFUSE(t)
	if opts.MountPoint == "" {
		opts.MountPoint = t.TempDir()
	}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	m := &Mount{t: t, Opts: opts, Dir: opts.MountPoint}
	t.Cleanup(m.cleanup)
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	return m
}

// RequireFUSE fails the test when this machine cannot mount FUSE file
// systems (no /dev/fuse or no fusermount3).
func RequireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Fatalf("FUSE is required: %v", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		t.Fatalf("FUSE is required: fusermount3 not found (apt-get install fuse3): %v", err)
	}
}

func (m *Mount) args() []string {
	a := []string{"mount", "--cache-dir", m.Opts.CacheDir}
	a = append(a, m.Opts.Args...)
	if m.Opts.Remote != "" {
		a = append(a, m.Opts.Remote)
	}
	return append(a, m.Opts.MountPoint)
}

func (m *Mount) start() error {
	bin := Binary(m.t)
	logf, err := os.CreateTemp("", "cloudfs-mount-*.log")
	if err != nil {
		return err
	}
	m.Log = logf.Name()
	cmd := exec.Command(bin, m.args()...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), m.Opts.Env...)
	if m.Opts.Remote == "" && !hasEnv(m.Opts.Env, "XDG_DATA_HOME") {
		cmd.Env = append(cmd.Env, "XDG_DATA_HOME="+filepath.Join(m.Opts.CacheDir, "..", filepath.Base(m.Opts.CacheDir)+"-data"))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", bin, err)
	}
	logf.Close()
	m.cmd = cmd
	m.done = make(chan struct{})
	go func() {
		m.err = cmd.Wait()
		close(m.done)
	}()
	m.t.Logf("cloudfs mount pid %d: %s", cmd.Process.Pid, strings.Join(cmd.Args, " "))

	deadline := time.Now().Add(MountTimeout)
	for {
		if Mounted(m.Dir) {
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("cloudfs mount exited before mounting (%v); log:\n%s", m.err, m.LogText())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cloudfs mount: %s not mounted after %v; log:\n%s", m.Dir, MountTimeout, m.LogText())
		}
	}
}

// LogText returns what the daemon has logged so far.
func (m *Mount) LogText() string {
	b, err := os.ReadFile(m.Log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Unmount unmounts cleanly (fusermount3 -u, which makes the daemon exit) and
// waits for the daemon to exit, failing the test if it does not or if it
// exits with an error.
func (m *Mount) Unmount() {
	m.t.Helper()
	if m.cmd == nil {
		return
	}
	if err := unmount(m.Dir, false); err != nil {
		m.t.Fatalf("unmount %s: %v", m.Dir, err)
	}
	m.Exited(MountTimeout)
}

// Exited waits up to limit for the daemon to exit after its mount went
// (by Unmount, or by other means such as cloudfs unmount), failing the
// test if it does not or if it exits with an error.
func (m *Mount) Exited(limit time.Duration) {
	m.t.Helper()
	if m.cmd == nil {
		return
	}
	select {
	case <-m.done:
	case <-time.After(limit):
		m.t.Fatalf("cloudfs did not exit within %v of unmount; log:\n%s", limit, m.LogText())
	}
	if m.err != nil {
		m.t.Fatalf("cloudfs exited with %v after unmount; log:\n%s", m.err, m.LogText())
	}
	m.cmd = nil
}

// Kill9 kills the daemon with SIGKILL (no chance to flush anything) and
// removes the now dead mount.
func (m *Mount) Kill9() {
	m.t.Helper()
	if m.cmd == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.done
	m.cmd = nil
	if Mounted(m.Dir) {
		if err := unmount(m.Dir, true); err != nil {
			m.t.Fatalf("unmount dead mount %s: %v", m.Dir, err)
		}
	}
}

// Remount starts the daemon again with the same options (same cache dir and
// mount point) after Unmount or Kill9.
func (m *Mount) Remount() {
	m.t.Helper()
	if m.cmd != nil {
		m.t.Fatal("Remount: still mounted")
	}
	if err := m.start(); err != nil {
		m.t.Fatal(err)
	}
}

// PID returns the daemon's process id (0 when it is not running).
func (m *Mount) PID() int {
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Path joins elem onto the mount point.
func (m *Mount) Path(elem ...string) string {
	return filepath.Join(append([]string{m.Dir}, elem...)...)
}

func (m *Mount) cleanup() {
	if m.cmd != nil {
		if Mounted(m.Dir) {
			if err := unmount(m.Dir, false); err != nil {
				unmount(m.Dir, true)
			}
		}
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-m.done
		}
		if Mounted(m.Dir) {
			unmount(m.Dir, true)
		}
		m.cmd = nil
	}
	if m.t.Failed() && m.Log != "" {
		m.t.Logf("cloudfs log (%s):\n%s", m.Log, m.LogText())
	}
	if m.Log != "" {
		os.Remove(m.Log)
	}
}

func unmount(dir string, lazy bool) error {
	args := []string{"-u"}
	if lazy {
		args = append(args, "-z")
	}
	var out []byte
	var err error
	// A busy mount (a test's open file, a kernel lookup in flight) is retried briefly.
	for i := 0; i < 50; i++ {
		out, err = exec.Command("fusermount3", append(args, dir)...).CombinedOutput()
		if err == nil || !Mounted(dir) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("fusermount3 %v: %v: %s", args, err, bytes.TrimSpace(out))
}

// Mounted reports whether dir is a mount point in this process's mount
// namespace (per /proc/self/mountinfo).
func Mounted(dir string) bool {
	_, mounted, err := cloudfs.MountType(dir)
	return err == nil && mounted
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}
