package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestStats: cloudfs stats REMOTE counts the objects of each kind that the
// remote directory holds, the stored bytes as their sizes' sum, and the
// head's files and logical bytes: two copies of one file are stored once,
// so the logical bytes exceed the stored ones. A directory that holds no
// volume is one line and exit 1.
func TestStats(t *testing.T) {
	harness.RequireFUSE(t)
	remote := t.TempDir()
	m := harness.StartMount(t, harness.MountOptions{Remote: remote, Args: []string{"--settle-delay", "30m"}})
	data := make([]byte, 3<<20)
	rand.Read(data)
	logical := 0
	for _, name := range []string{"a.bin", "copy-of-a.bin"} {
		if err := os.WriteFile(m.Path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		logical += len(data)
	}
	for i := range 20 {
		s := []byte(fmt.Sprintf("small file %d\n", i))
		if err := os.WriteFile(m.Path(fmt.Sprintf("s%02d.txt", i)), s, 0o644); err != nil {
			t.Fatal(err)
		}
		logical += len(s)
	}
	if code, out := cloudfsCmd(t, nil, "unmount", "--wait", m.Dir); code != 0 {
		t.Fatalf("unmount --wait: exit %d:\n%s", code, out)
	}
	m.Exited(harness.MountTimeout)

	// What the remote directory holds, by the first part of its keys (the
	// local store's lock files are not objects).
	want := map[string][2]int64{}
	err := filepath.WalkDir(remote, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == ".locks" {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(remote, p)
		kind, _, nested := strings.Cut(filepath.ToSlash(rel), "/")
		if !nested || !map[string]bool{"chunks": true, "packs": true, "trees": true, "commits": true, "devices": true}[kind] {
			kind = "other"
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		w := want[kind]
		want[kind] = [2]int64{w[0] + 1, w[1] + info.Size()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	code, out := cloudfsCmd(t, nil, "stats", "--json", remote)
	if code != 0 {
		t.Fatalf("stats: exit %d:\n%s", code, out)
	}
	var st struct {
		Kinds []struct {
			Kind           string
			Objects, Bytes int64
		}
		Objects      int64
		StoredBytes  int64  `json:"stored_bytes"`
		Files        uint64 `json:"files"`
		LogicalBytes uint64 `json:"logical_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v:\n%s", err, out)
	}
	var objects, stored int64
	for _, k := range st.Kinds {
		if w := want[k.Kind]; k.Objects != w[0] || k.Bytes != w[1] {
			t.Errorf("%s: %d objects, %d bytes; the remote holds %d, %d", k.Kind, k.Objects, k.Bytes, w[0], w[1])
		}
		delete(want, k.Kind)
		objects, stored = objects+k.Objects, stored+k.Bytes
	}
	if len(want) > 0 {
		t.Errorf("kinds not reported: %v", want)
	}
	if st.Objects != objects || st.StoredBytes != stored {
		t.Errorf("totals %d objects, %d bytes; the kinds add up to %d, %d", st.Objects, st.StoredBytes, objects, stored)
	}
	if st.Files != 22 || st.LogicalBytes != uint64(logical) {
		t.Errorf("head: %d files, %d bytes; want 22 files, %d bytes", st.Files, st.LogicalBytes, logical)
	}
	if st.StoredBytes >= int64(logical)*3/4 {
		t.Errorf("stored %d bytes of %d logical: the copy was not deduplicated", st.StoredBytes, logical)
	}

	code, out = cloudfsCmd(t, nil, "stats", t.TempDir())
	if code != 1 || !strings.Contains(out, "holds no cloudfs volume") || bytes.Count(bytes.TrimSpace([]byte(out)), []byte("\n")) != 0 {
		t.Fatalf("stats of an empty directory: exit %d, want 1 and one line:\n%s", code, out)
	}
}
