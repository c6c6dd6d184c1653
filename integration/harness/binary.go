package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
	buildOut  []byte
)

// Binary returns the path of the cloudfs binary under test. When the
// environment names one in CLOUDFS_BINARY (the Makefile builds it with -race)
// that is used; otherwise the binary is built once per test process from this
// checkout into a temporary directory.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CLOUDFS_BINARY"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("CLOUDFS_BINARY=%s: %v", p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("CLOUDFS_BINARY=%s: %v (run make build-race)", p, err)
		}
		return abs
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cloudfs-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "cloudfs")
		cmd := exec.Command("go", "build", "-race", "-o", buildPath, "./cmd/cloudfs")
		cmd.Dir = RepoRoot()
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build cloudfs: %v\n%s", buildErr, buildOut)
	}
	return buildPath
}

// RepoRoot returns the root of the cloudfs checkout this package was
// compiled from.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
