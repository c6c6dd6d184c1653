package s3

import (
	"context"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// These tests run the real SDK against a scripted S3 server on loopback
// (httptest), so request building and error parsing are exercised without a
// real S3 service.

const testBucket = "bkt"

// isolateEnv clears the AWS settings of the machine running the tests, so
// only what a test sets is seen, and keeps the SDK away from the instance
// metadata service.
func isolateEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// reply is one scripted response.
type reply struct {
	status int
	code   string // S3 error code for an XML error body; "" for none
	body   string
	header map[string]string
}

// fakeS3 answers HEAD /bkt with 200 and everything else from script, keyed
// by "METHOD /path" (path without the query). It records every request.
type fakeS3 struct {
	*httptest.Server
	mu     sync.Mutex
	script map[string]reply
	reqs   []*http.Request
	bodies [][]byte
	conns  int // connections accepted
}

func newFake(t *testing.T, tls bool) *fakeS3 {
	f := &fakeS3{script: map[string]reply{"HEAD /" + testBucket: {status: 200}}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, r.Clone(context.Background()))
		f.bodies = append(f.bodies, body)
		rep, ok := f.script[r.Method+" "+r.URL.Path]
		f.mu.Unlock()
		if !ok {
			rep = reply{status: 501, code: "NotImplemented"}
		}
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		if rep.code != "" && r.Method != http.MethodHead {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(rep.status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>scripted</Message><RequestId>r1</RequestId></Error>`, rep.code)
			return
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	})
	f.Server = httptest.NewUnstartedServer(h)
	// Rejected handshakes are expected in the CA tests.
	f.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.Server.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
		}
	}
	if tls {
		f.StartTLS()
	} else {
		f.Start()
	}
	t.Cleanup(f.Close)
	return f
}

func (f *fakeS3) set(key string, r reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[key] = r
}

func (f *fakeS3) last() (*http.Request, []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1], f.bodies[len(f.bodies)-1]
}

func (f *fakeS3) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func (f *fakeS3) config() Config {
	return Config{
		Bucket:         testBucket,
		Prefix:         "vol",
		Endpoint:       f.URL,
		AccessKey:      "AKIDTEST",
		SecretKey:      "secret",
		ConnectTimeout: 5 * time.Second,
	}
}

func newTestStore(t *testing.T, f *fakeS3) *Store {
	t.Helper()
	s, err := New(context.Background(), f.config(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestNewRejectsEndpointWithoutScheme(t *testing.T) {
	isolateEnv(t)
	_, err := New(context.Background(), Config{Bucket: "b", Endpoint: "localhost:9000"}, zaptest.NewLogger(t))
	if err == nil || !chunkstore.IsPermanent(err) || !strings.Contains(err.Error(), "http://") {
		t.Fatalf("New with endpoint without scheme = %v, want a permanent error asking for http:// or https://", err)
	}
}

func TestNewMissingBucket(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	cfg := f.config()
	cfg.Bucket = "nope"
	f.set("HEAD /nope", reply{status: 404})
	_, err := New(context.Background(), cfg, zaptest.NewLogger(t))
	if err == nil {
		t.Fatal("New succeeded for a missing bucket")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), `bucket "nope" does not exist`) || !chunkstore.IsPermanent(err) {
		t.Fatalf("error = %v (permanent %v), want permanent `bucket \"nope\" does not exist`", err, chunkstore.IsPermanent(err))
	}
}

// TestNewBadCredentials checks that each way of rejecting credentials gets a
// message naming the credential source.
func TestNewBadCredentials(t *testing.T) {
	tests := []struct {
		name   string
		code   string
		setup  func(t *testing.T, cfg *Config)
		want   []string
		reject string
	}{
		{
			name: "static wrong secret", code: "SignatureDoesNotMatch",
			setup: func(t *testing.T, cfg *Config) {},
			want:  []string{"secret key does not match", `"AKIDTEST"`, "static keys", "credentials"},
		},
		{
			name: "env unknown key", code: "InvalidAccessKeyId",
			setup: func(t *testing.T, cfg *Config) {
				cfg.AccessKey, cfg.SecretKey = "", ""
				t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
			},
			want: []string{"does not know access key", `"AKIDENV"`, "environment variables AWS_ACCESS_KEY_ID", "credentials"},
		},
		{
			name: "profile access denied", code: "AccessDenied",
			setup: func(t *testing.T, cfg *Config) {
				cfg.AccessKey, cfg.SecretKey = "", ""
				cfg.Profile = "work"
				creds := os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
				if err := os.WriteFile(creds, []byte("[work]\naws_access_key_id = AKIDPROF\naws_secret_access_key = y\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"access to bucket", `profile "work"`, "credentials"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			f := newFake(t, false)
			f.set("HEAD /"+testBucket, reply{status: 403})
			f.set("GET /"+testBucket, reply{status: 403, code: tc.code})
			cfg := f.config()
			tc.setup(t, &cfg)
			_, err := New(context.Background(), cfg, zaptest.NewLogger(t))
			if err == nil {
				t.Fatal("New succeeded with rejected credentials")
			}
			t.Logf("error: %v", err)
			if !chunkstore.IsPermanent(err) {
				t.Errorf("error is not Permanent: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestNewUnreachable(t *testing.T) {
	isolateEnv(t)
	// A port that was free a moment ago: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	endpoint := "http://" + addr
	start := time.Now()
	_, err = New(context.Background(), Config{Bucket: "b", Endpoint: endpoint, AccessKey: "a", SecretKey: "b",
		ConnectTimeout: 2 * time.Second}, zaptest.NewLogger(t))
	if err == nil {
		t.Fatal("New succeeded against a closed port")
	}
	t.Logf("error: %v", err)
	if !strings.Contains(err.Error(), endpoint) || chunkstore.IsPermanent(err) {
		t.Errorf("error = %v, want a transient error naming %s", err, endpoint)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v, want < 2s", d)
	}
}

// TestNewTimeout: a server that accepts connections and never answers must
// not hang New beyond ConnectTimeout.
func TestNewTimeout(t *testing.T) {
	isolateEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	endpoint := "http://" + l.Addr().String()
	const timeout = 500 * time.Millisecond
	start := time.Now()
	_, err = New(context.Background(), Config{Bucket: "b", Endpoint: endpoint, AccessKey: "a", SecretKey: "b",
		ConnectTimeout: timeout}, zaptest.NewLogger(t))
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("New succeeded against a silent server")
	}
	t.Logf("error after %v: %v", elapsed, err)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), endpoint) {
		t.Errorf("error = %v, want DeadlineExceeded naming %s", err, endpoint)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("took %v, want about %v", elapsed, timeout)
	}
}

// TestCABundle: AWS_CA_BUNDLE is honoured for https and harmless for http.
func TestCABundle(t *testing.T) {
	t.Run("http endpoint ignores bundle", func(t *testing.T) {
		isolateEnv(t)
		f := newFake(t, false)
		tlsFake := newFake(t, true)
		t.Setenv("AWS_CA_BUNDLE", writeCert(t, tlsFake))
		newTestStore(t, f)
	})
	t.Run("https endpoint trusts bundle", func(t *testing.T) {
		isolateEnv(t)
		f := newFake(t, true)
		t.Setenv("AWS_CA_BUNDLE", writeCert(t, f))
		newTestStore(t, f)
	})
	t.Run("https endpoint with Config.CABundle", func(t *testing.T) {
		isolateEnv(t)
		f := newFake(t, true)
		cfg := f.config()
		cfg.CABundle = writeCert(t, f)
		if _, err := New(context.Background(), cfg, zaptest.NewLogger(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("https endpoint without bundle fails", func(t *testing.T) {
		isolateEnv(t)
		f := newFake(t, true)
		_, err := New(context.Background(), f.config(), zaptest.NewLogger(t))
		if err == nil {
			t.Fatal("New trusted a self-signed server without a CA bundle")
		}
		t.Logf("error: %v", err)
	})
	t.Run("https endpoint with the profile's ca_bundle", func(t *testing.T) {
		isolateEnv(t)
		f := newFake(t, true)
		conf := fmt.Sprintf("[profile ca]\nca_bundle = %s\n", writeCert(t, f))
		if err := os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := f.config()
		cfg.Profile = "ca"
		if _, err := New(context.Background(), cfg, zaptest.NewLogger(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unreadable bundle names its source", func(t *testing.T) {
		isolateEnv(t)
		f := newFake(t, true)
		t.Setenv("AWS_CA_BUNDLE", filepath.Join(t.TempDir(), "missing.pem"))
		_, err := New(context.Background(), f.config(), zaptest.NewLogger(t))
		if err == nil || !strings.Contains(err.Error(), "AWS_CA_BUNDLE") {
			t.Fatalf("error = %v, want one naming AWS_CA_BUNDLE", err)
		}
	})
}

// writeCert writes the TLS test server's certificate as a PEM bundle.
func writeCert(t *testing.T, f *fakeS3) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrorMapping(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	ctx := context.Background()
	const obj = "/" + testBucket + "/vol/k"
	tests := []struct {
		rep       reply
		is        error
		permanent bool
	}{
		{reply{status: 404, code: "NoSuchKey"}, chunkstore.ErrNotFound, true},
		{reply{status: 412, code: "PreconditionFailed"}, chunkstore.ErrPrecondition, true},
		{reply{status: 409, code: "ConditionalRequestConflict"}, chunkstore.ErrPrecondition, true},
		{reply{status: 403, code: "AccessDenied"}, nil, true},
		{reply{status: 400, code: "InvalidArgument"}, nil, true},
		{reply{status: 405, code: "MethodNotAllowed"}, nil, true},
		{reply{status: 404, code: "NoSuchBucket"}, nil, true},
		{reply{status: 400, code: "RequestTimeout"}, nil, false},
		{reply{status: 429, code: "SlowDown"}, nil, false},
		{reply{status: 500, code: "InternalError"}, nil, false},
		{reply{status: 503, code: "SlowDown"}, nil, false},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%d %s", tc.rep.status, tc.rep.code)
		t.Run(name, func(t *testing.T) {
			f.set("GET "+obj, tc.rep)
			f.set("PUT "+obj, tc.rep)
			before := f.count()
			_, _, getErr := s.Get(ctx, "k")
			if n := f.count() - before; n != 1 {
				t.Errorf("Get made %d requests, want 1 (SDK retries must be off)", n)
			}
			_, putErr := s.Put(ctx, "k", []byte("x"), chunkstore.Cond{IfNoneMatch: true})
			for op, err := range map[string]error{"get": getErr, "put": putErr} {
				if err == nil {
					t.Fatalf("%s succeeded", op)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("%s: %v is not %v", op, err, tc.is)
				}
				if got := chunkstore.IsPermanent(err); got != tc.permanent {
					t.Errorf("%s: IsPermanent(%v) = %v, want %v", op, err, got, tc.permanent)
				}
				if !strings.Contains(err.Error(), "s3://"+testBucket+"/vol/k") {
					t.Errorf("%s: error %q does not name the object", op, err)
				}
			}
		})
	}
}

func TestPutRequest(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	ctx := context.Background()
	f.set("PUT /"+testBucket+"/vol/head", reply{status: 200, header: map[string]string{"ETag": `"e2"`}})

	for _, tc := range []struct {
		cond            chunkstore.Cond
		ifNone, ifMatch string
	}{
		{chunkstore.Cond{}, "", ""},
		{chunkstore.Cond{IfNoneMatch: true}, "*", ""},
		{chunkstore.Cond{IfMatch: `"e1"`}, "", `"e1"`},
	} {
		etag, err := s.Put(ctx, "head", []byte("hello"), tc.cond)
		if err != nil {
			t.Fatal(err)
		}
		if etag != `"e2"` {
			t.Errorf("etag = %q", etag)
		}
		r, body := f.last()
		if string(body) != "hello" {
			t.Errorf("body = %q, want hello (no aws-chunked framing)", body)
		}
		// Plain http: the body's SHA-256 is signed.
		if got, want := r.Header.Get("X-Amz-Content-Sha256"), fmt.Sprintf("%x", sha256.Sum256(body)); got != want {
			t.Errorf("X-Amz-Content-Sha256 = %q, want the body's hash %s", got, want)
		}
		if got := r.Header.Get("If-None-Match"); got != tc.ifNone {
			t.Errorf("If-None-Match = %q, want %q", got, tc.ifNone)
		}
		if got := r.Header.Get("If-Match"); got != tc.ifMatch {
			t.Errorf("If-Match = %q, want %q", got, tc.ifMatch)
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") || strings.EqualFold(k, "X-Amz-Sdk-Checksum-Algorithm") {
				t.Errorf("unexpected checksum header %s (checksums should be off)", k)
			}
		}
	}

	// If-Match on a missing object.
	f.set("PUT /"+testBucket+"/vol/gone", reply{status: 404, code: "NoSuchKey"})
	if _, err := s.Put(ctx, "gone", []byte("x"), chunkstore.Cond{IfMatch: `"e1"`}); !errors.Is(err, chunkstore.ErrPrecondition) {
		t.Errorf("If-Match on a missing object: %v, want ErrPrecondition", err)
	}
}

// TestPutRequestHTTPS: over TLS the SDK sends a PUT's body as
// UNSIGNED-PAYLOAD (TLS protects it in transit) instead of hashing it with
// SHA-256 to sign it, which over plain http costs 6-8% of the daemon's CPU
// in an upload (TestPutRequest checks the signed hash there).
func TestPutRequestHTTPS(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, true)
	t.Setenv("AWS_CA_BUNDLE", writeCert(t, f))
	s := newTestStore(t, f)
	f.set("PUT /"+testBucket+"/vol/chunks/ab/c", reply{status: 200, header: map[string]string{"ETag": `"e3"`}})
	if _, err := s.Put(context.Background(), "chunks/ab/c", []byte("hello"), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	r, body := f.last()
	if string(body) != "hello" {
		t.Errorf("body = %q, want hello", body)
	}
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != "UNSIGNED-PAYLOAD" {
		t.Errorf("X-Amz-Content-Sha256 = %q, want UNSIGNED-PAYLOAD", got)
	}
	if !strings.Contains(r.Header.Get("Authorization"), "x-amz-content-sha256") {
		t.Errorf("Authorization %q does not sign x-amz-content-sha256", r.Header.Get("Authorization"))
	}
}

func TestGetRangeRequest(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	ctx := context.Background()
	obj := "GET /" + testBucket + "/vol/c"

	f.set(obj, reply{status: 206, body: "cde", header: map[string]string{"Content-Range": "bytes 2-4/10"}})
	got, err := s.GetRange(ctx, "c", 2, 3)
	if err != nil || string(got) != "cde" {
		t.Fatalf("GetRange = %q, %v", got, err)
	}
	r, _ := f.last()
	if rg := r.Header.Get("Range"); rg != "bytes=2-4" {
		t.Errorf("Range = %q, want bytes=2-4", rg)
	}

	f.set(obj, reply{status: 416, code: "InvalidRange"})
	if got, err := s.GetRange(ctx, "c", 100, 3); err != nil || len(got) != 0 {
		t.Errorf("GetRange past the end = %q, %v; want empty, nil", got, err)
	}

	// A server that ignores Range.
	f.set(obj, reply{status: 200, body: "abcdefghij"})
	if got, err := s.GetRange(ctx, "c", 8, 5); err != nil || string(got) != "ij" {
		t.Errorf("GetRange on a server ignoring Range = %q, %v; want ij", got, err)
	}

	f.set(obj, reply{status: 404, code: "NoSuchKey"})
	if _, err := s.GetRange(ctx, "c", 0, 1); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("GetRange of a missing object: %v, want ErrNotFound", err)
	}
}

// TestGetTruncated: a body shorter than its Content-Length is an error, not
// short data.
func TestGetTruncated(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	f.set("GET /"+testBucket+"/vol/t", reply{status: 200, body: "short", header: map[string]string{"Content-Length": "100"}})
	data, _, err := s.Get(context.Background(), "t")
	if err == nil {
		t.Fatalf("Get of a truncated body returned %q and no error", data)
	}
	if chunkstore.IsPermanent(err) {
		t.Errorf("truncated body should be transient: %v", err)
	}
}

func TestInvalidKey(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	before := f.count()
	if _, err := s.Put(context.Background(), "../x", []byte("x"), chunkstore.Cond{}); err == nil || !chunkstore.IsPermanent(err) {
		t.Errorf("Put(../x) = %v, want a permanent error", err)
	}
	if f.count() != before {
		t.Error("an invalid key reached the server")
	}
}

func TestString(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	if got := newTestStore(t, f).String(); got != "s3://bkt/vol" {
		t.Errorf("String() = %q", got)
	}
}

// TestDefaultRegion: with no region configured anywhere, requests are signed
// for us-east-1.
func TestDefaultRegion(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	newTestStore(t, f)
	r, _ := f.last()
	if auth := r.Header.Get("Authorization"); !strings.Contains(auth, "/"+DefaultRegion+"/s3/") {
		t.Errorf("Authorization %q is not signed for %s", auth, DefaultRegion)
	}
}

// TestConnectionReuse: rounds of 8 concurrent requests reuse the first
// round's connections instead of dialling new ones.
func TestConnectionReuse(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	f.set("GET /"+testBucket+"/vol/x", reply{status: 200, body: strings.Repeat("x", 64<<10)})
	for range 5 {
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, _, err := s.Get(context.Background(), "x"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	f.mu.Lock()
	conns := f.conns
	f.mu.Unlock()
	// 8 for the requests, plus the one New's HeadBucket used (reused too).
	if conns > 9 {
		t.Errorf("%d connections for 5 rounds of 8 concurrent requests, want at most 9", conns)
	}
}

func TestNewNoCredentials(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	cfg := f.config()
	cfg.AccessKey, cfg.SecretKey = "", ""
	_, err := New(context.Background(), cfg, zaptest.NewLogger(t))
	if err == nil {
		t.Fatal("New succeeded without credentials")
	}
	t.Logf("error: %v", err)
	if !chunkstore.IsPermanent(err) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("error = %v, want a permanent error saying how to provide credentials", err)
	}
	if n := f.count(); n != 0 {
		t.Errorf("%d requests reached the server without credentials", n)
	}
}

// TestEndpointFromEnvironment: AWS_ENDPOINT_URL_S3 wins over
// AWS_ENDPOINT_URL, and either turns on path-style addressing.
func TestEndpointFromEnvironment(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_S3", f.URL)
	cfg := f.config()
	cfg.Endpoint = ""
	s, err := New(context.Background(), cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer s.Close()
	r, _ := f.last()
	if r.URL.Path != "/"+testBucket {
		t.Errorf("HeadBucket path %q, want path style /%s", r.URL.Path, testBucket)
	}
}
