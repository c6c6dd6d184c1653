package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// s3Volume is one volume (a prefix) in a test's MinIO bucket.
type s3Volume struct {
	m      *harness.MinIO
	prefix string
}

func (v s3Volume) remote() string { return "s3://" + v.m.Bucket + "/" + v.prefix }

// mount mounts the volume with cacheDir ("" for a fresh one) and extra
// mount flags.
func (v s3Volume) mount(t *testing.T, cacheDir string, args ...string) *harness.Mount {
	t.Helper()
	return harness.StartMount(t, harness.MountOptions{Remote: v.remote(), CacheDir: cacheDir, Args: args, Env: v.m.Env()})
}

// initFixedChunking creates the volume's settings with the fixed test
// polynomial before its first mount (which then reads them), so chunk
// boundaries, and the bytes an edit adds, repeat from run to run; a new
// volume otherwise gets a random polynomial.
func (v s3Volume) initFixedChunking(t *testing.T) {
	t.Helper()
	if _, err := bucket.LoadOrInitVolume(context.Background(), v.store(t), chunkstore.DefaultParams(chunkstore.TestPol)); err != nil {
		t.Fatal(err)
	}
}

// store opens the volume's S3 store (no retries), as another program would.
func (v s3Volume) store(t *testing.T) chunkstore.Store { return openS3(t, v.m, v.prefix) }

// bytes returns what the volume's objects add up to (ListObjectsV2 sizes).
func (v s3Volume) bytes(t *testing.T) int64 {
	t.Helper()
	n, err := s3PrefixSize(v.m.Client(), v.m.Bucket, v.prefix+"/")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// dataBytes is bytes without the device records, which a mount rewrites
// when it acknowledges a commit it pulled (a poll's doing, at any time).
func (v s3Volume) dataBytes(t *testing.T) int64 {
	t.Helper()
	dev, err := s3PrefixSize(v.m.Client(), v.m.Bucket, v.prefix+"/devices/")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v.bytes(t) - dev
}

// addedBy runs change on the mount at mnt, syncs it, and returns how many
// bytes the volume gained meanwhile.
func (v s3Volume) addedBy(t *testing.T, mnt string, change func()) int64 {
	t.Helper()
	before := v.bytes(t)
	change()
	cloudfsSyncOK(t, v.m, mnt)
	return v.bytes(t) - before
}

// chunks returns the number of chunk objects in the volume.
func (v s3Volume) chunks(t *testing.T) int {
	t.Helper()
	c, prefix := v.m.Client(), v.prefix+"/chunks/"
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(v.m.Bucket), Prefix: &prefix})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}

// checkReachable fails unless every object reachable from the volume's
// head is in the bucket and intact.
func (v s3Volume) checkReachable(t *testing.T) {
	t.Helper()
	if err := bucket.CheckReachable(context.Background(), v.store(t)); err != nil {
		t.Fatalf("CheckReachable: %v", err)
	}
}

// head returns the volume's head commit id ("" when none).
func (v s3Volume) head(t *testing.T) string {
	t.Helper()
	id, _, ok, err := bucket.ReadHead(context.Background(), v.store(t))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return id.String()
}

// cloudfsSync runs `cloudfs sync mnt` and fails the test unless it exits 0.
func cloudfsSyncOK(t *testing.T, m *harness.MinIO, mnt string) time.Duration {
	t.Helper()
	start := time.Now()
	code, out := cloudfsCmd(t, m.Env(), "sync", mnt)
	if code != 0 {
		t.Fatalf("cloudfs sync %s: exit %d: %s", mnt, code, out)
	}
	return time.Since(start)
}

// mountStatus is what the tests read of `cloudfs status --json`.
type mountStatus struct {
	QueuedFiles int    `json:"queued_files"`
	QueuedBytes int64  `json:"queued_bytes"`
	Uploading   int    `json:"uploading"`
	LastCommit  string `json:"last_commit"`
	BaseCommit  string `json:"base_commit"`
	LastError   string `json:"last_error"`
	Failed      []struct {
		Path  string `json:"path"`
		Error string `json:"error"`
	} `json:"failed"`
	ChunksUploaded int `json:"chunks_uploaded"`
	ChunksPresent  int `json:"chunks_present"`
	Volume         *struct {
		Files, Dirs, Bytes, Chunks uint64
	} `json:"volume"`
	Cache struct {
		Hits, Misses int64
		Ranged       int64 `json:"ranged"`
	} `json:"cache"`
	Device string `json:"device"`
	Online bool   `json:"online"`
	Pull   struct {
		Pulls          int64  `json:"pulls"`
		LastPullCommit string `json:"last_pull_commit"`
		ConflictCount  int    `json:"conflict_count"`
		Conflicts      []struct {
			Kind     string `json:"kind"`
			Path     string `json:"path"`
			CopyPath string `json:"copy_path"`
		} `json:"conflicts"`
		DeviceShared string `json:"device_shared"`
	} `json:"pull"`
}

func cloudfsStatus(t *testing.T, mnt string) mountStatus {
	t.Helper()
	code, out := cloudfsCmd(t, nil, "status", "--json", mnt)
	if code != 0 {
		t.Fatalf("cloudfs status --json %s: exit %d: %s", mnt, code, out)
	}
	var st mountStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("cloudfs status --json: %v in %q", err, out)
	}
	return st
}

// socketStatus asks the daemon of m for its status straight over the
// control socket in its cache dir (the protocol of `cloudfs status`,
// without starting a process: fast enough to sample an upload).
func socketStatus(t *testing.T, m *harness.Mount) mountStatus {
	t.Helper()
	c, err := net.Dial("unix", filepath.Join(m.Opts.CacheDir, "control.sock"))
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"op":"status"}` + "\n")); err != nil {
		t.Fatalf("control socket: %v", err)
	}
	var rep struct {
		OK     bool        `json:"ok"`
		Error  string      `json:"error"`
		Status mountStatus `json:"status"`
	}
	if err := json.NewDecoder(c).Decode(&rep); err != nil || !rep.OK {
		t.Fatalf("control socket status: %v %s", err, rep.Error)
	}
	return rep.Status
}

// waitUploading samples the daemon's status until it reports an upload in
// progress (true) or nothing is queued any more (false).
func waitUploading(t *testing.T, m *harness.Mount) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st := socketStatus(t, m)
		if st.Uploading > 0 {
			return true
		}
		if st.QueuedFiles == 0 {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: no upload started within 30s", m.Dir)
	return false
}

// writeClose writes data to path and closes it (the durability point of
// write-back).
func writeClose(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkFiles fails unless every file in want (path relative to dir ->
// sha256) is under dir with that content.
func checkFiles(t *testing.T, dir string, want map[string]string, when string) {
	t.Helper()
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		got, err := fileSHA(filepath.Join(dir, n))
		if err != nil {
			t.Fatalf("%s: %s: %v", when, n, err)
		}
		if got != want[n] {
			t.Fatalf("%s: %s has sha256 %s, want %s", when, n, got[:12], want[n][:12])
		}
	}
}

// treeSums returns path -> sha256 of every regular file under dir, and
// path -> "dir" or "-> target" for directories and symlinks.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel] = "dir"
		default:
			s, err := fileSHA(p)
			if err != nil {
				return err
			}
			out[rel] = s
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

// sameTree fails unless the two trees' sums are equal.
func sameTree(t *testing.T, got, want map[string]string, what string) {
	t.Helper()
	var diffs []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s differs", k))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+k)
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Fatalf("%s: %d differences: %s", what, len(diffs), strings.Join(diffs, ", "))
	}
}

// oneLine fails unless out (a command's output) is exactly one line that
// contains every string in want.
func oneLine(t *testing.T, out string, want ...string) {
	t.Helper()
	s := strings.TrimSpace(out)
	if s == "" || strings.Contains(s, "\n") {
		t.Errorf("want one line, got %q", out)
	}
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("message %q does not mention %q", s, w)
		}
	}
}

// patterned returns n deterministic pseudo-random bytes for seed (cheap to
// regenerate, incompressible).
func patterned(seed uint64, n int) []byte { return benchBytes(seed, n) }

// freePortForTest returns a 127.0.0.1 port nobody listens on (it was free
// a moment ago).
func freePortForTest() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
