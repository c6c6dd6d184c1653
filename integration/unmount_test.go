package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestUnmountWait: cloudfs unmount refuses a busy mount with one line and
// leaves it mounted; cloudfs unmount --wait right after a write commits it
// to the remote (uploads are held back by the settle delay, so nothing
// else would) and returns with the mount gone and its daemon exited.
func TestUnmountWait(t *testing.T) {
	harness.RequireFUSE(t)
	remote := t.TempDir()
	m := harness.StartMount(t, harness.MountOptions{Remote: remote, Args: []string{"--settle-delay", "30m"}})
	data := make([]byte, 3<<20)
	rand.Read(data)
	if err := os.WriteFile(m.Path("report.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := cloudfsCmd(t, nil, "status", "--json", m.Dir)
	var st struct {
		QueuedFiles int `json:"queued_files"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.QueuedFiles == 0 {
		t.Fatalf("status before unmount (exit %d): want the file queued, got:\n%s", code, out)
	}

	f, err := os.Open(m.Path("report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	code, out = cloudfsCmd(t, nil, "unmount", m.Dir)
	f.Close()
	if code != 1 || !strings.Contains(out, "busy") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("unmount of a busy mount: exit %d, want 1 and one line saying it is busy:\n%s", code, out)
	}
	if !harness.Mounted(m.Dir) {
		t.Fatal("the busy mount was unmounted")
	}

	pid := m.PID()
	if code, out := cloudfsCmd(t, nil, "unmount", "--wait", m.Dir); code != 0 {
		t.Fatalf("unmount --wait: exit %d:\n%s", code, out)
	}
	if harness.Mounted(m.Dir) {
		t.Fatal("still mounted after unmount --wait")
	}
	// The command waited for the daemon: it has exited (a zombie until
	// the harness, its parent, reaps it, or gone).
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z' {
			t.Fatalf("the daemon (pid %d) still runs after unmount --wait returned: %s", pid, stat)
		}
	}
	m.Exited(harness.MountTimeout)

	// The remote holds the file: a mount with a fresh cache dir reads it.
	fresh := harness.StartMount(t, harness.MountOptions{Remote: remote})
	got, err := os.ReadFile(fresh.Path("report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("a fresh mount reads %d bytes that differ from the %d written", len(got), len(data))
	}
}
