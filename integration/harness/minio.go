package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIOStartTimeout bounds how long StartMinIO and Restart wait for MinIO to
// answer /minio/health/live and then an authenticated S3 request.
var MinIOStartTimeout = 60 * time.Second

// MinIOBuildHint says how to provide the minio binary; it is part of the
// failure message when none is found.
const MinIOBuildHint = "build it with: GOBIN=$HOME/.cache/cloudfs-ci/bin go install " +
	"github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c (or run bash .ci/run), " +
	"or point CLOUDFS_MINIO at a minio binary"

// MinIO is a MinIO server started by StartMinIO: a subprocess listening on
// 127.0.0.1 with its own data directory, random root credentials and one
// bucket. It is stopped, reaped and its data removed when the test ends.
type MinIO struct {
	Endpoint  string // "http://127.0.0.1:<port>"
	AccessKey string // root user
	SecretKey string // root password
	Bucket    string // created by StartMinIO
	Region    string // "us-east-1"

	t       testing.TB
	bin     string
	port    int
	console int
	dataDir string
	logPath string

	mu   sync.Mutex // guards cmd and done across Stop, Restart and cleanup
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been reaped
	werr error         // cmd's exit status, valid after done
}

// StartMinIO starts MinIO on a free 127.0.0.1 port and creates a bucket with
// a random name. The binary is $CLOUDFS_MINIO, else minio on PATH, else
// $HOME/.cache/cloudfs-ci/bin/minio; when none exists the test fails with
// instructions (it is never skipped). The server runs in its own process
// group with SIGKILL as its parent-death signal, so it does not outlive the
// test binary; t.Cleanup kills and reaps it and prints its log if the test
// failed.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := findMinIO()
	if err != nil {
		t.Fatal(err)
	}
	m := &MinIO{
		AccessKey: "cfs" + randHex(t, 6),
		SecretKey: randHex(t, 16),
		Bucket:    "cloudfs-test-" + randHex(t, 4),
		Region:    "us-east-1",
		t:         t,
		bin:       bin,
		dataDir:   t.TempDir(),
	}
	logDir := t.TempDir()
	m.logPath = filepath.Join(logDir, "minio.log")
	// Registered after TempDir, so it runs before the directories go.
	t.Cleanup(m.cleanup)

	// A port picked by listening on :0 may be taken by someone else before
	// MinIO binds it; try a few.
	var startErr error
	for range 3 {
		if m.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if m.console, err = freePort(); err != nil {
			t.Fatal(err)
		}
		m.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", m.port)
		if startErr = m.start(); startErr == nil {
			break
		}
		m.Stop()
	}
	if startErr != nil {
		t.Fatal(startErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), MinIOStartTimeout)
	defer cancel()
	if err := m.createBucket(ctx); err != nil {
		t.Fatalf("minio: create bucket %q: %v; log:\n%s", m.Bucket, err, m.LogText())
	}
	return m
}

// findMinIO locates the minio binary.
func findMinIO() (string, error) {
	if p := os.Getenv("CLOUDFS_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CLOUDFS_MINIO=%s: %v; %s", p, err, MinIOBuildHint)
		}
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err == nil {
		p := filepath.Join(home, ".cache", "cloudfs-ci", "bin", "minio")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("minio binary not found (not in $CLOUDFS_MINIO, PATH or ~/.cache/cloudfs-ci/bin): %s", MinIOBuildHint)
}

// start launches the server on m.port and waits for it to be live.
func (m *MinIO) start() error {
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("minio log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== minio start %s on port %d\n", time.Now().Format(time.RFC3339Nano), m.port)

	cmd := exec.Command(m.bin, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(m.port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(m.console),
		// Its own certs dir, so a ~/.minio/certs on this machine cannot
		// switch the server to TLS.
		"--certs-dir", filepath.Join(m.dataDir, ".certs"),
		filepath.Join(m.dataDir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_REGION="+m.Region,
	)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", m.bin, err)
	}
	done := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.werr = err
		m.mu.Unlock()
		close(done)
	}()

	began := time.Now()
	deadline := began.Add(MinIOStartTimeout)
	fail := func(what string) error {
		select {
		case <-done:
			m.mu.Lock()
			werr := m.werr
			m.mu.Unlock()
			return fmt.Errorf("minio exited before it was %s (%v); log:\n%s", what, werr, m.LogText())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio on port %d not %s after %v; log:\n%s", m.port, what, MinIOStartTimeout, m.LogText())
		}
		return nil
	}

	// Live: the process serves HTTP.
	live := m.Endpoint + "/minio/health/live"
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get(live); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if err := fail("live"); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Ready: live comes before the object layer is initialised, which
	// answers 503 XMinioServerNotInitialized for a moment (longer after a
	// restart over existing data). An authenticated S3 call must succeed.
	c := m.Client()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			break
		}
		if err := fail("ready"); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	m.t.Logf("minio started: pid %d, port %d, endpoint %s (ready after %v)",
		cmd.Process.Pid, m.port, m.Endpoint, time.Since(began).Round(time.Millisecond))
	return nil
}

// createBucket creates m.Bucket on the ready server.
func (m *MinIO) createBucket(ctx context.Context) error {
	if _, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.Bucket)}); err != nil {
		return err
	}
	m.t.Logf("minio: created bucket %s", m.Bucket)
	return nil
}

// Client returns an SDK client for this server with its root credentials
// and path-style addressing. It reads nothing from the environment (so
// AWS_CA_BUNDLE, AWS_PROFILE ... on the machine do not matter).
func (m *MinIO) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(m.Endpoint),
		Region:       m.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
}

// Env returns the environment that points a subprocess (cloudfs, the AWS CLI)
// at this server: credentials, region and endpoint, and
// AWS_EC2_METADATA_DISABLED so the SDK never probes the instance metadata
// service.
func (m *MinIO) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey,
		"AWS_REGION=" + m.Region,
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Port returns the S3 API port.
func (m *MinIO) Port() int { return m.port }

// Stop kills the server (SIGKILL to its process group: like a crash, in the
// middle of whatever it was doing) and waits until it has been reaped.
// Stopping a stopped server does nothing.
func (m *MinIO) Stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	// Negative pid: the whole process group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		m.t.Logf("minio: kill process group %d: %v", cmd.Process.Pid, err)
	}
	<-done
	m.t.Logf("minio stopped: pid %d, port %d", cmd.Process.Pid, m.port)
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data directory and credentials, so objects written before
// survive, and returns once it serves S3 requests. If the server does not
// come back it fails the test that called StartMinIO (from a subtest that
// shows as a FailNow on the parent, which still fails the run).
func (m *MinIO) Restart() {
	m.t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		m.t.Fatalf("minio restart: %v", err)
	}
}

// LogText returns what the server has logged so far, across restarts.
func (m *MinIO) LogText() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return fmt.Sprintf("(no minio log: %v)", err)
	}
	const max = 64 << 10
	if len(b) > max {
		return "...\n" + string(b[len(b)-max:])
	}
	return string(b)
}

func (m *MinIO) cleanup() {
	m.Stop()
	if m.t.Failed() {
		m.t.Logf("minio log (%s):\n%s", m.logPath, m.LogText())
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}
