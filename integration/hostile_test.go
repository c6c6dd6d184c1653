package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestBucketModesAreInert: a setuid-root program and a device node that
// another machine put in the bucket give a local user nothing on a default
// mount (nosuid,nodev), and work only where the administrator asked for
// them with -o suid,dev; on a local-directory remote and on MinIO.
func TestBucketModesAreInert(t *testing.T) {
	requireTool(t, "setpriv", "mknod", "id")
	minio := harness.StartMinIO(t)
	t.Run("dir", func(t *testing.T) { bucketModesAreInert(t, t.TempDir(), nil) })
	t.Run("minio", func(t *testing.T) { bucketModesAreInert(t, "s3://"+minio.Bucket+"/inert", minio.Env()) })
}

func bucketModesAreInert(t *testing.T, remote string, env []string) {
	base, err := os.MkdirTemp("", "cloudfs-inert-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mountAt := func(name string, args ...string) *harness.Mount {
		mnt := filepath.Join(base, name)
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		return harness.StartMount(t, harness.MountOptions{Remote: remote, Env: env, MountPoint: mnt,
			Args: append([]string{"-o", "allow_other"}, args...)})
	}

	writer := mountAt("writer")
	idPath, err := exec.LookPath("id")
	if err != nil {
		t.Fatal(err)
	}
	sh(t, writer.Dir, `
		cp `+idPath+` rootid && chown 0:0 rootid && chmod 4755 rootid
		mknod null c 1 3 && chmod 666 null
	`)
	if code, out := cloudfsCmd(t, env, "sync", writer.Dir); code != 0 {
		t.Fatalf("cloudfs sync: exit %d: %s", code, out)
	}
	writer.Unmount()

	plain := mountAt("plain")
	flags := mountFlags(t, plain.Dir)
	for _, want := range []string{"nosuid", "nodev"} {
		if !strings.Contains(","+flags+",", ","+want+",") {
			t.Fatalf("default mount's flags %q lack %s", flags, want)
		}
	}
	if out, err := asNobody(plain.Dir, `./rootid -u`); err != nil || strings.TrimSpace(out) != "65534" {
		t.Fatalf("setuid-root program from the bucket as nobody: %v %q, want euid 65534", err, out)
	}
	if out, err := asNobody(plain.Dir, `echo x > null`); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("device node from the bucket: %v %q, want Permission denied (nodev)", err, out)
	}
	plain.Unmount()

	// The same files where the administrator asked for suid and dev: the
	// checks above can fail.
	opted := mountAt("opted", "-o", "suid,dev")
	if out, err := asNobody(opted.Dir, `./rootid -u`); err != nil || strings.TrimSpace(out) != "0" {
		t.Fatalf("-o suid: %v %q, want euid 0", err, out)
	}
	if out, err := asNobody(opted.Dir, `echo x > null`); err != nil {
		t.Fatalf("-o dev: the device node does not open: %v %q", err, out)
	}
}

// mountFlags returns the per-mount options of the mount at dir
// (/proc/self/mountinfo's sixth field).
func mountFlags(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == dir {
			return f[5]
		}
	}
	t.Fatalf("%s is not in the mount table", dir)
	return ""
}
