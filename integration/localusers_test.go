package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestOtherUsersGetNothing: another local user (nobody) on a machine where
// root mounts with allow_other can use the files as their modes allow, and
// nothing else: the cache dir (made world-writable beforehand) is
// tightened to the owner, its index and log are unreadable, and cloudfs
// status and sync on the mount are refused.
func TestOtherUsersGetNothing(t *testing.T) {
	requireTool(t, "setpriv")
	base, err := os.MkdirTemp("", "cloudfs-users-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	cache, mnt := filepath.Join(base, "cache"), filepath.Join(base, "mnt")
	for _, d := range []string{cache, mnt} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	m := harness.StartMount(t, harness.MountOptions{Remote: t.TempDir(), MountPoint: mnt, CacheDir: cache,
		Args: []string{"-o", "allow_other"}})
	if err := os.WriteFile(m.Path("shared.txt"), []byte("for everyone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir after the mount: %v, %v; want 0700", fi.Mode(), err)
	}
	if out, err := asNobody(base, `cat mnt/shared.txt`); err != nil || out != "for everyone" {
		t.Fatalf("nobody reading a 0644 file: %v %q", err, out)
	}
	for _, f := range []string{"index.db", "staging"} {
		if out, err := asNobody(base, `ls -l cache/`+f); err == nil || !strings.Contains(out, "Permission denied") {
			t.Fatalf("nobody reaching cache/%s: %v %q", f, err, out)
		}
	}
	bin := filepath.Join(base, "cloudfs")
	exe, err := os.ReadFile(harness.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"status", "sync"} {
		out, err := asNobody(base, bin+" "+op+" "+mnt)
		t.Logf("nobody: cloudfs %s: %v: %s", op, err, strings.TrimSpace(out))
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !strings.Contains(out, "permission denied") {
			t.Fatalf("nobody running cloudfs %s: %v\n%s", op, err, out)
		}
	}
}
