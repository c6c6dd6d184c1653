package integration

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestPassthrough: a file written in a passthrough session (its reads and
// writes served by the kernel straight from the staging file, see
// fs/passthrough.go) shows the same size, times, holes and content as on
// the daemon's path, through a second descriptor and after a truncate,
// an append and a shared mapping; everything close() and fsync() returned
// for survives kill -9; and a session still open keeps `cloudfs sync`
// from claiming the file is uploaded.
func TestPassthrough(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{})
	// The daemon probes passthrough once the kernel has the mount.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(m.LogText(), "kernel passthrough on"); {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon (root) did not enable kernel passthrough; log:\n%s", m.LogText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	const mib = 1 << 20
	want := map[string][]byte{}

	// Writes in pieces, then one past a hole.
	f, err := os.Create(m.Path("a"))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	data := patterned(1, 3*mib)
	for off := 0; off < len(data); off += 64 << 10 {
		if _, err := f.Write(data[off : off+64<<10]); err != nil {
			t.Fatal(err)
		}
	}
	tail := patterned(2, 100_000)
	if _, err := f.WriteAt(tail, 8*mib); err != nil {
		t.Fatal(err)
	}
	a := append(append(append([]byte(nil), data...), make([]byte, 5*mib)...), tail...)
	fi, err := os.Stat(m.Path("a"))
	if err != nil || fi.Size() != int64(len(a)) || fi.ModTime().Before(before.Add(-time.Second)) {
		t.Fatalf("stat during the session: %v, size %d (want %d), mtime %v (written after %v)", err, fi.Size(), len(a), fi.ModTime(), before)
	}
	// A second descriptor joins the session and sees every byte.
	r, err := os.Open(m.Path("a"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(a))
	if n, err := r.ReadAt(got, 0); n != len(a) || !bytes.Equal(got, a) {
		t.Fatalf("read through a second descriptor: %d bytes, %v, equal %v", n, err, bytes.Equal(got, a))
	}
	if hole, err := unix.Seek(int(r.Fd()), 0, unix.SEEK_HOLE); err != nil || hole != 3*mib {
		t.Fatalf("SEEK_HOLE from 0 = %d, %v; want %d", hole, err, 3*mib)
	}
	if next, err := unix.Seek(int(r.Fd()), 3*mib, unix.SEEK_DATA); err != nil || next != 8*mib {
		t.Fatalf("SEEK_DATA from the hole = %d, %v; want %d", next, err, 8*mib)
	}
	// Cut into the hole, extend again: the extension reads as zeros.
	if err := f.Truncate(5 * mib); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(6 * mib); err != nil {
		t.Fatal(err)
	}
	a = append(a[:5*mib:5*mib], make([]byte, mib)...)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// An append through a new session.
	ap, err := os.OpenFile(m.Path("a"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ap.Write([]byte("appended")); err != nil {
		t.Fatal(err)
	}
	if err := ap.Close(); err != nil {
		t.Fatal(err)
	}
	want["a"] = append(a, "appended"...)

	// A shared writable mapping of a new file.
	mf, err := os.OpenFile(m.Path("mapped"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := mf.Truncate(mib); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(mf.Fd()), 0, mib, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, patterned(3, mib))
	if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	if err := unix.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	if err := mf.Close(); err != nil {
		t.Fatal(err)
	}
	want["mapped"] = patterned(3, mib)
	checkContent(t, m, want, "before kill -9")

	// A session that stays open: sync must not report the file uploaded.
	busy, err := os.Create(m.Path("busy"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := busy.Write([]byte("still writing")); err != nil {
		t.Fatal(err)
	}
	if err := busy.Sync(); err != nil {
		t.Fatal(err)
	}
	code, out := cloudfsCmd(t, nil, "sync", "--timeout", "20s", m.Dir)
	if code == 0 || !strings.Contains(out, "open for writing") {
		t.Fatalf("cloudfs sync with a file open for writing: exit %d, %q; want an error naming it", code, out)
	}
	if err := busy.Close(); err != nil {
		t.Fatal(err)
	}
	want["busy"] = []byte("still writing")
	if code, out := cloudfsCmd(t, nil, "sync", m.Dir); code != 0 {
		t.Fatalf("cloudfs sync after close: exit %d: %s", code, out)
	}

	m.Kill9()
	m.Remount()
	checkContent(t, m, want, "after kill -9 and remount")
	fi, err = os.Stat(m.Path("a"))
	if err != nil || fi.Size() != int64(len(want["a"])) {
		t.Fatalf("size after remount: %v %v", fi, err)
	}
}

// TestNoPassthrough: -o nopassthrough keeps every read and write on the
// daemon's path.
func TestNoPassthrough(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{Args: []string{"-o", "nopassthrough"}})
	data := patterned(4, 1<<20)
	writeClose(t, m.Path("f"), data)
	checkContent(t, m, map[string][]byte{"f": data}, "written on the daemon's path")
	if strings.Contains(m.LogText(), "kernel passthrough on") {
		t.Fatalf("-o nopassthrough, but the log says passthrough is on:\n%s", m.LogText())
	}
}

// checkContent compares files of m with want.
func checkContent(t *testing.T, m *harness.Mount, want map[string][]byte, when string) {
	t.Helper()
	for name, w := range want {
		got, err := os.ReadFile(m.Path(name))
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("%s: %s: %v, %d bytes (want %d), equal %v", when, name, err, len(got), len(w), bytes.Equal(got, w))
		}
	}
}
