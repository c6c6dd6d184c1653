package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestWarmup: on a mount with a fresh cache dir, cloudfs warmup of a
// directory fetches every file under it; with the remote gone those files
// read back whole, while a file not warmed gives EIO, never wrong bytes or
// ENOENT. A second warm-up fetches nothing; a path off the mount is one
// line and exit 2.
func TestWarmup(t *testing.T) {
	harness.RequireFUSE(t)
	remote := t.TempDir()
	w := harness.StartMount(t, harness.MountOptions{Remote: remote})
	files := map[string][]byte{"d/a.bin": nil, "d/e/b.bin": nil, "d/e/small.txt": []byte("small\n"), "other.bin": nil}
	for name, data := range files {
		if data == nil {
			data = make([]byte, 3<<20)
			rand.Read(data)
			files[name] = data
		}
		if err := os.MkdirAll(filepath.Dir(w.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(w.Path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := cloudfsCmd(t, nil, "unmount", "--wait", w.Dir); code != 0 {
		t.Fatalf("unmount --wait: exit %d:\n%s", code, out)
	}
	w.Exited(harness.MountTimeout)

	m := harness.StartMount(t, harness.MountOptions{Remote: remote})
	code, out := cloudfsCmd(t, nil, "warmup", m.Path("d"))
	if code != 0 || !strings.Contains(out, "3 files") || strings.Contains(out, " 0 chunks fetched") {
		t.Fatalf("warmup: exit %d, want the 3 files fetched:\n%s", code, out)
	}
	code, out = cloudfsCmd(t, nil, "warmup", m.Path("d", "e"), m.Path("d", "a.bin"))
	if code != 0 || !strings.Contains(out, "3 files") || !strings.Contains(out, " 0 chunks fetched") {
		t.Fatalf("second warmup: exit %d, want nothing fetched:\n%s", code, out)
	}

	away := remote + ".away"
	if err := os.Rename(remote, away); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(away, remote) })
	for name, data := range files {
		got, err := os.ReadFile(m.Path(name))
		if name == "other.bin" {
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("read of %s, not warmed, with the remote gone: %v, want EIO", name, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("read of %s with the remote gone: %d bytes, %v; want its %d bytes", name, len(got), err, len(data))
		}
	}
	if err := os.Rename(away, remote); err != nil {
		t.Fatal(err)
	}

	code, out = cloudfsCmd(t, nil, "warmup", t.TempDir())
	if code != 2 || !strings.Contains(out, "not on a cloudfs mount") {
		t.Fatalf("warmup off the mount: exit %d, want 2:\n%s", code, out)
	}
}
