package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
	"golang.org/x/sys/unix"
)

// lockSequence is posixtest.FcntlFlockLocksFile's sequence: a write lock
// through one descriptor, then a read lock through another of the same
// process. It returns the second F_SETLK's error.
func lockSequence(t *testing.T, dir string) error {
	t.Helper()
	name := filepath.Join(dir, "locked")
	f1, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	if err := unix.FcntlFlock(f1.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
		t.Fatal(err)
	}
	f2, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	return unix.FcntlFlock(f2.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_RDLCK})
}

// TestLocks checks record, OFD and flock locks on the mount (see
// TestPosix for why this replaces posixtest.FcntlFlockLocksFile).
func TestLocks(t *testing.T) {
	requireTool(t, "flock")
	m := harness.StartMount(t, harness.MountOptions{})
	local, mounted := lockSequence(t, t.TempDir()), lockSequence(t, m.Dir)
	if !errors.Is(mounted, local) && (mounted != nil || local != nil) {
		t.Errorf("same-process F_SETLK: mount returned %v, local disk %v", mounted, local)
	}

	name := m.Path("ofd")
	f1, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f1.Close()
	f2, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	if err := unix.FcntlFlock(f1.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
		t.Fatal(err)
	}
	if err := unix.FcntlFlock(f2.Fd(), unix.F_OFD_SETLK, &unix.Flock_t{Type: unix.F_RDLCK}); err != syscall.EAGAIN {
		t.Errorf("conflicting OFD lock: %v, want EAGAIN", err)
	}
	if err := unix.Flock(int(f1.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f2.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != syscall.EWOULDBLOCK {
		t.Errorf("conflicting flock: %v, want EWOULDBLOCK", err)
	}
	// Another process cannot take the flock this one holds.
	out, err := exec.Command("flock", "--nonblock", "--conflict-exit-code", "9", name, "true").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 9 {
		t.Errorf("flock(1) from another process on a flock-locked file: %v %s, want exit 9", err, strings.TrimSpace(string(out)))
	}
}
