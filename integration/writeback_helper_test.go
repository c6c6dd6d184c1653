package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestWritebackMountHelper mounts an s3:// volume the ways /etc/fstab and
// systemd do: `mount -t fuse.cloudfs` (mount(8) -> mount.fuse3 -> `cloudfs
// REMOTE MOUNTPOINT -o ...`), a line of an fstab file (`mount -T`), the
// binary called as mount.cloudfs, and /sbin/mount.fuse.cloudfs as make
// install links it; `umount` unmounts each and its daemon exits.
//
// It runs in a private mount namespace (unshare -m) in which a directory
// holding the binary under test is bind-mounted over /usr/local/bin, where
// the shell that mount.fuse3 starts (with no PATH) finds cloudfs, and
// later over /usr/sbin (= /sbin); nothing outside the namespace changes.
func TestWritebackMountHelper(t *testing.T) {
	requireTool(t, "mount", "umount", "unshare")
	if os.Geteuid() != 0 {
		t.Fatal("mount(8) of fuse.cloudfs needs root (CI runs the integration tier as root)")
	}
	m := harness.StartMinIO(t)
	bin := harness.Binary(t)
	binDir, sbinDir := t.TempDir(), t.TempDir()
	for _, l := range []string{filepath.Join(binDir, "cloudfs"), filepath.Join(binDir, "mount.cloudfs"),
		filepath.Join(sbinDir, "mount.fuse.cloudfs")} {
		if err := os.Symlink(bin, l); err != nil {
			t.Fatal(err)
		}
	}
	var mnts, caches []string
	for range 4 {
		mnts, caches = append(mnts, t.TempDir()), append(caches, t.TempDir())
	}
	remote := "s3://" + m.Bucket + "/helper"
	fstab := filepath.Join(t.TempDir(), "fstab")
	line := remote + " " + mnts[1] + " fuse.cloudfs cache_dir=" + caches[1] + ",endpoint=" + m.Endpoint +
		",settle_delay=0,noauto,_netdev,nofail,x-systemd.automount,x-systemd.idle-timeout=60 0 0\n"
	if err := os.WriteFile(fstab, []byte("# a test fstab\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `set -eu
cleanup() { for d in "$MNT0" "$MNT1" "$MNT2" "$MNT3"; do umount -l "$d" 2>/dev/null || true; done; }
trap cleanup EXIT
fstype() { awk -v d="$1" '$5 == d { for (i = 7; i <= NF; i++) if ($i == "-") print $(i + 1) }' /proc/self/mountinfo; }
mount --bind "$BIN_DIR" /usr/local/bin

mount -t fuse.cloudfs "$REMOTE" "$MNT0" -o "cache_dir=$CACHE0,settle_delay=0,endpoint=$EP,region=us-east-1,allow_other,_netdev,x-systemd.automount"
echo "type: $(fstype "$MNT0")"
echo "via mount -t" > "$MNT0/a.txt"
cloudfs sync "$MNT0"
umount "$MNT0"

mount -T "$FSTAB" "$MNT1"
echo "type: $(fstype "$MNT1")"
echo "read: $(cat "$MNT1/a.txt")"
echo "via fstab" > "$MNT1/b.txt"
cloudfs sync "$MNT1"
umount "$MNT1"

mount.cloudfs "$REMOTE" "$MNT2" -o "cache_dir=$CACHE2,endpoint=$EP,ro"
echo "read: $(cat "$MNT2/b.txt")"
if (echo no > "$MNT2/c.txt") 2>/dev/null; then echo "ro mount is writable"; exit 1; fi
umount "$MNT2"

mount --bind "$SBIN_DIR" /usr/sbin
mount -t fuse.cloudfs "$REMOTE" "$MNT3" -o "cache_dir=$CACHE3,endpoint=$EP"
echo "type: $(fstype "$MNT3")"
echo "read: $(cat "$MNT3/a.txt") $(cat "$MNT3/b.txt")"
umount "$MNT3"
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AWS_") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	for _, e := range m.Env() {
		if !strings.HasPrefix(e, "AWS_ENDPOINT_URL=") { // endpoint= must do it
			cmd.Env = append(cmd.Env, e)
		}
	}
	cmd.Env = append(cmd.Env, "BIN_DIR="+binDir, "SBIN_DIR="+sbinDir, "REMOTE="+remote, "EP="+m.Endpoint, "FSTAB="+fstab)
	for i := range mnts {
		cmd.Env = append(cmd.Env, "MNT"+string(rune('0'+i))+"="+mnts[i], "CACHE"+string(rune('0'+i))+"="+caches[i])
	}
	out, err := cmd.CombinedOutput()
	t.Logf("script output:\n%s", out)
	if err != nil {
		for _, c := range caches {
			if b, rerr := os.ReadFile(filepath.Join(c, "cloudfs.log")); rerr == nil {
				t.Logf("daemon log %s:\n%s", c, b)
			}
		}
		t.Fatalf("mount helper script: %v", err)
	}
	want := "type: fuse.cloudfs\ntype: fuse.cloudfs\nread: via mount -t\nread: via fstab\ntype: fuse.cloudfs\nread: via mount -t via fstab\n"
	if string(out) != want {
		t.Fatalf("script output %q, want %q", out, want)
	}
	for _, c := range caches {
		waitFor(t, func() bool { return !cacheLocked(c) }, "the daemon of "+c+" to exit after umount")
	}
	store := s3Volume{m: m, prefix: "helper"}.store(t)
	for _, name := range []string{"a.txt", "b.txt"} {
		if _, ok := rootEntrySize(t, store, name); !ok {
			t.Errorf("%s is not in the bucket's head", name)
		}
	}
}
