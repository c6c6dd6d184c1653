package integration

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// Several machines on one bucket: each is a daemon with its own cache dir
// on one MinIO volume. Unless a test polls, the mounts pull only on
// `cloudfs sync` (--poll-interval 0), so what each one sees is decided by
// the test.

// machines mounts n daemons of one volume with their own cache dirs and
// the given extra flags (after --settle-delay 0 --poll-interval 0).
func machines(t *testing.T, vol s3Volume, n int, args ...string) []*harness.Mount {
	t.Helper()
	var out []*harness.Mount
	for range n {
		out = append(out, vol.mount(t, "", append([]string{"--settle-delay", "0", "--poll-interval", "0"}, args...)...))
	}
	return out
}

// syncAll runs cloudfs sync on every mount, twice round (the second pass
// brings every mount the commits the others made in the first).
func syncAll(t *testing.T, m *harness.MinIO, ms ...*harness.Mount) {
	t.Helper()
	for range 2 {
		for _, x := range ms {
			cloudfsSyncOK(t, m, x.Dir)
		}
	}
}

// readString returns the content of path, failing the test on error.
func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// conflictCopies returns the names in dir that are conflict copies of name
// (stem + " (conflict " ... ")" + ext).
func conflictCopies(t *testing.T, dir, name string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	stem, ext := name, filepath.Ext(name)
	if ext != "" && ext != name {
		stem = strings.TrimSuffix(name, ext)
	} else {
		ext = ""
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, stem+" (conflict ") && strings.HasSuffix(n, ")"+ext) {
			out = append(out, n)
		}
	}
	return out
}

// TestMachinesSeeEachOther: a file written and synced on one machine is
// seen by the other after its sync, at once and through the kernel's
// caches (which held the name as missing, the old content and the old
// attributes); edits and deletions too; and the other machine's own
// writes reach the first one.
func TestMachinesSeeEachOther(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "see"}
	ms := machines(t, vol, 2)
	a, b := ms[0], ms[1]
	writeClose(t, a.Path("start.txt"), []byte("start"))
	cloudfsSyncOK(t, m, a.Dir)
	cloudfsSyncOK(t, m, b.Dir)
	if got := readString(t, b.Path("start.txt")); got != "start" {
		t.Fatalf("b reads start.txt as %q", got)
	}
	// b's kernel caches a miss, the content and the attributes.
	if _, err := os.Stat(b.Path("new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("new.txt on b before a wrote it: %v", err)
	}
	fi, err := os.Stat(b.Path("start.txt"))
	if err != nil {
		t.Fatal(err)
	}
	writeClose(t, a.Path("new.txt"), []byte("new"))
	writeClose(t, a.Path("start.txt"), []byte("edited on a"))
	if err := os.Chmod(a.Path("start.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	cloudfsSyncOK(t, m, a.Dir)
	cloudfsSyncOK(t, m, b.Dir)
	if got := readString(t, b.Path("new.txt")); got != "new" {
		t.Fatalf("b reads new.txt as %q", got)
	}
	if got := readString(t, b.Path("start.txt")); got != "edited on a" {
		t.Fatalf("b reads start.txt as %q after a's edit", got)
	}
	fi2, err := os.Stat(b.Path("start.txt"))
	if err != nil || fi2.Mode().Perm() != 0o600 || fi2.Size() == fi.Size() {
		t.Fatalf("b stats start.txt as %v (%v)", fi2, err)
	}
	// A deletion, and b's own file going the other way.
	if err := os.Remove(a.Path("new.txt")); err != nil {
		t.Fatal(err)
	}
	writeClose(t, b.Path("from-b.txt"), []byte("b"))
	cloudfsSyncOK(t, m, a.Dir)
	cloudfsSyncOK(t, m, b.Dir)
	cloudfsSyncOK(t, m, a.Dir)
	if _, err := os.Stat(b.Path("new.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("new.txt on b after a deleted it: %v", err)
	}
	if got := readString(t, a.Path("from-b.txt")); got != "b" {
		t.Fatalf("a reads from-b.txt as %q", got)
	}
	sameTree(t, treeSums(t, b.Dir), treeSums(t, a.Dir), "a and b after syncing")
}

// TestMergeBothEdited: one file changed on both machines: after both sync,
// both show the already-committed version under its name and the later
// one's version as a conflict copy beside it, extension last.
func TestMergeBothEdited(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "both"}
	ms := machines(t, vol, 2)
	a, b := ms[0], ms[1]
	writeClose(t, a.Path("report.txt"), []byte("v1"))
	syncAll(t, m, a, b)
	writeClose(t, a.Path("report.txt"), []byte("from a"))
	writeClose(t, b.Path("report.txt"), []byte("from b"))
	cloudfsSyncOK(t, m, a.Dir)
	syncAll(t, m, b, a)
	for _, x := range ms {
		if got := readString(t, x.Path("report.txt")); got != "from a" {
			t.Fatalf("%s: report.txt = %q, want a's (committed first)", x.Dir, got)
		}
		copies := conflictCopies(t, x.Dir, "report.txt")
		if len(copies) != 1 || !strings.HasPrefix(copies[0], "report (conflict ") {
			t.Fatalf("%s: conflict copies %q", x.Dir, copies)
		}
		if got := readString(t, x.Path(copies[0])); got != "from b" {
			t.Fatalf("%s: %s = %q, want b's", x.Dir, copies[0], got)
		}
	}
	sameTree(t, treeSums(t, b.Dir), treeSums(t, a.Dir), "a and b after the merge")
	// b made the copy, and says so.
	st := cloudfsStatus(t, b.Dir)
	copies := conflictCopies(t, b.Dir, "report.txt")
	if st.Pull.ConflictCount != 1 || len(st.Pull.Conflicts) != 1 || st.Pull.Conflicts[0].Path != "/report.txt" ||
		st.Pull.Conflicts[0].CopyPath != "/"+copies[0] || st.Pull.Conflicts[0].Kind != "content" {
		t.Fatalf("b's status shows conflicts %+v", st.Pull)
	}
	code, out := cloudfsCmd(t, nil, "status", b.Dir)
	if code != 0 || !strings.Contains(out, "copy at /"+copies[0]) || !strings.Contains(out, "online") {
		t.Fatalf("cloudfs status: exit %d:\n%s", code, out)
	}
}

// TestDevices: every mount records itself under devices/; a copy of a
// cache dir mounted next to the original becomes a new device rather than
// share the original's record.
func TestDevices(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "devices"}
	cache := t.TempDir()
	a := vol.mount(t, cache, "--settle-delay", "0", "--poll-interval", "0")
	mustWrite(t, a, "f", "x")
	cloudfsSyncOK(t, m, a.Dir)
	dev := cloudfsStatus(t, a.Dir).Device
	a.Unmount()
	copied := t.TempDir()
	if out, err := exec.Command("cp", "-a", cache+"/.", copied).CombinedOutput(); err != nil {
		t.Fatalf("copy the cache dir: %v %s", err, out)
	}
	a.Remount()
	if got := cloudfsStatus(t, a.Dir).Device; got != dev {
		t.Fatalf("the original cache dir's device changed from %s to %s", dev, got)
	}
	c := vol.mount(t, copied, "--settle-delay", "0", "--poll-interval", "0")
	cdev := cloudfsStatus(t, c.Dir).Device
	if cdev == dev {
		t.Fatalf("the copy of the cache dir mounts as the original's device %s", dev)
	}
	if !strings.Contains(c.LogText(), "another copy of this cache dir") {
		t.Errorf("the copy's log does not say why it is a new device:\n%s", c.LogText())
	}
	mustWrite(t, c, "from-copy", "y")
	cloudfsSyncOK(t, m, c.Dir)
	cloudfsSyncOK(t, m, a.Dir)
	wantContent(t, a, "from-copy", "y")
	ids, bad, err := bucket.ListDevices(t.Context(), vol.store(t))
	if err != nil || len(bad) > 0 {
		t.Fatal(err, bad)
	}
	seen := map[string]string{}
	for _, d := range ids {
		seen[d.ID] = d.Commit
	}
	head := vol.head(t)
	if seen[dev] != head || seen[cdev] != head {
		t.Fatalf("device records %v: want %s and %s at head %s", seen, dev, cdev, head)
	}
}

// TestOwnerOptions: -o uid=,gid= present every file as owned by them; what
// the bucket stores stays the files' own owners.
func TestOwnerOptions(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "owners"}
	a := vol.mount(t, "", "--settle-delay", "0", "--poll-interval", "0", "-o", "uid=12345,gid=54321")
	mustWrite(t, a, "f", "x")
	st := statT(t, a.Path("f"))
	if st.Uid != 12345 || st.Gid != 54321 {
		t.Fatalf("f is owned by %d:%d on the mount, want 12345:54321", st.Uid, st.Gid)
	}
	cloudfsSyncOK(t, m, a.Dir)
	b := vol.mount(t, "", "--poll-interval", "0")
	st = statT(t, b.Path("f"))
	if st.Uid != uint32(os.Getuid()) || st.Gid != uint32(os.Getgid()) {
		t.Fatalf("the bucket stores f as %d:%d, want its creator's %d:%d", st.Uid, st.Gid, os.Getuid(), os.Getgid())
	}
}
