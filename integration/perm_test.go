package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// asNobody runs script as uid/gid 65534 without supplementary groups.
func asNobody(dir, script string) (string, error) {
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPermissions checks ext4's permission semantics for an unprivileged
// user on an allow_other mount (the daemon runs as root).
func TestPermissions(t *testing.T) {
	requireTool(t, "setpriv")
	base, err := os.MkdirTemp("", "cloudfs-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	m := harness.StartMount(t, harness.MountOptions{MountPoint: mnt, Args: []string{"-o", "allow_other"}})
	sh(t, m.Dir, `
		mkdir -m 1777 sticky
		printf x > rootfile && chmod 644 rootfile
		printf y > open666 && chmod 666 open666
		mkdir -m 2775 sgid && chgrp 100 sgid
		mkdir -m 700 private
		printf r > sticky/roots && chmod 666 sticky/roots
		printf s > suid && chmod 4777 suid
		printf g > sgidexec && chmod 2777 sgidexec
		printf t > suidtrunc && chmod 4777 suidtrunc
		printf o > suidotrunc && chmod 4777 suidotrunc
		printf n > sgidnoexec && chmod 2766 sgidnoexec
	`)
	for _, tc := range []struct {
		name, script, want string // want: "" for success, else a message
	}{
		{"write others' 0644 file", `printf z >> rootfile`, "Permission denied"},
		{"create in others' 0755 dir", `touch newfile`, "Permission denied"},
		{"list others' 0700 dir", `ls private`, "Permission denied"},
		{"chmod others' file", `chmod 777 open666`, "Operation not permitted"},
		{"set explicit times on others' writable file", `touch -d 2000-01-01 open666`, "Operation not permitted"},
		{"touch others' writable file to now", `touch open666`, ""},
		{"write others' 0666 file", `printf more >> open666`, ""},
		{"chown own file", `printf a > sticky/mine && chown 0 sticky/mine`, "Operation not permitted"},
		{"chgrp own file to a foreign group", `chgrp 100 sticky/mine`, "Operation not permitted"},
		{"delete others' file in sticky dir", `rm -f sticky/roots`, "Operation not permitted"},
		{"rename others' file in sticky dir", `mv sticky/roots sticky/moved`, "Operation not permitted"},
		{"delete own file in sticky dir", `printf b > sticky/mine2 && rm sticky/mine2`, ""},
		{"write setuid file clears setuid", `printf more >> suid && [ "$(stat -c %a suid)" = 777 ]`, ""},
		{"write setgid file clears setgid", `printf more >> sgidexec && [ "$(stat -c %a sgidexec)" = 777 ]`, ""},
		{"truncate setuid file clears setuid", `truncate -s 1 suidtrunc && [ "$(stat -c %a suidtrunc)" = 777 ]`, ""},
		{"O_TRUNC write of setuid file clears setuid", `printf new > suidotrunc && [ "$(stat -c %a suidotrunc)" = 777 ]`, ""},
		{"write setgid file without group exec keeps setgid", `printf more >> sgidnoexec && [ "$(stat -c %a sgidnoexec)" = 2766 ]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := asNobody(m.Dir, tc.script)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s: %v\n%s", tc.script, err, out)
			case tc.want != "" && (err == nil || !strings.Contains(out, tc.want)):
				t.Errorf("%s: %v %q, want failure with %q", tc.script, err, out, tc.want)
			}
		})
	}
	t.Run("root", func(t *testing.T) {
		sh(t, m.Dir, `
			touch sgid/f && mkdir sgid/d
			[ "$(stat -c %g sgid/f)" = 100 ] && [ "$(stat -c %g sgid/d)" = 100 ] && [ "$(stat -c %a sgid/d)" = 2755 ]
			chown 65534:65534 sticky/roots && [ "$(stat -c %u:%g sticky/roots)" = 65534:65534 ]
			printf s > suid2 && chmod 4755 suid2 && chown 65534 suid2 && [ "$(stat -c %a:%u suid2)" = 755:65534 ]
			printf r > rootsuid && chmod 4755 rootsuid && printf more >> rootsuid && [ "$(stat -c %a rootsuid)" = 4755 ]
			cat private/../rootfile >/dev/null
		`)
		long := strings.Repeat("a", 256)
		if err := os.WriteFile(m.Path(long), nil, 0o644); err == nil || !strings.Contains(err.Error(), "file name too long") {
			t.Errorf("create with a 256-byte name: %v, want ENAMETOOLONG", err)
		}
		if err := os.WriteFile(m.Path(long[:255]), nil, 0o644); err != nil {
			t.Errorf("create with a 255-byte name: %v", err)
		}
		if err := os.Symlink("loop2", m.Path("loop1")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("loop1", m.Path("loop2")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.ReadFile(m.Path("loop1")); err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
			t.Errorf("open of a symlink loop: %v, want ELOOP", err)
		}
	})
	// The ownership and modes survive a remount.
	m.Unmount()
	m.Remount()
	sh(t, m.Dir, `[ "$(stat -c %a:%u sticky)" = 1777:0 ] && [ "$(stat -c %u sticky/mine)" = 65534 ] && [ "$(stat -c %a suid)" = 777 ]`)
}
