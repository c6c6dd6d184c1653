package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/local"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// hostileRSSBound is the peak resident size a daemon (the race build,
// which costs several times the memory of the plain one) may reach while
// it meets any object of a hostile bucket. An unbounded read of the 3 GiB
// head below once took 18-21 GiB.
const hostileRSSBound = 512 << 20

// hostileSize is how large the oversized objects are: sparse 3 GiB files
// in a local-directory remote, 80 MiB of zeros in MinIO (uploading more
// would only cost the test time).
func hostileSize(s3 bool) int64 {
	if s3 {
		return 80 << 20
	}
	return 3 << 30
}

// hostileRemote is one remote whose objects a test may replace behind
// cloudfs's back: a local directory or a MinIO prefix.
type hostileRemote struct {
	url   string
	env   []string
	store chunkstore.Store // reads the objects as cloudfs does
	// put replaces the object under key with data, or, with data nil,
	// with size bytes of zeros.
	put func(t *testing.T, key string, data []byte, size int64)
}

func newHostileDir(t *testing.T) *hostileRemote {
	dir := t.TempDir()
	s, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &hostileRemote{url: dir, store: s, put: func(t *testing.T, key string, data []byte, size int64) {
		path := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if data == nil {
			if err := os.Truncate(path, size); err != nil { // sparse: costs no disk
				t.Fatal(err)
			}
		}
	}}
}

func newHostileS3(t *testing.T, m *harness.MinIO, prefix string) *hostileRemote {
	return &hostileRemote{url: "s3://" + m.Bucket + "/" + prefix, env: m.Env(), store: openS3(t, m, prefix),
		put: func(t *testing.T, key string, data []byte, size int64) {
			if data == nil {
				data = make([]byte, size)
			}
			_, err := m.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(m.Bucket),
				Key: aws.String(prefix + "/" + key), Body: bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
		}}
}

// hostileVolume writes the volume every case starts from through a mount:
// small.txt, big.bin (several chunks) and d/inner.txt; it returns big's
// content.
func hostileVolume(t *testing.T, r *hostileRemote) []byte {
	m := harness.StartMount(t, harness.MountOptions{Remote: r.url, Env: r.env, Args: []string{"--poll-interval", "0"}})
	big := randomBytes(t, 5<<20)
	for name, data := range map[string][]byte{"small.txt": []byte("small"), "big.bin": big, "d/inner.txt": []byte("inner")} {
		if err := os.MkdirAll(filepath.Dir(m.Path(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.Path(name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, out := cloudfsCmd(t, r.env, "sync", m.Dir); code != 0 {
		t.Fatalf("sync: exit %d: %s", code, out)
	}
	m.Unmount()
	return big
}

// corruptedRead flips a bit of byte at of object key, which holds chunk
// id of the file at path: reading the file on a fresh mount must give EIO
// and a log line naming the chunk.
func corruptedRead(t *testing.T, r *hostileRemote, key string, at int, id chunkstore.ID, path ...string) {
	t.Helper()
	stored := getStored(t, r, key)
	stored[at] ^= 0x40
	r.put(t, key, stored, 0)
	m := mountHostile(t, r)
	_, err := os.ReadFile(m.Path(path...))
	wantEIO(t, "read of a file with a corrupted chunk in "+key, err)
	if !strings.Contains(m.LogText(), id.String()) {
		t.Fatalf("the log does not name the corrupted chunk %s", id)
	}
}

// commitRoot stores the tree of top and makes it head, in a commit on
// headID (whose commit is c).
func commitRoot(t *testing.T, r *hostileRemote, headID chunkstore.ID, c *tree.Commit, top *tree.Dir) {
	ctx := context.Background()
	rootID := putTree(t, r, top)
	next := *c
	next.Root, next.Parents, next.Generation = rootID, []chunkstore.ID{headID}, c.Generation+1
	next.Stats = top.Totals()
	cid, err := bucket.PutCommit(ctx, r.store, &next)
	if err != nil {
		t.Fatal(err)
	}
	_, etag, _, err := bucket.ReadHead(ctx, r.store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bucket.SwapHead(ctx, r.store, cid, etag); err != nil {
		t.Fatal(err)
	}
}

// headCommit returns the remote's head commit and its root tree.
func headCommit(t *testing.T, r *hostileRemote) (chunkstore.ID, *tree.Commit, *tree.Tree) {
	ctx := context.Background()
	id, _, ok, err := bucket.ReadHead(ctx, r.store)
	if err != nil || !ok {
		t.Fatalf("head: %v (present %v)", err, ok)
	}
	c, err := bucket.ReadCommit(ctx, r.store, id)
	if err != nil {
		t.Fatal(err)
	}
	root, err := bucket.NewLoader(r.store).Tree(ctx, c.Root)
	if err != nil {
		t.Fatal(err)
	}
	return id, c, root
}

// putTree builds d into r's store and returns its tree id.
func putTree(t *testing.T, r *hostileRemote, d *tree.Dir) chunkstore.ID {
	id, objs, err := tree.Build(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := bucket.PutObject(context.Background(), r.store, o); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// getStored returns the stored bytes of key.
func getStored(t *testing.T, r *hostileRemote, key string) []byte {
	data, _, err := r.store.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// daemonRSS returns the daemon's peak resident size (VmHWM).
func daemonRSS(t *testing.T, m *harness.Mount) int64 {
	rss, err := peakRSS(m.PID())
	if err != nil {
		t.Fatalf("daemon %d: %v", m.PID(), err)
	}
	return rss
}

// mountHostile mounts r on a fresh machine (a new cache dir) and checks,
// when the test ends, that the daemon is alive and answering and stayed
// under hostileRSSBound.
func mountHostile(t *testing.T, r *hostileRemote) *harness.Mount {
	m := harness.StartMount(t, harness.MountOptions{Remote: r.url, Env: r.env, Args: []string{"--poll-interval", "0"}})
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if _, err := os.ReadFile(m.Path("small.txt")); err != nil {
			t.Errorf("after the hostile object the mount does not serve small.txt: %v", err)
		}
		rss := daemonRSS(t, m)
		t.Logf("daemon peak RSS %d MiB", rss>>20)
		if rss > hostileRSSBound {
			t.Errorf("daemon peak RSS %d MiB, over the bound of %d MiB", rss>>20, hostileRSSBound>>20)
		}
	})
	return m
}

// wantEIO fails unless err is EIO.
func wantEIO(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("%s: %v, want EIO", what, err)
	}
}

// resetPeakRSS lowers this process's peak RSS to its current RSS, after
// returning what memory it can to the system. Go starts a child with
// CLONE_VM, so the kernel records the parent's peak as the child's at
// exec: without this, the child's Maxrss is at least the test binary's
// own peak (548 MiB in one CI run), whatever the child did.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}

// mountRefused runs a fresh mount of r that must fail with a one-line
// error mentioning want, under hostileRSSBound.
func mountRefused(t *testing.T, r *hostileRemote, want string) {
	cmd := exec.Command(harness.Binary(t), "mount", "--cache-dir", t.TempDir(), r.url, t.TempDir())
	cmd.Env = append(os.Environ(), r.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	resetPeakRSS(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("mount succeeded:\n%s", out.String())
		}
	case <-time.After(harness.MountTimeout):
		cmd.Process.Kill()
		t.Fatalf("mount neither failed nor finished within %v:\n%s", harness.MountTimeout, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "cloudfs: ") || !strings.Contains(last, want) {
		t.Fatalf("mount's last line %q does not say %q; output:\n%s", last, want, out.String())
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	t.Logf("refused mount: %s; peak RSS %d MiB", lines[len(lines)-1], rss>>20)
	if rss > hostileRSSBound {
		t.Fatalf("the refused mount peaked at %d MiB, over %d MiB", rss>>20, hostileRSSBound>>20)
	}
}

// TestHostileBucket replaces objects of a volume behind cloudfs's back, on
// a local-directory remote and on MinIO, and checks that each one ends in
// a clean error (a refused mount, one line) or EIO for the operation that
// met it, with the daemon alive and its peak RSS under hostileRSSBound.
func TestHostileBucket(t *testing.T) {
	minio := harness.StartMinIO(t)
	backends := map[string]func(t *testing.T) *hostileRemote{
		"dir": newHostileDir,
		"minio": func(t *testing.T) *hostileRemote {
			return newHostileS3(t, minio, strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"))
		},
	}
	for name, open := range backends {
		s3 := name == "minio"
		t.Run(name+"/OversizedHead", func(t *testing.T) {
			r := open(t)
			hostileVolume(t, r)
			r.put(t, chunkstore.HeadKey, nil, hostileSize(s3))
			mountRefused(t, r, "larger than its kind")
		})
		t.Run(name+"/TruncatedRootTree", func(t *testing.T) {
			r := open(t)
			hostileVolume(t, r)
			_, c, _ := headCommit(t, r)
			stored := getStored(t, r, chunkstore.TreeKey(c.Root))
			r.put(t, chunkstore.TreeKey(c.Root), stored[:len(stored)/2], 0)
			m := harness.StartMount(t, harness.MountOptions{Remote: r.url, Env: r.env, Args: []string{"--poll-interval", "0"}})
			_, err := os.ReadDir(m.Dir)
			wantEIO(t, "readdir of a root whose tree is truncated", err)
			if _, err := os.Stat(m.Dir); err != nil {
				t.Fatalf("the mount point after the EIO: %v", err)
			}
			if rss := daemonRSS(t, m); rss > hostileRSSBound {
				t.Fatalf("daemon peak RSS %d MiB", rss>>20)
			}
		})
		t.Run(name+"/CorruptedChunk", func(t *testing.T) {
			r := open(t)
			hostileVolume(t, r)
			_, _, root := headCommit(t, r)
			e := root.Find("big.bin")
			if e == nil || len(e.Chunks) < 2 {
				t.Fatalf("big.bin's entry: %+v", e)
			}
			key := chunkstore.ChunkKey(e.Chunks[1].ID)
			corruptedRead(t, r, key, len(getStored(t, r, key))/2, e.Chunks[1].ID, "big.bin")
		})
		t.Run(name+"/OversizedChunk", func(t *testing.T) {
			r := open(t)
			hostileVolume(t, r)
			_, _, root := headCommit(t, r)
			e := root.Find("big.bin")
			r.put(t, chunkstore.ChunkKey(e.Chunks[0].ID), nil, hostileSize(s3))
			m := mountHostile(t, r)
			_, err := os.ReadFile(m.Path("big.bin"))
			wantEIO(t, "read of a file with an oversized chunk", err)
		})
		t.Run(name+"/CorruptedPack", func(t *testing.T) {
			r := open(t)
			hostileVolume(t, r)
			_, _, root := headCommit(t, r)
			d := root.Find("d")
			inner, err := bucket.NewLoader(r.store).Tree(context.Background(), d.Subtree)
			if err != nil {
				t.Fatal(err)
			}
			e := inner.Find("inner.txt")
			if e == nil || len(e.Locs) != 1 {
				t.Fatalf("inner.txt's entry has no location in a pack: %+v", e)
			}
			l := e.Locs[0]
			key := chunkstore.PackKey(l.Pack)
			corruptedRead(t, r, key, int(l.Off)+int(l.Len)-1, e.Chunks[0].ID, "d", "inner.txt")
		})
		t.Run(name+"/LyingLocation", func(t *testing.T) {
			// An entry whose location is another chunk's bytes (small.txt's)
			// must not read as those bytes.
			r := open(t)
			hostileVolume(t, r)
			headID, c, root := headCommit(t, r)
			small := root.Find("small.txt")
			if small == nil || len(small.Locs) != 1 {
				t.Fatalf("small.txt's entry has no location in a pack: %+v", small)
			}
			top := tree.DirOf(root)
			liar := tree.Entry{Name: "liar.txt", Type: tree.TypeFile, Mode: 0o644, Size: small.Size,
				Chunks: []tree.ChunkRef{{ID: chunkstore.Hash([]byte("lies")), Length: small.Chunks[0].Length}},
				Locs:   small.Locs}
			if err := top.Set(liar); err != nil {
				t.Fatal(err)
			}
			commitRoot(t, r, headID, c, top)
			m := mountHostile(t, r)
			_, err := os.ReadFile(m.Path("liar.txt"))
			wantEIO(t, "read of a file whose location holds another chunk", err)
		})
		t.Run(name+"/ReusedSubtrees", func(t *testing.T) {
			r := open(t)
			hostileVolume(t, r)
			headID, c, root := headCommit(t, r)
			// Sixty levels of a tree that names the level below twice:
			// 2^60 directories from sixty small objects, each claiming
			// to hold one directory.
			below := tree.EmptyTreeID
			for range 60 {
				d := tree.NewDir()
				for _, n := range []string{"a", "b"} {
					if err := d.Set(tree.Entry{Name: n, Type: tree.TypeDir, Mode: 0o755, Subtree: below,
						Totals: tree.Stats{Dirs: 1}}); err != nil {
						t.Fatal(err)
					}
				}
				below = putTree(t, r, d)
			}
			top := tree.DirOf(root)
			if err := top.Set(tree.Entry{Name: "dag", Type: tree.TypeDir, Mode: 0o755, Subtree: below,
				Totals: tree.Stats{Dirs: 3}}); err != nil {
				t.Fatal(err)
			}
			commitRoot(t, r, headID, c, top)
			m := mountHostile(t, r)
			if ents, err := os.ReadDir(m.Path("dag")); err != nil || len(ents) != 2 {
				t.Fatalf("dag, consistent with its entry: %v, %v", ents, err)
			}
			_, err := os.ReadDir(m.Path("dag", "a"))
			wantEIO(t, "readdir of a level whose entries claim less than they hold", err)
			if !strings.Contains(m.LogText(), "is claimed to hold") {
				t.Fatalf("no log line says which tree failed its totals:\n%s", m.LogText())
			}
		})
	}
}
