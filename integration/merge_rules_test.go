package integration

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// mergeCase is one merge rule through real mounts: a base both machines
// have, then a change on each, a committing first (the remote version)
// and b merging it (b's the local one), then both in step.
type mergeCase struct {
	name  string
	base  func(t *testing.T, a *harness.Mount)
	onA   func(t *testing.T, a *harness.Mount) // committed first
	onB   func(t *testing.T, b *harness.Mount) // merged by b
	check func(t *testing.T, x *harness.Mount) // on both machines
}

func mustWrite(t *testing.T, m *harness.Mount, p, s string) { writeClose(t, m.Path(p), []byte(s)) }

func mustRename(t *testing.T, m *harness.Mount, from, to string) {
	t.Helper()
	if err := os.Rename(m.Path(from), m.Path(to)); err != nil {
		t.Fatal(err)
	}
}

func mustRemoveAll(t *testing.T, m *harness.Mount, p string) {
	t.Helper()
	if err := os.RemoveAll(m.Path(p)); err != nil {
		t.Fatal(err)
	}
}

func wantContent(t *testing.T, m *harness.Mount, p, want string) {
	t.Helper()
	if got := readString(t, m.Path(p)); got != want {
		t.Fatalf("%s: %s = %q, want %q", m.Dir, p, got, want)
	}
}

func wantGone(t *testing.T, m *harness.Mount, p string) {
	t.Helper()
	if _, err := os.Lstat(m.Path(p)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: %s still there (%v)", m.Dir, p, err)
	}
}

// wantOneCopy checks that dir holds exactly one conflict copy of name,
// with content want.
func wantOneCopy(t *testing.T, m *harness.Mount, dir, name, want string) {
	t.Helper()
	copies := conflictCopies(t, m.Path(dir), name)
	if len(copies) != 1 {
		t.Fatalf("%s: conflict copies of %s/%s: %q, want one", m.Dir, dir, name, copies)
	}
	if want != "" {
		wantContent(t, m, dir+"/"+copies[0], want)
	}
}

// TestMergeRules runs each merge rule through two real mounts.
func TestMergeRules(t *testing.T) {
	cases := []mergeCase{
		{
			name: "disjoint changes both apply",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "x", "X"); mustWrite(t, a, "y", "Y") },
			onA:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "x", "X from a"); mustWrite(t, a, "new-a", "A") },
			onB:  func(t *testing.T, b *harness.Mount) { mustWrite(t, b, "y", "Y from b"); mustWrite(t, b, "new-b", "B") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "x", "X from a")
				wantContent(t, x, "y", "Y from b")
				wantContent(t, x, "new-a", "A")
				wantContent(t, x, "new-b", "B")
			},
		},
		{
			name: "one file changed on both sides: a conflict copy of the later one",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "d/report.txt", "v1") },
			onA:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "d/report.txt", "from a") },
			onB:  func(t *testing.T, b *harness.Mount) { mustWrite(t, b, "d/report.txt", "from b") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "d/report.txt", "from a")
				wantOneCopy(t, x, "d", "report.txt", "from b")
			},
		},
		{
			name:  "edit here vs delete there keeps the edit",
			base:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "f", "v1") },
			onA:   func(t *testing.T, a *harness.Mount) { mustRemoveAll(t, a, "f") },
			onB:   func(t *testing.T, b *harness.Mount) { mustWrite(t, b, "f", "edited") },
			check: func(t *testing.T, x *harness.Mount) { wantContent(t, x, "f", "edited") },
		},
		{
			name:  "delete here vs edit there keeps the edit",
			base:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "f", "v1") },
			onA:   func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "f", "edited") },
			onB:   func(t *testing.T, b *harness.Mount) { mustRemoveAll(t, b, "f") },
			check: func(t *testing.T, x *harness.Mount) { wantContent(t, x, "f", "edited") },
		},
		{
			name: "rename here vs edit there: the edit under the new name",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "d/old.txt", "v1"); mustWrite(t, a, "e/k", "k") },
			onA:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "d/old.txt", "edited") },
			onB:  func(t *testing.T, b *harness.Mount) { mustRename(t, b, "d/old.txt", "e/new.txt") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "e/new.txt", "edited")
				wantGone(t, x, "d/old.txt")
			},
		},
		{
			name: "edit here vs rename there: the edit under the new name",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "d/old.txt", "v1"); mustWrite(t, a, "e/k", "k") },
			onA:  func(t *testing.T, a *harness.Mount) { mustRename(t, a, "d/old.txt", "e/new.txt") },
			onB:  func(t *testing.T, b *harness.Mount) { mustWrite(t, b, "d/old.txt", "edited") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "e/new.txt", "edited")
				wantGone(t, x, "d/old.txt")
			},
		},
		{
			name: "new file in a directory deleted there keeps the directory and the file",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "dir/a", "A"); mustWrite(t, a, "dir/b", "B") },
			onA:  func(t *testing.T, a *harness.Mount) { mustRemoveAll(t, a, "dir") },
			onB:  func(t *testing.T, b *harness.Mount) { mustWrite(t, b, "dir/new", "N") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "dir/new", "N")
				wantGone(t, x, "dir/a")
				wantGone(t, x, "dir/b")
			},
		},
		{
			name: "directory deleted here, new file in it there: both come back",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "dir/a", "A"); mustWrite(t, a, "dir/b", "B") },
			onA:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "dir/new", "N") },
			onB:  func(t *testing.T, b *harness.Mount) { mustRemoveAll(t, b, "dir") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "dir/new", "N")
				wantGone(t, x, "dir/a")
			},
		},
		{
			name: "file vs directory of one name keeps both",
			base: func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "k", "k") },
			onA:  func(t *testing.T, a *harness.Mount) { mustWrite(t, a, "x.d/in", "inside") },
			onB:  func(t *testing.T, b *harness.Mount) { mustWrite(t, b, "x.d", "a file") },
			check: func(t *testing.T, x *harness.Mount) {
				wantContent(t, x, "x.d/in", "inside")
				wantOneCopy(t, x, "", "x.d", "a file")
			},
		},
		{
			name: "hard links on both sides: one inode, every link counted",
			base: func(t *testing.T, a *harness.Mount) {
				mustWrite(t, a, "f", "linked")
				if err := os.Link(a.Path("f"), a.Path("g")); err != nil {
					t.Fatal(err)
				}
			},
			onA: func(t *testing.T, a *harness.Mount) {
				if err := os.Link(a.Path("f"), a.Path("from-a")); err != nil {
					t.Fatal(err)
				}
			},
			onB: func(t *testing.T, b *harness.Mount) {
				if err := os.Link(b.Path("g"), b.Path("from-b")); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(b.Path("f"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, x *harness.Mount) {
				checkOneInode(t, x.Dir, 4, sha([]byte("linked")), "f", "g", "from-a", "from-b")
				fi, err := os.Stat(x.Path("from-a"))
				if err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s: from-a mode %v (%v), want 600 (b's chmod, every name)", x.Dir, fi.Mode(), err)
				}
			},
		},
	}
	m := harness.StartMinIO(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vol := s3Volume{m: m, prefix: "rule" + string(rune('a'+i))}
			ms := machines(t, vol, 2)
			a, b := ms[0], ms[1]
			tc.base(t, a)
			syncAll(t, m, a, b)
			tc.onA(t, a)
			tc.onB(t, b)
			cloudfsSyncOK(t, m, a.Dir)
			cloudfsSyncOK(t, m, b.Dir)
			cloudfsSyncOK(t, m, a.Dir)
			for _, x := range ms {
				tc.check(t, x)
			}
			sameTree(t, treeSums(t, b.Dir), treeSums(t, a.Dir), "a and b")
			// A fresh mount sees the same.
			f := vol.mount(t, "", "--poll-interval", "0")
			tc.check(t, f)
			sameTree(t, treeSums(t, f.Dir), treeSums(t, a.Dir), "a fresh mount and a")
		})
	}
}

// TestOpenFileAcrossPull: a descriptor opened before a pull brought a new
// version keeps reading the version it opened; the next open reads the
// new one. A file being written here when the other machine's version
// arrives is not replaced under its writer: what it writes ends up beside
// the other version.
func TestOpenFileAcrossPull(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "open"}
	ms := machines(t, vol, 2)
	a, b := ms[0], ms[1]
	old := strings.Repeat("old version\n", 1000)
	mustWrite(t, a, "f.txt", old)
	mustWrite(t, a, "w.txt", "w1")
	syncAll(t, m, a, b)
	r, err := os.Open(b.Path("f.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	first := make([]byte, 100)
	if _, err := r.ReadAt(first, 0); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(b.Path("w.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	mustWrite(t, a, "f.txt", "new version")
	mustWrite(t, a, "w.txt", "from a")
	cloudfsSyncOK(t, m, a.Dir)
	cloudfsSyncOK(t, m, b.Dir)
	all := make([]byte, len(old))
	if n, err := r.ReadAt(all, 0); err != nil || string(all[:n]) != old {
		t.Fatalf("the descriptor opened before the pull reads %d bytes %q..., %v: want the old version", n, all[:min(n, 20)], err)
	}
	wantContent(t, b, "f.txt", "new version")
	// The writer's descriptor still writes its file, which comes back as a
	// conflict copy beside a's version.
	if _, err := w.WriteAt([]byte("from b's writer"), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wantContent(t, b, "w.txt", "from a")
	cloudfsSyncOK(t, m, b.Dir)
	cloudfsSyncOK(t, m, a.Dir)
	for _, x := range ms {
		wantContent(t, x, "w.txt", "from a")
		wantOneCopy(t, x, "", "w.txt", "from b's writer")
	}
}

// TestKillDuringPull: kill -9 of a daemon in the middle of a pull's apply
// (inside its index transaction) and of a merge commit (after the head
// swap, before the index records it): after the restart nothing is lost
// and the machines converge.
func TestKillDuringPull(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "killpull"}
	a := vol.mount(t, "", "--settle-delay", "0", "--poll-interval", "0")
	b := harness.StartMount(t, harness.MountOptions{Remote: vol.remote(), CacheDir: t.TempDir(),
		Args: []string{"--settle-delay", "1h", "--poll-interval", "0"},
		Env:  append(m.Env(), "CLOUDFS_FAULT=pause-pull-apply,pause-after-swap")})
	mustWrite(t, a, "base", "base")
	cloudfsSyncOK(t, m, a.Dir)
	// b's first sync pulls the base inside a paused transaction.
	killAtPause(t, m, b, "pause-pull-apply")
	b.Opts.Env = m.Env()
	b.Remount()
	mustWrite(t, b, "from-b", "written on b before the merge")
	mustWrite(t, a, "from-a", "A")
	cloudfsSyncOK(t, m, a.Dir)
	// b merges a's commit and dies after swapping head to the merge.
	b.Kill9()
	b.Opts.Env = append(m.Env(), "CLOUDFS_FAULT=pause-after-swap")
	b.Remount()
	killAtPause(t, m, b, "pause-after-swap")
	b.Opts.Env = m.Env()
	b.Remount()
	wantContent(t, b, "from-b", "written on b before the merge")
	cloudfsSyncOK(t, m, b.Dir)
	cloudfsSyncOK(t, m, a.Dir)
	for _, x := range []*harness.Mount{a, b} {
		wantContent(t, x, "base", "base")
		wantContent(t, x, "from-a", "A")
		wantContent(t, x, "from-b", "written on b before the merge")
	}
	sameTree(t, treeSums(t, b.Dir), treeSums(t, a.Dir), "a and b after the kills")
	vol.checkReachable(t)
}

// killAtPause runs cloudfs sync on m in the background, waits for its
// daemon to log that it paused at the fault injection point, and kills it
// there with SIGKILL.
func killAtPause(t *testing.T, minio *harness.MinIO, m *harness.Mount, point string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		cloudfsCmd(t, minio.Env(), "sync", "--timeout", "90s", m.Dir)
	}()
	want := `"point": "` + point + `"`
	waitFor(t, func() bool { return strings.Contains(m.LogText(), want) }, "the daemon to pause at "+point)
	m.Kill9()
	<-done
}

// TestOutageDuringPull: MinIO stops in the middle of a pull (between two
// of its fetches): the pull changes nothing, sync says why, and once MinIO
// is back the next sync brings the change.
func TestOutageDuringPull(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "outagepull"}
	a := vol.mount(t, "", "--settle-delay", "0", "--poll-interval", "0")
	b := harness.StartMount(t, harness.MountOptions{Remote: vol.remote(), CacheDir: t.TempDir(),
		Args: []string{"--settle-delay", "0", "--poll-interval", "0", "--connect-timeout", "2s"},
		Env:  append(m.Env(), "CLOUDFS_FAULT=pause-pull-fetch:4s")})
	mustWrite(t, a, "d1/d2/d3/f", "v1")
	cloudfsSyncOK(t, m, a.Dir)
	cloudfsSyncOK(t, m, b.Dir)
	wantContent(t, b, "d1/d2/d3/f", "v1") // the path is loaded on b
	mustWrite(t, a, "d1/d2/d3/f", "v2")
	cloudfsSyncOK(t, m, a.Dir)
	pauses := strings.Count(b.LogText(), `"point": "pause-pull-fetch"`)
	done := make(chan string)
	go func() {
		code, out := cloudfsCmd(t, m.Env(), "sync", "--timeout", "90s", b.Dir)
		done <- fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(out))
	}()
	waitFor(t, func() bool { return strings.Count(b.LogText(), `"point": "pause-pull-fetch"`) > pauses }, "b's pull to pause between fetches")
	m.Stop()
	res := <-done
	if strings.HasPrefix(res, "exit 0") {
		t.Fatalf("sync succeeded with MinIO stopped in the middle of its pull: %s", res)
	}
	if !strings.Contains(res, "unreachable") {
		t.Fatalf("sync with MinIO stopped during its pull: %s (want it to say unreachable)", res)
	}
	wantContent(t, b, "d1/d2/d3/f", "v1")
	m.Restart()
	cloudfsSyncOK(t, m, b.Dir)
	wantContent(t, b, "d1/d2/d3/f", "v2")
}

// TestOfflineStart: a mount whose cache dir has the remote's index comes
// up while the remote is unreachable: cached files read, writes queue, a
// read of what is not cached fails with EIO after --connect-timeout,
// status says offline; once the remote is back, sync pushes what was
// written and pulls what others committed. A fresh cache dir with the
// remote unreachable still fails with one line.
func TestOfflineStart(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "offline"}
	ms := machines(t, vol, 2)
	a, b := ms[0], ms[1]
	mustWrite(t, a, "cached.txt", "read on b before")
	mustWrite(t, a, "uncached.bin", strings.Repeat("x", 3<<20))
	syncAll(t, m, a, b)
	wantContent(t, b, "cached.txt", "read on b before")
	if _, err := os.Stat(b.Path("uncached.bin")); err != nil {
		t.Fatal(err)
	}
	b.Unmount()
	m.Stop()
	b.Opts.Args = append(b.Opts.Args, "--connect-timeout", "2s")
	b.Remount()
	wantContent(t, b, "cached.txt", "read on b before")
	_, err := os.ReadFile(b.Path("uncached.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of an uncached file offline: %v, want EIO", err)
	}
	mustWrite(t, b, "offline.txt", "written offline")
	code, out := cloudfsCmd(t, m.Env(), "status", "--json", b.Dir)
	if code != 0 || !strings.Contains(out, `"online": false`) {
		t.Fatalf("status offline: exit %d: %s", code, out)
	}
	// A fresh cache dir cannot start offline.
	c := harness.MountOptions{Remote: vol.remote(), CacheDir: t.TempDir(), MountPoint: t.TempDir()}
	code, out = cloudfsCmd(t, m.Env(), "mount", "--cache-dir", c.CacheDir, "--connect-timeout", "2s", c.Remote, c.MountPoint)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; code == 0 || !strings.HasPrefix(last, "cloudfs: ") || !strings.Contains(last, "cannot reach") {
		t.Fatalf("mount of a fresh cache dir with the remote unreachable: exit %d, output:\n%s", code, out)
	}

	m.Restart()
	mustWrite(t, a, "while-b-offline.txt", "A")
	cloudfsSyncOK(t, m, a.Dir)
	cloudfsSyncOK(t, m, b.Dir)
	cloudfsSyncOK(t, m, a.Dir)
	wantContent(t, a, "offline.txt", "written offline")
	wantContent(t, b, "while-b-offline.txt", "A")
	if got := readString(t, b.Path("uncached.bin")); len(got) != 3<<20 {
		t.Fatalf("uncached.bin read %d bytes once online", len(got))
	}
	if st := cloudfsStatus(t, b.Dir); st.QueuedFiles != 0 {
		t.Fatalf("still queued after the sync: %+v", st)
	}
}
