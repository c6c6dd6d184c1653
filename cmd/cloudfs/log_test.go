package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDaemonLogTakesStderr runs a daemon-like helper process that logs,
// has its log rotated, then panics: the panic's trace is in the current
// log file, beside the lines logged after the rotation, and the file is
// the mounting user's alone.
func TestDaemonLogTakesStderr(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, logFileName)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestDaemonLogHelper$")
	cmd.Env = append(os.Environ(), "CLOUDFS_TEST_LOG="+path)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the helper did not panic:\n%s", out)
	}
	if strings.Contains(string(out), "boom") {
		t.Fatalf("the panic went to the old stderr, not the log:\n%s", out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{"after the rotation", "panic: boom", "goroutine "} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "before the rotation") {
		t.Fatalf("the rotated lines are still in the current file:\n%s", log)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	backups, _ := filepath.Glob(filepath.Join(dir, "cloudfs-*.log*"))
	if len(backups) == 0 { // the .log, or its .gz once the mill has compressed it (or both, while it does)
		t.Fatalf("no backup of the rotated log in %s", dir)
	}
}

// TestDaemonLogHelper is TestDaemonLogTakesStderr's daemon.
func TestDaemonLogHelper(t *testing.T) {
	path := os.Getenv("CLOUDFS_TEST_LOG")
	if path == "" {
		return // run only as the helper
	}
	l, err := openDaemonLog(path)
	if err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("before the rotation\n"))
	if err := l.lj.Rotate(); err != nil {
		t.Fatal(err)
	}
	l.Write([]byte("after the rotation\n"))
	panic("boom")
}
