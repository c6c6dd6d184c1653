package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore"
	cloudfss3 "github.com/cloudfs/cloudfs/chunkstore/s3"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestS3RoundTrip proves the harness's MinIO really runs: an object PUT
// through aws-sdk-go-v2 comes back byte for byte.
func TestS3RoundTrip(t *testing.T) {
	m := harness.StartMinIO(t)
	ctx := context.Background()
	c := m.Client()
	data := randomBytes(t, 1<<20+123)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(m.Bucket), Key: aws.String("roundtrip/obj"), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(m.Bucket), Key: aws.String("roundtrip/obj")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("GetObject returned %d bytes that differ from the %d bytes put", len(got), len(data))
	}
	t.Logf("round-trip ok %d bytes via %s bucket %s", len(got), m.Endpoint, m.Bucket)
}

// TestS3Store runs the Store conformance suite and the S3 store's own
// checks (conditional writes, bad configuration) against one MinIO.
func TestS3Store(t *testing.T) {
	isolateAWSEnv(t)
	m := harness.StartMinIO(t)
	var n atomic.Int64
	newStore := func(t *testing.T) *cloudfss3.Store {
		t.Helper()
		return openS3(t, m, fmt.Sprintf("t%d-%s", n.Add(1), sanitize(t.Name())))
	}

	t.Run("Conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) chunkstore.Store { return newStore(t) })
	})

	t.Run("ConditionalPut", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		e1, err := s.Put(ctx, "head", []byte("one"), chunkstore.Cond{IfNoneMatch: true})
		if err != nil {
			t.Fatalf("put-if-absent of a new key: %v", err)
		}
		if _, err := s.Put(ctx, "head", []byte("again"), chunkstore.Cond{IfNoneMatch: true}); !errors.Is(err, chunkstore.ErrPrecondition) {
			t.Fatalf("put-if-absent of an existing key: %v, want ErrPrecondition (412)", err)
		}
		e2, err := s.Put(ctx, "head", []byte("two"), chunkstore.Cond{IfMatch: e1})
		if err != nil {
			t.Fatalf("put-if-match with the current ETag: %v", err)
		}
		if _, err := s.Put(ctx, "head", []byte("stale"), chunkstore.Cond{IfMatch: e1}); !errors.Is(err, chunkstore.ErrPrecondition) {
			t.Fatalf("put-if-match with a stale ETag: %v, want ErrPrecondition (412)", err)
		}
		if _, err := s.Put(ctx, "missing", []byte("x"), chunkstore.Cond{IfMatch: e2}); !errors.Is(err, chunkstore.ErrPrecondition) {
			t.Fatalf("put-if-match on a missing key: %v, want ErrPrecondition", err)
		}
		got, etag, err := s.Get(ctx, "head")
		if err != nil || string(got) != "two" || etag != e2 {
			t.Fatalf("Get(head) = %q, %q, %v; want two, %q", got, etag, err, e2)
		}
	})

	t.Run("ConcurrentPutIfAbsent", func(t *testing.T) {
		s := newStore(t)
		var wins, lost atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				_, err := s.Put(context.Background(), "cloudfs.json", []byte{byte(i)}, chunkstore.Cond{IfNoneMatch: true})
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, chunkstore.ErrPrecondition):
					lost.Add(1)
				default:
					t.Errorf("put-if-absent: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || lost.Load() != 7 {
			t.Fatalf("8 concurrent put-if-absent: %d succeeded, %d ErrPrecondition; want 1 and 7", wins.Load(), lost.Load())
		}
	})

	t.Run("GetRange", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		if _, err := s.Put(ctx, "c", []byte("0123456789"), chunkstore.Cond{}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			off, n int64
			want   string
		}{{0, 3, "012"}, {4, 2, "45"}, {8, 10, "89"}, {10, 5, ""}, {20, 5, ""}, {3, 0, ""}} {
			got, err := chunkstore.GetRange(ctx, s, "c", tc.off, tc.n)
			if err != nil || string(got) != tc.want {
				t.Errorf("GetRange(%d, %d) = %q, %v; want %q", tc.off, tc.n, got, err, tc.want)
			}
		}
		if _, err := chunkstore.GetRange(ctx, s, "nothing", 0, 1); !errors.Is(err, chunkstore.ErrNotFound) {
			t.Errorf("GetRange of a missing key: %v, want ErrNotFound", err)
		}
	})

	t.Run("EnvironmentEndpointAndCredentials", func(t *testing.T) {
		// No Config.Endpoint or keys: everything from the standard
		// variables, as a subprocess given m.Env() would see it.
		for _, kv := range m.Env() {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
		s, err := cloudfss3.New(context.Background(), cloudfss3.Config{Bucket: m.Bucket, Prefix: "envtest"}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("New from the environment: %v", err)
		}
		if _, err := s.Put(context.Background(), "k", []byte("v"), chunkstore.Cond{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WrongSecretKey", func(t *testing.T) {
		cfg := s3Config(m, "x")
		cfg.SecretKey = "not-the-secret"
		_, err := cloudfss3.New(context.Background(), cfg, zaptest.NewLogger(t))
		requireErr(t, err, true, "credentials", "static keys", "secret key does not match")

		// The same through the environment names the variables.
		cfg.AccessKey, cfg.SecretKey = "", ""
		t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
		_, err = cloudfss3.New(context.Background(), cfg, zaptest.NewLogger(t))
		requireErr(t, err, true, "credentials", "AWS_ACCESS_KEY_ID")
	})

	t.Run("UnknownAccessKey", func(t *testing.T) {
		cfg := s3Config(m, "x")
		cfg.AccessKey = "nobody"
		_, err := cloudfss3.New(context.Background(), cfg, zaptest.NewLogger(t))
		requireErr(t, err, true, "credentials", "static keys", `"nobody"`)
	})

	t.Run("MissingBucket", func(t *testing.T) {
		cfg := s3Config(m, "x")
		cfg.Bucket = fmt.Sprintf("nope-%d", time.Now().UnixNano())
		_, err := cloudfss3.New(context.Background(), cfg, zaptest.NewLogger(t))
		requireErr(t, err, true, fmt.Sprintf("bucket %q does not exist", cfg.Bucket))
	})

	t.Run("UnreachableEndpoint", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		endpoint := "http://" + l.Addr().String()
		l.Close() // now a closed port
		cfg := s3Config(m, "x")
		cfg.Endpoint = endpoint
		cfg.ConnectTimeout = 3 * time.Second
		start := time.Now()
		_, err = cloudfss3.New(context.Background(), cfg, zaptest.NewLogger(t))
		elapsed := time.Since(start)
		requireErr(t, err, false, endpoint)
		if elapsed > 2*cfg.ConnectTimeout {
			t.Errorf("New took %v against a closed port, want < %v", elapsed, 2*cfg.ConnectTimeout)
		}
	})

	t.Run("CABundleWithPlainHTTPEndpoint", func(t *testing.T) {
		t.Setenv("AWS_CA_BUNDLE", caBundle(t))
		s := openS3(t, m, "cabundle")
		if _, err := s.Put(context.Background(), "k", []byte("v"), chunkstore.Cond{}); err != nil {
			t.Fatalf("put with AWS_CA_BUNDLE set and an http endpoint: %v", err)
		}
	})

	t.Run("SurvivesMinIORestart", func(t *testing.T) {
		s := newStore(t)
		ctx := context.Background()
		if _, err := s.Put(ctx, "before", []byte("kept"), chunkstore.Cond{}); err != nil {
			t.Fatal(err)
		}
		m.Stop()
		_, _, err := s.Get(ctx, "before")
		if err == nil || chunkstore.IsPermanent(err) {
			t.Fatalf("Get with MinIO down: %v, want a transient error", err)
		}
		m.Restart()
		got, _, err := s.Get(ctx, "before")
		if err != nil || string(got) != "kept" {
			t.Fatalf("Get after restart = %q, %v; want kept", got, err)
		}
	})
}

// BenchmarkS3PutGet1MiB compares the cloudfs S3 store with plain SDK calls
// (a client with the SDK's defaults) moving 1 MiB objects at concurrency 8
// on the same MinIO. The two run interleaved in rounds, so drift in the
// machine's load hits both alike; the ratio metrics are cloudfs/raw
// throughput, the median over rounds (the target is >= 0.9). The cpu-us/op metrics are the client
// process's CPU per operation, which shows the SDK's hashing and checksum
// work even when MinIO is the bottleneck.
func BenchmarkS3PutGet1MiB(b *testing.B) {
	const (
		size  = 1 << 20
		conc  = 8
		keys  = 32 // objects per variant, reused so the data dir stays small
		round = 16 // operations per variant per round
	)
	m := harness.StartMinIO(b)
	ctx := context.Background()
	store, err := cloudfss3.New(ctx, s3Config(m, "bench-cloudfs"), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	raw := m.Client()
	data := randomBytes(b, size)
	key := func(i int) string { return fmt.Sprintf("k%03d", i%keys) }
	rawKey := func(i int) *string { return aws.String("bench-raw/" + key(i)) }

	cloudPut := func(i int) error {
		_, err := store.Put(ctx, key(i), data, chunkstore.Cond{})
		return err
	}
	cloudGet := func(i int) error {
		got, _, err := store.Get(ctx, key(i))
		if err == nil && len(got) != size {
			err = fmt.Errorf("got %d bytes", len(got))
		}
		return err
	}
	rawPut := func(i int) error {
		_, err := raw.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(m.Bucket), Key: rawKey(i), Body: bytes.NewReader(data)})
		return err
	}
	rawGet := func(i int) error {
		out, err := raw.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(m.Bucket), Key: rawKey(i)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		buf := make([]byte, aws.ToInt64(out.ContentLength))
		_, err = io.ReadFull(out.Body, buf)
		return err
	}
	// Parallel runs fn for n operations on conc goroutines and returns the
	// wall time and this process's CPU time (the client side; MinIO is
	// another process).
	parallel := func(n int, fn func(int) error) (wall, cpu time.Duration) {
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		start, cpu0 := time.Now(), processCPU(b)
		for range conc {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					if err := fn(i); err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, ok := firstErr.Load().(error); ok {
			b.Fatal(err)
		}
		return time.Since(start), processCPU(b) - cpu0
	}

	// Warm up: write every key and open the connections of both clients.
	parallel(keys, cloudPut)
	parallel(keys, rawPut)
	parallel(keys, cloudGet)
	parallel(keys, rawGet)

	type total struct{ wall, cpu time.Duration }
	var cloudPutT, rawPutT, cloudGetT, rawGetT total
	var putRatios, getRatios []float64
	run := func(t *total, fn func(int) error) time.Duration {
		w, c := parallel(round, fn)
		t.wall += w
		t.cpu += c
		return w
	}
	ops := 0
	b.ResetTimer()
	for r := 0; ops < b.N; r++ {
		var cp, rp, cg, rg time.Duration
		if r%2 == 0 {
			cp = run(&cloudPutT, cloudPut)
			rp = run(&rawPutT, rawPut)
			cg = run(&cloudGetT, cloudGet)
			rg = run(&rawGetT, rawGet)
		} else {
			rp = run(&rawPutT, rawPut)
			cp = run(&cloudPutT, cloudPut)
			rg = run(&rawGetT, rawGet)
			cg = run(&cloudGetT, cloudGet)
		}
		putRatios = append(putRatios, rp.Seconds()/cp.Seconds())
		getRatios = append(getRatios, rg.Seconds()/cg.Seconds())
		ops += round
	}
	b.StopTimer()
	mbps := func(t total) float64 { return float64(ops) * size / 1e6 / t.wall.Seconds() }
	cpuPerOp := func(t total) float64 { return float64(t.cpu.Microseconds()) / float64(ops) }
	b.ReportMetric(mbps(cloudPutT), "cloudfs-put-MB/s")
	b.ReportMetric(mbps(rawPutT), "raw-put-MB/s")
	b.ReportMetric(mbps(cloudGetT), "cloudfs-get-MB/s")
	b.ReportMetric(mbps(rawGetT), "raw-get-MB/s")
	// The median of per-round ratios: each round's two phases run back to
	// back, so a burst of load from elsewhere skews a few rounds, not the
	// result.
	b.ReportMetric(median(putRatios), "put-ratio")
	b.ReportMetric(median(getRatios), "get-ratio")
	b.ReportMetric(cpuPerOp(cloudPutT), "cloudfs-put-cpu-us/op")
	b.ReportMetric(cpuPerOp(rawPutT), "raw-put-cpu-us/op")
	b.ReportMetric(cpuPerOp(cloudGetT), "cloudfs-get-cpu-us/op")
	b.ReportMetric(cpuPerOp(rawGetT), "raw-get-cpu-us/op")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// processCPU returns the user+system CPU time this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openS3 opens the S3 store on m's bucket under prefix with m's root keys.
func openS3(t testing.TB, m *harness.MinIO, prefix string) *cloudfss3.Store {
	t.Helper()
	s, err := cloudfss3.New(context.Background(), s3Config(m, prefix), zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("open %s: %v", prefix, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func s3Config(m *harness.MinIO, prefix string) cloudfss3.Config {
	return cloudfss3.Config{
		Bucket:         m.Bucket,
		Prefix:         prefix,
		Endpoint:       m.Endpoint,
		Region:         m.Region,
		AccessKey:      m.AccessKey,
		SecretKey:      m.SecretKey,
		ConnectTimeout: 10 * time.Second,
	}
}

// requireErr fails unless err is non-nil, one line, Permanent as wanted,
// and mentions every string in want.
func requireErr(t *testing.T, err error, permanent bool, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	t.Logf("error: %v", err)
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if got := chunkstore.IsPermanent(err); got != permanent {
		t.Errorf("IsPermanent = %v, want %v", got, permanent)
	}
}

// isolateAWSEnv hides the machine's AWS settings from the test, so only the
// configuration a test sets is used, and keeps the SDK away from the instance
// metadata service.
func isolateAWSEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// caBundle returns a real PEM CA bundle: the system's, or when this machine
// has none at the usual places, a freshly generated self-signed CA.
func caBundle(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"} {
		if b, err := os.ReadFile(p); err == nil && x509.NewCertPool().AppendCertsFromPEM(b) {
			return p
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cloudfs test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sanitize turns a test name into something usable in an object key.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
}
