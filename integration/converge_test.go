package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// convergeRounds is how many rounds of the randomised workload run: in each
// one every mount makes one change at the same time.
const convergeRounds = 200

// contentLog records, for the whole workload, every content a file was
// left with by a write (written) and every content a mount saw just before
// it destroyed it (killed: overwritten, truncated, appended to, deleted).
// Everything written and never killed must survive the merges.
type contentLog struct {
	mu      sync.Mutex
	written map[string]string // sha256 -> where it was written, for messages
	killed  map[string]bool
}

func (c *contentLog) write(sum, where string) {
	c.mu.Lock()
	c.written[sum] = where
	c.mu.Unlock()
}

func (c *contentLog) kill(sum string) {
	c.mu.Lock()
	c.killed[sum] = true
	c.mu.Unlock()
}

// worker makes the random changes of one mount.
type worker struct {
	t    *testing.T
	id   int
	root string
	r    *rand.Rand
	log  *contentLog
	op   int
	ops  map[string]int // op name -> times done
}

// isTemp reports whether name is a worker's own temporary name (never
// picked by the workload).
func isTemp(name string) bool { return strings.HasPrefix(name, ".tmp-") }

// entries lists the mount's files and directories (relative paths).
func (w *worker) entries() (files, dirs, links []string) {
	filepath.WalkDir(w.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // changed under the walk
		}
		rel, _ := filepath.Rel(w.root, p)
		if rel == "." {
			return nil
		}
		if isTemp(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, rel)
		case d.Type()&fs.ModeSymlink != 0:
			links = append(links, rel)
		case d.Type().IsRegular():
			files = append(files, rel)
		}
		return nil
	})
	return files, dirs, links
}

func (w *worker) pick(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[w.r.IntN(len(list))]
}

// newName returns a name in a random directory (or the root).
func (w *worker) newName(dirs []string, prefix string) string {
	dir := ""
	if len(dirs) > 0 && w.r.IntN(3) > 0 {
		dir = w.pick(dirs)
	}
	return filepath.Join(dir, fmt.Sprintf("%s%d-%d", prefix, w.id, w.op))
}

func (w *worker) content() []byte {
	return []byte(fmt.Sprintf("machine %d op %d %x\n", w.id, w.op, w.r.Uint64()))
}

// readFD reads all of f from the start.
func readFD(f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// step makes one random change; failures a concurrent change explains
// (a name gone or taken meanwhile) are skipped.
func (w *worker) step() {
	w.op++
	files, dirs, links := w.entries()
	abs := func(rel string) string { return filepath.Join(w.root, rel) }
	var name string
	var err error
	switch k := w.r.IntN(100); {
	case k < 20 || len(files) == 0: // create
		name = "create"
		p := w.newName(dirs, "f")
		data := w.content()
		if err = os.WriteFile(abs(p), data, 0o644); err == nil {
			w.log.write(sha(data), p)
		}
	case k < 35: // overwrite, truncate or append through one descriptor
		p := w.pick(files)
		var f *os.File
		if f, err = os.OpenFile(abs(p), os.O_RDWR, 0); err != nil {
			break
		}
		var old []byte
		if old, err = readFD(f); err == nil {
			var data []byte
			switch w.r.IntN(3) {
			case 0:
				name, data = "write", w.content()
			case 1:
				name, data = "truncate", old[:len(old)/2]
			default:
				name, data = "append", append(old, w.content()...)
			}
			if err = f.Truncate(0); err == nil {
				_, err = f.WriteAt(data, 0)
			}
			if err == nil {
				w.log.kill(sha(old))
				w.log.write(sha(data), p)
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	case k < 45: // delete: moved aside first, so what is deleted is what was read
		name = "delete"
		p := w.pick(files)
		tmp := filepath.Join(filepath.Dir(p), fmt.Sprintf(".tmp-%d-%d", w.id, w.op))
		if err = os.Rename(abs(p), abs(tmp)); err != nil {
			break
		}
		var data []byte
		if data, err = os.ReadFile(abs(tmp)); err == nil {
			w.log.kill(sha(data))
			err = os.Remove(abs(tmp))
		}
	case k < 57: // rename, never over an existing name
		name = "rename"
		src := w.pick(append(slices.Clone(files), links...))
		if w.r.IntN(4) == 0 && len(dirs) > 0 {
			src = w.pick(dirs)
		}
		dst := w.newName(dirs, "r")
		if strings.HasPrefix(dst+"/", src+"/") {
			break // not below itself
		}
		err = unix.Renameat2(unix.AT_FDCWD, abs(src), unix.AT_FDCWD, abs(dst), unix.RENAME_NOREPLACE)
	case k < 65: // mkdir
		name = "mkdir"
		err = os.Mkdir(abs(w.newName(dirs, "d")), 0o755)
	case k < 70: // rmdir (only of an empty one)
		name = "rmdir"
		if d := w.pick(dirs); d != "" {
			err = os.Remove(abs(d))
		}
	case k < 77: // symlink
		name = "symlink"
		err = os.Symlink("target-"+strconv.Itoa(w.op), abs(w.newName(dirs, "l")))
	case k < 83: // hard link
		name = "link"
		err = os.Link(abs(w.pick(files)), abs(w.newName(dirs, "h")))
	case k < 91: // chmod
		name = "chmod"
		p := w.pick(append(files, dirs...))
		modes := []os.FileMode{0o600, 0o640, 0o644, 0o664, 0o755}
		if slices.Contains(dirs, p) {
			modes = []os.FileMode{0o700, 0o750, 0o755, 0o775}
		}
		err = os.Chmod(abs(p), modes[w.r.IntN(len(modes))])
	default: // setxattr
		name = "setxattr"
		p := w.pick(append(files, dirs...))
		err = unix.Setxattr(abs(p), "user.tag", []byte(fmt.Sprintf("m%d-%d", w.id, w.op)), 0)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) &&
		!errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, syscall.EISDIR) &&
		!errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EPERM) {
		w.t.Errorf("machine %d op %d (%s): %v", w.id, w.op, name, err)
	}
	if err == nil {
		w.ops[name]++
	}
}

// fullTree describes every entry under dir: type, mode, size and content
// hash or link target, and xattrs (the list; link counts are
// checked by the index-level fuzzer, TestMachinesConvergeIndex).
func fullTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %o", st.Mode)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			s, err := fileSHA(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size %d %s", st.Size, s[:16])
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if v, err := getxattr(p, "user.tag"); err == nil {
				desc += " tag=" + v
			}
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// TestMachinesConverge runs a randomised workload (create, write, append,
// truncate, rename, delete, mkdir, rmdir, symlink, hard link, chmod,
// setxattr) on three mounts of one bucket at once, with uploads at once
// and polls every 300ms, so merges happen in the middle of it; then every
// mount syncs. Every mount must show the same tree, every content written
// and never seen destroyed by a mount must be in it, and one more sync
// everywhere must put nothing.
func TestMachinesConverge(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CLOUDFS_CONVERGE_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (CLOUDFS_CONVERGE_SEED=%d reruns it)", seed, seed)
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "converge"}
	var ms []*harness.Mount
	for range 3 {
		ms = append(ms, vol.mount(t, "", "--settle-delay", "0", "--poll-interval", "300ms"))
	}
	log := &contentLog{written: map[string]string{}, killed: map[string]bool{}}
	var workers []*worker
	for i, mt := range ms {
		workers = append(workers, &worker{t: t, id: i, root: mt.Dir, r: rand.New(rand.NewPCG(seed, uint64(i))),
			log: log, ops: map[string]int{}})
	}
	start := time.Now()
	for range convergeRounds {
		var wg sync.WaitGroup
		for _, w := range workers {
			wg.Go(w.step)
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	for _, w := range workers {
		t.Logf("machine %d: %v", w.id, w.ops)
	}
	t.Logf("workload of %d rounds took %v", convergeRounds, time.Since(start).Round(time.Millisecond))

	// Sync everywhere until every mount has the same head: a sync pulls
	// what the others committed, merges and pushes.
	for pass := 0; ; pass++ {
		for _, mt := range ms {
			cloudfsSyncOK(t, m, mt.Dir)
		}
		heads := map[string]bool{}
		for _, mt := range ms {
			heads[cloudfsStatus(t, mt.Dir).BaseCommit] = true
		}
		t.Logf("sync pass %d: %d distinct heads", pass+1, len(heads))
		if len(heads) == 1 {
			break
		}
		if pass == 4 {
			logLastCommits(t, openS3(t, m, vol.prefix), 6)
			t.Fatalf("mounts still on %d different commits after %d sync passes", len(heads), pass+1)
		}
	}
	// A fresh mount shows what the bucket says; every mount must agree.
	fresh := vol.mount(t, "", "--poll-interval", "0")
	want := fullTree(t, fresh.Dir)
	for _, mt := range ms {
		got := fullTree(t, mt.Dir)
		var diffs []string
		for k, w := range want {
			if g := got[k]; g != w {
				diffs = append(diffs, fmt.Sprintf("%s: %q here, %q in the bucket", k, g, w))
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: %q here, not in the bucket", k, g))
			}
		}
		if len(diffs) > 0 {
			sort.Strings(diffs)
			t.Fatalf("mount %s differs from a fresh mount of the bucket in %d entries:\n%s", mt.Dir, len(diffs), strings.Join(diffs, "\n"))
		}
	}
	// Every content written and never destroyed is there.
	present := map[string]bool{}
	for p := range treeSums(t, fresh.Dir) {
		if s, err := fileSHA(filepath.Join(fresh.Dir, p)); err == nil {
			present[s] = true
		}
	}
	var lost []string
	for sum, where := range log.written {
		if !log.killed[sum] && !present[sum] {
			lost = append(lost, where)
		}
	}
	sort.Strings(lost)
	if len(lost) > 0 {
		t.Fatalf("%d contents written and never destroyed are gone, e.g. those written at %v", len(lost), lost[:min(5, len(lost))])
	}
	copies := 0
	for p := range want {
		if strings.Contains(p, " (conflict ") {
			copies++
		}
	}
	t.Logf("converged on %d entries (%d conflict copies), %d contents written, %d destroyed",
		len(want), copies, len(log.written), len(log.killed))
	// One more sync everywhere puts nothing.
	head := vol.head(t)
	before := vol.dataBytes(t)
	for _, mt := range ms {
		cloudfsSyncOK(t, m, mt.Dir)
	}
	if h := vol.head(t); h != head {
		t.Fatalf("another sync moved head from %s to %s", head, h)
	}
	if after := vol.dataBytes(t); after != before {
		t.Fatalf("another sync put %d bytes", after-before)
	}
	vol.checkReachable(t)
}

// logLastCommits logs what each of the last n commits from head changed
// against its first parent (device, generation, and the changed entries
// with their link ids and counts): why mounts keep committing.
func logLastCommits(t *testing.T, s chunkstore.Store, n int) {
	ctx := context.Background()
	id, _, ok, err := bucket.ReadHead(ctx, s)
	if err != nil || !ok {
		t.Logf("head: %v", err)
		return
	}
	load := bucket.NewLoader(s)
	for range n {
		c, err := bucket.ReadCommit(ctx, s, id)
		if err != nil || len(c.Parents) == 0 {
			t.Logf("commit %s: %v", id, err)
			return
		}
		p, err := bucket.ReadCommit(ctx, s, c.Parents[0])
		if err != nil {
			t.Logf("parent %s: %v", c.Parents[0], err)
			return
		}
		changes, _, err := tree.Diff(p.Root, c.Root, func(id chunkstore.ID) (*tree.Tree, error) { return load.Tree(ctx, id) })
		t.Logf("commit %.12s gen %d by %s (%d parents): %d changes, %v", id, c.Generation, c.Device, len(c.Parents), len(changes), err)
		for _, ch := range changes {
			desc := func(e *tree.Entry) string {
				if e == nil {
					return "-"
				}
				return fmt.Sprintf("%s mode %o size %d link %x/%d subtree %.8s", e.Type, e.Mode, e.Size, e.LinkID, e.Nlink, e.Subtree)
			}
			t.Logf("  %s %s: %s -> %s", ch.Kind, ch.Path, desc(ch.Old), desc(ch.New))
		}
		id = c.Parents[0]
	}
}
