package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap/zaptest"
)

// otherUID is the unprivileged user the tests act as (nobody).
const otherUID = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test plays another local user and needs root (chown, setuid)")
	}
}

func TestMakePrivateDir(t *testing.T) {
	needRoot(t)
	base := t.TempDir()

	fresh := filepath.Join(base, "fresh")
	if err := makePrivateDir(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("new dir: %v %v, want mode 0700", fi.Mode(), err)
	}

	wide := filepath.Join(base, "wide")
	if err := os.Mkdir(wide, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(wide, 0o777)
	if err := makePrivateDir(wide); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(wide); fi.Mode().Perm() != 0o700 {
		t.Fatalf("wide dir left at %v, want 0700", fi.Mode().Perm())
	}

	planted := filepath.Join(base, "planted")
	if err := os.Mkdir(planted, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(planted, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	if err := makePrivateDir(planted); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("dir of another user: %v, want refused", err)
	}

	target := t.TempDir()
	link := filepath.Join(base, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := makePrivateDir(link); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("symlink: %v, want refused", err)
	}
}

func TestReadTrusted(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"socket":"s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := readTrusted(good); err != nil || string(b) != `{"socket":"s"}` {
		t.Fatalf("own file: %q %v", b, err)
	}
	if _, err := readTrusted(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing file: %v, want not-exist", err)
	}

	foreign := filepath.Join(dir, "foreign.json")
	os.WriteFile(foreign, []byte(`{}`), 0o644)
	os.Chown(foreign, otherUID, otherUID)
	if _, err := readTrusted(foreign); err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("file of another user: %v, want refused", err)
	}

	link := filepath.Join(dir, "link.json")
	os.Symlink(good, link)
	if _, err := readTrusted(link); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("symlinked file: %v, want refused", err)
	}

	open := t.TempDir()
	os.Chmod(open, 0o777)
	f := filepath.Join(open, "x.json")
	os.WriteFile(f, []byte(`{}`), 0o600)
	if _, err := readTrusted(f); err == nil || !strings.Contains(err.Error(), "not a private directory") {
		t.Fatalf("file in a world-writable dir: %v, want refused", err)
	}

	big := filepath.Join(dir, "big.json")
	os.WriteFile(big, make([]byte, maxTrustedFile+1), 0o600)
	if _, err := readTrusted(big); err == nil {
		t.Fatal("oversized file read")
	}
}

func TestWriteRuntimeIgnoresPlantedTemp(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	mp := "/mnt/x"
	dir := filepath.Join(rt, "cloudfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The temporary name the old code used, planted as a symlink.
	if err := os.Symlink(victim, filepath.Join(dir, runtimeName(mp)+".tmp")); err != nil {
		t.Fatal(err)
	}
	path, err := writeRuntime(runtimeInfo{Mountpoint: mp, Socket: "/s"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the planted symlink's target was overwritten: %q", b)
	}
	if b, err := readTrusted(path); err != nil || !strings.Contains(string(b), `"/s"`) {
		t.Fatalf("runtime file: %q %v", b, err)
	}
}

// TestControlRefusesOtherUsers connects to a control socket from a process
// running as another user: the daemon answers "permission denied" and the
// mounting user (root) is served.
func TestControlRefusesOtherUsers(t *testing.T) {
	needRoot(t)
	dir := openTempDir(t)
	s, err := startControl(dir, &controlTarget{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	os.Chmod(s.path, 0o666) // the socket's mode alone must not decide

	if rep := dialControl(t, s.path); rep.OK || !strings.Contains(rep.Error, "unknown request") {
		t.Fatalf("root: %+v, want served (unknown request)", rep)
	}

	// The test binary, where another user can run it.
	bin := filepath.Join(openTempDir(t), "cmd.test")
	copyFile(t, os.Args[0], bin, 0o755)
	cmd := exec.Command(bin, "-test.run", "^TestControlDialHelper$")
	cmd.Env = append(os.Environ(), "CLOUDFS_TEST_DIAL="+s.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid %d: %v\n%s", otherUID, err, out)
	}
	if !strings.Contains(string(out), "permission denied: only root may control this mount") {
		t.Fatalf("another user was served:\n%s", out)
	}
}

// TestControlDialHelper is TestControlRefusesOtherUsers's other user.
func TestControlDialHelper(t *testing.T) {
	path := os.Getenv("CLOUDFS_TEST_DIAL")
	if path == "" {
		return // run only as the helper
	}
	rep := dialControl(t, path)
	fmt.Printf("reply: ok=%v error=%s\n", rep.OK, rep.Error)
}

func dialControl(t *testing.T, path string) controlReply {
	t.Helper()
	c, err := (&net.Dialer{}).DialContext(context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"op":"bogus"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var rep controlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// openTempDir is a t.TempDir another user can enter.
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
