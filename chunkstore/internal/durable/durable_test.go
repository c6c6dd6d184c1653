package durable

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAndSyncDir(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	for _, sync := range []bool{false, true} {
		want := []byte("content, sync=" + map[bool]string{false: "no", true: "yes"}[sync])
		if err := WriteFile(name, want, sync); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read back %q, %v; want %q", got, err, want)
		}
	}
	fi, err := os.Stat(name)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, false); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
}
