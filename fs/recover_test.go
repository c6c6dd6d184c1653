package fs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"
)

// A mount over an index that does not name a staging file (index.db lost
// or recreated) moves the file to the recovery dir instead of deleting it;
// an empty one, which holds nothing, is removed; a named one stays.
func TestUnaccountedStagingIsRecovered(t *testing.T) {
	ctx := context.Background()
	f, mc, ino, _ := newTestFS(t)
	fd := acquireT(t, f, ino)
	if _, err := fd.write([]byte("kept"), 0, false); err != nil {
		t.Fatal(err)
	}
	fd.mu.Lock()
	err := fd.commitLocked(ctx, true)
	known := fd.stagingName
	fd.mu.Unlock()
	f.release(ctx, fd)
	if err != nil || known == "" {
		t.Fatalf("commit: %v, staging %q", err, known)
	}
	f.Close()
	lost := []byte("the only copy of an edit")
	if err := os.WriteFile(filepath.Join(f.stagingDir, "s1-7"), lost, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.stagingDir, "s1-8"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	g, err := New(ctx, Config{Index: f.idx, Chunks: mc, StagingDir: f.stagingDir, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := os.Stat(filepath.Join(f.stagingDir, known)); err != nil {
		t.Fatalf("the staging file the index names: %v", err)
	}
	for _, name := range []string{"s1-7", "s1-8"} {
		if _, err := os.Lstat(filepath.Join(f.stagingDir, name)); !os.IsNotExist(err) {
			t.Fatalf("unaccounted %s still in the staging dir: %v", name, err)
		}
	}
	rec := filepath.Join(filepath.Dir(f.stagingDir), "recovered")
	found, _ := filepath.Glob(filepath.Join(rec, "*", "*"))
	if len(found) != 1 || filepath.Base(found[0]) != "s1-7" {
		t.Fatalf("recovery dir holds %q, want the one non-empty file", found)
	}
	if got, err := os.ReadFile(found[0]); err != nil || string(got) != string(lost) {
		t.Fatalf("recovered file = %q, %v", got, err)
	}
	files, bytes, err := Recovered(rec)
	if err != nil || files != 1 || bytes != int64(len(lost)) {
		t.Fatalf("Recovered = %d files, %d bytes, %v", files, bytes, err)
	}
	if files, _, err := Recovered(filepath.Join(rec, "none")); err != nil || files != 0 {
		t.Fatalf("Recovered of a missing dir = %d, %v", files, err)
	}
}
