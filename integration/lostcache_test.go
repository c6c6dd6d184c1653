package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
