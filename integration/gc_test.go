package integration

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// gcReport is what the tests read of `cloudfs gc --json`.
type gcReport struct {
	Marked, Pending, Freed, Reachable struct {
		Objects int64 `json:"objects"`
	}
	MarksSwept int `json:"marks_swept"`
}

// runGC runs cloudfs gc --json with an aggressive policy and grace.
func runGC(t *testing.T, env []string, remote, grace string) gcReport {
	t.Helper()
	code, out := cloudfsCmd(t, env, "gc", "--json", "--grace", grace, "--keep-last", "1", "--keep-within", "0", remote)
	if code != 0 {
		t.Fatalf("gc: exit %d: %s", code, out)
	}
	var rep gcReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gc --json: %v: %s", err, out)
	}
	return rep
}

// chunkFiles returns the chunk objects of a local remote, with their
// modification times.
func chunkFiles(t *testing.T, remote string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(filepath.Join(remote, "chunks"), func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == filepath.Join(remote, "chunks") {
			return filepath.SkipDir // none yet: small files are in packs
		}
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGCOrphansAndFsck: the chunks a failed round put are still in the
// bucket after a gc run marks them, and after a second run within the
// grace period; a run after it deletes them and nothing reachable. Then
// fsck: a chunk corrupted by hand is found by --read-data (and not
// without), a chunk deleted by hand is reported with its file's path, and
// reading that file on a fresh mount gives EIO.
func TestGCOrphansAndFsck(t *testing.T) {
	harness.RequireFUSE(t)
	remote := t.TempDir()
	m := harness.StartMount(t, harness.MountOptions{Remote: remote, Args: []string{"--settle-delay", "0"}})
	keep := []byte("kept across every collection\n")
	writeClose(t, m.Path("keep.txt"), keep)
	if code, out := cloudfsCmd(t, nil, "sync", m.Dir); code != 0 {
		t.Fatalf("sync: %d %s", code, out)
	}
	before := chunkFiles(t, remote)

	// A round that fails after putting its chunks: the trees area is a
	// file, so the round's first tree put fails.
	trees := filepath.Join(remote, "trees")
	if err := os.Rename(trees, trees+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trees, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 3<<20)
	rand.Read(secret)
	writeClose(t, m.Path("secret.bin"), secret)
	if code, out := cloudfsCmd(t, nil, "sync", "--timeout", "20s", m.Dir); code == 0 {
		t.Fatalf("sync succeeded with the trees area unwritable: %s", out)
	}
	var orphans []string
	for p := range chunkFiles(t, remote) {
		if _, ok := before[p]; !ok {
			orphans = append(orphans, p)
		}
	}
	if len(orphans) == 0 {
		t.Fatal("the failed round put no chunk: the test cannot see orphans")
	}
	if err := os.Remove(m.Path("secret.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(trees); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(trees+".away", trees); err != nil {
		t.Fatal(err)
	}
	if code, out := cloudfsCmd(t, nil, "sync", m.Dir); code != 0 {
		t.Fatalf("sync after the outage: %d %s", code, out)
	}

	const grace = 3 * time.Second
	// The orphans must be older than the grace period to be marked.
	newest := time.Time{}
	for _, p := range orphans {
		if mt := chunkFiles(t, remote)[p]; mt.After(newest) {
			newest = mt
		}
	}
	time.Sleep(time.Until(newest.Add(grace + 100*time.Millisecond)))
	marked := time.Now()
	rep := runGC(t, nil, remote, grace.String())
	if rep.Marked.Objects < int64(len(orphans)) || rep.Freed.Objects != 0 {
		t.Fatalf("first run: marked %d, freed %d; want at least the %d orphans marked and none freed", rep.Marked.Objects, rep.Freed.Objects, len(orphans))
	}
	rep = runGC(t, nil, remote, grace.String())
	if time.Since(marked) >= grace {
		t.Fatal("the second run ended after the grace period: it cannot show the orphans kept within it")
	}
	if rep.Freed.Objects != 0 || rep.Pending.Objects < int64(len(orphans)) {
		t.Fatalf("within the grace period: freed %d, pending %d", rep.Freed.Objects, rep.Pending.Objects)
	}
	for _, p := range orphans {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("orphan deleted within the grace period: %v", err)
		}
	}
	time.Sleep(time.Until(marked.Add(grace + 100*time.Millisecond)))
	rep = runGC(t, nil, remote, grace.String())
	if rep.Freed.Objects < int64(len(orphans)) || rep.MarksSwept != 1 {
		t.Fatalf("after the grace period: freed %d, swept %d marks", rep.Freed.Objects, rep.MarksSwept)
	}
	for _, p := range orphans {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("orphan %s survived the sweep: %v", p, err)
		}
	}
	if code, out := cloudfsCmd(t, nil, "fsck", "--read-data", remote); code != 0 {
		t.Fatalf("fsck --read-data after gc: exit %d: %s", code, out)
	}

	// fsck finds damage.
	big := patterned(77, 6<<20)
	before = chunkFiles(t, remote)
	if err := os.MkdirAll(m.Path("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeClose(t, m.Path("dir", "big.bin"), big)
	if code, out := cloudfsCmd(t, nil, "sync", m.Dir); code != 0 {
		t.Fatalf("sync: %d %s", code, out)
	}
	var bigChunks []string
	for p := range chunkFiles(t, remote) {
		if _, ok := before[p]; !ok {
			bigChunks = append(bigChunks, p)
		}
	}
	if len(bigChunks) < 2 {
		t.Fatalf("big.bin is %d chunk objects; the test needs two", len(bigChunks))
	}
	m.Unmount()
	data, err := os.ReadFile(bigChunks[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(bigChunks[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := cloudfsCmd(t, nil, "fsck", remote); code != 0 {
		t.Fatalf("fsck without --read-data read the chunk's bytes: exit %d: %s", code, out)
	}
	code, out := cloudfsCmd(t, nil, "fsck", "--read-data", remote)
	if code != 1 || !strings.Contains(out, "/dir/big.bin") {
		t.Fatalf("fsck --read-data of a corrupt chunk: exit %d, want 1 naming /dir/big.bin:\n%s", code, out)
	}
	if err := os.Remove(bigChunks[1]); err != nil {
		t.Fatal(err)
	}
	code, out = cloudfsCmd(t, nil, "fsck", remote)
	if code != 1 || !strings.Contains(out, "/dir/big.bin") || !strings.Contains(out, filepath.Base(bigChunks[1])) {
		t.Fatalf("fsck of a deleted chunk: exit %d, want 1 naming the chunk and /dir/big.bin:\n%s", code, out)
	}
	fresh := harness.StartMount(t, harness.MountOptions{Remote: remote})
	_, err = os.ReadFile(fresh.Path("dir", "big.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a file missing a chunk: %v, want EIO", err)
	}
	if got := readString(t, fresh.Path("keep.txt")); got != string(keep) {
		t.Fatalf("keep.txt reads %q", got)
	}
}

// TestGCWhileMountsWrite runs gc in a loop, with a one-second grace period
// and only head kept, while two mounts of one bucket write, delete and
// write again the same contents (so that new commits keep naming chunks a
// collection marked). Afterwards fsck --read-data is clean and every file
// reads back on both mounts with its checksum.
func TestGCWhileMountsWrite(t *testing.T) {
	mi := harness.StartMinIO(t)
	vol := s3Volume{m: mi, prefix: "gcloop"}
	ms := machines(t, vol, 2)
	contents := make([][]byte, 4)
	for i := range contents {
		contents[i] = patterned(uint64(100+i), 300<<10+i*7919)
	}
	stop, gcDone := make(chan struct{}), make(chan struct{})
	var gcRuns int
	var gcErr error
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, out := cloudfsCmd(t, mi.Env(), "gc", "--grace", "1s", "--keep-last", "1", "--keep-within", "0", vol.remote())
			if code != 0 {
				gcErr = fmt.Errorf("gc exit %d: %s", code, out)
				return
			}
			gcRuns++
			time.Sleep(200 * time.Millisecond) // pace the runs; not a synchronisation
		}
	}()
	want := map[string]string{}
	var wmu sync.Mutex
	var writers sync.WaitGroup
	for w, mnt := range ms {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 12 {
				name := fmt.Sprintf("m%d-f%d", w, i%3)
				data := contents[(i+w)%len(contents)]
				p := mnt.Path(name)
				_ = os.Remove(p)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Errorf("write %s: %v", name, err)
					return
				}
				wmu.Lock()
				want[name] = sha(data)
				wmu.Unlock()
				if code, out := cloudfsCmd(t, mi.Env(), "sync", "--timeout", "120s", mnt.Dir); code != 0 {
					t.Errorf("sync %s: exit %d: %s", mnt.Dir, code, out)
					return
				}
				time.Sleep(300 * time.Millisecond) // let marks age past their deadline between writes
			}
		}()
	}
	writers.Wait()
	close(stop)
	<-gcDone
	if t.Failed() {
		t.FailNow()
	}
	if gcErr != nil {
		t.Fatal(gcErr)
	}
	if gcRuns < 3 {
		t.Fatalf("only %d gc runs overlapped the writes", gcRuns)
	}
	syncAll(t, mi, ms...)
	// Two more runs a grace period apart sweep what the loop marked last.
	runGC(t, mi.Env(), vol.remote(), "1s")
	time.Sleep(1100 * time.Millisecond)
	runGC(t, mi.Env(), vol.remote(), "1s")
	if code, out := cloudfsCmd(t, mi.Env(), "fsck", "--read-data", vol.remote()); code != 0 {
		t.Fatalf("fsck --read-data after gc under writes: exit %d:\n%s", code, out)
	}
	for _, mnt := range ms {
		checkFiles(t, mnt.Dir, want, "after gc under writes")
	}
	fresh := vol.mount(t, "")
	checkFiles(t, fresh.Dir, want, "fresh mount after gc under writes")
}

// TestFsckCacheDir: fsck --cache-dir passes an unmounted cache dir with
// changes not uploaded, and names the file whose staging file is gone
// (exit 1).
func TestFsckCacheDir(t *testing.T) {
	harness.RequireFUSE(t)
	m := harness.StartMount(t, harness.MountOptions{Remote: t.TempDir(), Args: []string{"--settle-delay", "30m"}})
	if err := os.MkdirAll(m.Path("docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeClose(t, m.Path("docs", "queued.txt"), []byte("not uploaded yet\n"))
	m.Unmount()
	if code, out := cloudfsCmd(t, nil, "fsck", "--cache-dir", m.Opts.CacheDir); code != 0 {
		t.Fatalf("fsck --cache-dir of a sound cache dir: exit %d:\n%s", code, out)
	}
	// The queued file's staging file: the one the index names, found by
	// its content.
	var victim string
	ents, err := os.ReadDir(filepath.Join(m.Opts.CacheDir, "staging"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(m.Opts.CacheDir, "staging", e.Name())
		if b, err := os.ReadFile(p); err == nil && string(b) == "not uploaded yet\n" {
			victim = p
		}
	}
	if victim == "" {
		t.Fatal("no staging file holds the queued file's bytes")
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	code, out := cloudfsCmd(t, nil, "fsck", "--cache-dir", m.Opts.CacheDir)
	if code != 1 || !strings.Contains(out, "/docs/queued.txt") {
		t.Fatalf("fsck --cache-dir with a staging file gone: exit %d, want 1 naming /docs/queued.txt:\n%s", code, out)
	}
}

// TestLog: cloudfs log lists the commits newest first with their
// generation, device, totals and net change; -n bounds the list.
func TestLog(t *testing.T) {
	harness.RequireFUSE(t)
	remote := t.TempDir()
	m := harness.StartMount(t, harness.MountOptions{Remote: remote, Args: []string{"--settle-delay", "30m"}})
	for i := range 3 {
		writeClose(t, m.Path(fmt.Sprintf("f%d", i)), []byte(strings.Repeat("x", 100*(i+1))))
		if code, out := cloudfsCmd(t, nil, "sync", m.Dir); code != 0 {
			t.Fatalf("sync: %d %s", code, out)
		}
	}
	code, out := cloudfsCmd(t, nil, "log", "--json", remote)
	if code != 0 {
		t.Fatalf("log: exit %d: %s", code, out)
	}
	var entries []struct {
		Generation uint64 `json:"generation"`
		Device     string `json:"device"`
		Files      uint64 `json:"files"`
		FilesDelta int64  `json:"files_delta"`
		BytesDelta int64  `json:"bytes_delta"`
	}
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("log --json: %v: %s", err, out)
	}
	if len(entries) != 3 {
		t.Fatalf("log lists %d commits, want 3:\n%s", len(entries), out)
	}
	for i, e := range entries {
		want := uint64(3 - i)
		if e.Generation != want || e.Files != want || e.FilesDelta != 1 || e.BytesDelta != int64(100*want) || e.Device == "" {
			t.Errorf("entry %d: %+v, want generation and files %d, one more file of %d bytes", i, e, want, 100*want)
		}
	}
	if code, out := cloudfsCmd(t, nil, "log", "-n", "2", remote); code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("log -n 2: exit %d, want a header and two lines:\n%s", code, out)
	}
}
