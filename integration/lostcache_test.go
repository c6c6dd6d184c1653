package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestLostIndexKeepsStagedData: a file closed but never uploaded lives only
// in its staging file and the index. With index.db lost, the next mount
// must not delete the staging file: it moves it to the recovery folder,
// says so in the log and in status, and the bytes are there.
func TestLostIndexKeepsStagedData(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{Remote: t.TempDir(), Args: []string{"--settle-delay", "30m"}})
	content := bytes.Repeat([]byte("the only copy of this edit\n"), 4000)
	if err := os.WriteFile(m.Path("notes.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	m.Kill9()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(filepath.Join(m.Opts.CacheDir, "index.db"+suffix)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	m.Remount()

	found, err := filepath.Glob(filepath.Join(m.Opts.CacheDir, "recovered", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var hit bool
	for _, f := range found {
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		hit = hit || bytes.HasPrefix(got, content)
	}
	if !hit {
		t.Fatalf("no file of the recovery folder holds the staged bytes (it holds %q)", found)
	}
	if _, err := os.Stat(m.Path("notes.txt")); !os.IsNotExist(err) {
		t.Fatalf("the new index serves notes.txt: %v", err)
	}
	if !strings.Contains(m.LogText(), "moved to the recovery folder") {
		t.Fatalf("the log does not say what was moved:\n%s", m.LogText())
	}
	code, out := cloudfsCmd(t, nil, "status", m.Dir)
	if code != 0 || !strings.Contains(out, "recovered") || !strings.Contains(out, filepath.Join(m.Opts.CacheDir, "recovered")) {
		t.Fatalf("status (exit %d) does not name the recovery folder:\n%s", code, out)
	}
}

// TestReplacedSettingsRefuseAndRecover: a remote whose settings object was
// replaced, or made unreadable, refuses the mount with one line that says
// how to get the queued changes out, and cloudfs recover copies exactly
// the files with changes not uploaded out of the cache dir.
func TestReplacedSettingsRefuseAndRecover(t *testing.T) {
	remote := t.TempDir()
	m := harness.StartMount(t, harness.MountOptions{Remote: remote, Args: []string{"--settle-delay", "30m"}})
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := os.WriteFile(m.Path("big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.Path("uploaded.txt"), []byte("in the bucket"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := cloudfsCmd(t, nil, "sync", m.Dir); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, out)
	}
	// Changes after the sync stay queued (settle delay 30m).
	f, err := os.OpenFile(m.Path("big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("EDIT"), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(big[1<<20:], "EDIT")
	if err := os.MkdirAll(m.Path("dir", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.Path("dir", "sub", "new.txt"), []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("big.bin", m.Path("link")); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "out")
	if code, out := cloudfsCmd(t, nil, "recover", "--cache-dir", m.Opts.CacheDir, dest); code != 2 || !strings.Contains(out, "in use") {
		t.Fatalf("recover of a mounted cache dir: exit %d: %s", code, out)
	}
	m.Unmount()

	mountFails := func(what string) {
		t.Helper()
		code, out := cloudfsCmd(t, nil, "mount", "--cache-dir", m.Opts.CacheDir, remote, m.Dir)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		if code == 0 || harness.Mounted(m.Dir) || !strings.Contains(last, "volume settings") ||
			!strings.Contains(last, "cloudfs recover --cache-dir "+m.Opts.CacheDir) {
			t.Fatalf("mount with %s settings: exit %d, output:\n%s", what, code, out)
		}
	}
	other, err := chunkstore.NewVolume(chunkstore.Params{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(other)
	if err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(remote, chunkstore.VolumeKey)
	if err := os.WriteFile(settings, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mountFails("replaced")
	if err := os.WriteFile(settings, []byte("{\"format\": 2, \"hash\": "), 0o644); err != nil {
		t.Fatal(err)
	}
	mountFails("truncated")

	code, out := cloudfsCmd(t, nil, "recover", "--cache-dir", m.Opts.CacheDir, dest)
	if code != 0 {
		t.Fatalf("recover: exit %d: %s", code, out)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "big.bin")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("recovered big.bin: %d bytes, equal %v, %v", len(got), bytes.Equal(got, big), err)
	}
	if got, err := os.ReadFile(filepath.Join(dest, "dir", "sub", "new.txt")); err != nil || string(got) != "new" {
		t.Fatalf("recovered dir/sub/new.txt = %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dest, "dir", "sub", "new.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("recovered dir/sub/new.txt: %v, %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "link")); err != nil || target != "big.bin" {
		t.Fatalf("recovered link -> %q, %v", target, err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "uploaded.txt")); !os.IsNotExist(err) {
		t.Fatalf("recover copied uploaded.txt, which had nothing queued: %v", err)
	}
	if !strings.Contains(out, "3 files with changes not uploaded copied to "+dest) {
		t.Fatalf("recover's report:\n%s", out)
	}

	// With the staging files and the chunk cache gone too, what is left
	// is copied, the rest is zeros, and the exit code says so.
	for _, d := range []string{"staging", "chunks"} {
		if err := os.RemoveAll(filepath.Join(m.Opts.CacheDir, d)); err != nil {
			t.Fatal(err)
		}
	}
	dest2 := filepath.Join(t.TempDir(), "out")
	code, out = cloudfsCmd(t, nil, "recover", "--cache-dir", m.Opts.CacheDir, dest2)
	if code != 1 || !strings.Contains(out, "/big.bin (3.0 MiB): 3.0 MiB not in this cache dir") ||
		!strings.Contains(out, "2 files incomplete") {
		t.Fatalf("recover without staging files and chunk cache: exit %d:\n%s", code, out)
	}
	if fi, err := os.Stat(filepath.Join(dest2, "big.bin")); err != nil || fi.Size() != int64(len(big)) {
		t.Fatalf("incomplete big.bin: %v, %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dest2, "link")); err != nil || target != "big.bin" {
		t.Fatalf("link without the caches -> %q, %v", target, err)
	}
}
