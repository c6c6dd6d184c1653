package integration

// The latency phase of BenchmarkReport: `cloudfs sync` of Go's source tree
// to MinIO through a TCP proxy that makes the link 20 ms round trip, beside
// one multipart upload of the same bytes through the same proxy.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/integration/benchreport"
	"github.com/cloudfs/cloudfs/integration/harness"
)

const (
	linkDelay  = 10 * time.Millisecond // each way: a 20 ms round trip
	linkProbes = 20                    // small GETs that check the proxy's delay
	baseRTTPut = "raw S3 8-stream PUT of one tar object over the same link"
)

// delayProxy is a TCP proxy on 127.0.0.1 that forwards every byte to
// target, and every byte back, linkDelay after it read it: each direction
// reads pieces as they come and a writer releases each piece when it is
// due, so the delay adds to every round trip and takes nothing from
// throughput (up to delayPieces pieces in flight per direction).
type delayProxy struct {
	ln     net.Listener
	target string // host:port
	delay  time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// delayPieces bounds the pieces in flight in one direction of one
// connection; with reads of at most 64 KiB that is up to 64 MiB per delay,
// far more than MinIO on this machine moves in 10 ms.
const delayPieces = 1024

func startDelayProxy(target string, delay time.Duration) (*delayProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{ln: ln, target: target, delay: delay, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// URL is the proxy's endpoint, for an S3 client or --endpoint.
func (p *delayProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines to end.
func (p *delayProxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// track registers c to be closed by Close; false if the proxy is closed.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *delayProxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer client.Close()
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	if !p.track(server) {
		return
	}
	defer p.untrack(server)
	kill := func() { client.Close(); server.Close() }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, kill) }()
	go func() { defer wg.Done(); p.pipe(client, server, kill) }()
	wg.Wait()
}

// piece is bytes read from one side, and when.
type piece struct {
	data []byte
	read time.Time
}

// pipe copies src to dst, each piece written p.delay after it was read; at
// src's end it half-closes dst, so the other side sees the end too, a delay
// later. A failed write kills the connection (both sides).
func (p *delayProxy) pipe(dst, src net.Conn, kill func()) {
	pieces := make(chan piece, delayPieces)
	done := make(chan struct{})
	go func() {
		defer close(done)
		failed := false
		for pc := range pieces {
			if failed {
				continue // drain, so the reader is never stuck
			}
			time.Sleep(time.Until(pc.read.Add(p.delay))) // the link's delay, not a wait for anything
			if _, err := dst.Write(pc.data); err != nil {
				failed = true
				kill()
			}
		}
		if !failed {
			if tcp, ok := dst.(*net.TCPConn); ok {
				tcp.CloseWrite()
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pieces <- piece{data: bytes.Clone(buf[:n]), read: time.Now()}
		}
		if err != nil {
			break
		}
	}
	close(pieces)
	<-done
}

// proxyClient is an S3 client like c but sending to endpoint, with its own
// connections.
func proxyClient(c *s3.Client, endpoint string) *s3.Client {
	return s3.New(c.Options(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = awshttp.NewBuildableClient()
	})
}

// medianGet returns the median latency of n GETs of key, one at a time,
// after one GET that is not counted (it opens the connection).
func medianGet(ctx context.Context, c *s3.Client, bucket, key string, n int) (time.Duration, error) {
	get := func() error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
		if err != nil {
			return fmt.Errorf("GET %s: %w", key, err)
		}
		defer out.Body.Close()
		_, err = io.Copy(io.Discard, out.Body)
		return err
	}
	if err := get(); err != nil {
		return 0, err
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := get(); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// addLatencyRow adds the row of the latency phase.
func (r *benchRun) addLatencyRow() {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	r.row.syncRTT = r.rep.Add(fmt.Sprintf("`cloudfs sync` after the untar of Go's source tree (%s) over a %d ms RTT link",
		r.gosrc.label(), ms(2*linkDelay)), benchreport.Seconds, benchreport.MaxRatio(2, baseRTTPut))
	r.row.syncRTT.Method = fmt.Sprintf("a TCP proxy on 127.0.0.1 in front of MinIO writes every piece it reads %d ms after reading it, "+
		"each way (throughput kept: pieces in flight overlap); a fresh mount (own cache dir and volume) with --endpoint at the proxy "+
		"and --settle-delay %s, `tar -xf` of the tree (untimed), then `cloudfs sync MNT` timed until it returns (head must exist "+
		"afterwards); baseline: the tar file's bytes as one multipart upload, %d MiB parts on %d streams, through the same proxy",
		ms(linkDelay), heldSettle, rawPartSize>>20, rawStreams)
}

// syncOverLatency measures the latency row: see addLatencyRow.
func (r *benchRun) syncOverLatency(ctx context.Context) error {
	row := r.row.syncRTT
	if r.remoteKind != "s3" {
		row.NA("an s3:// remote (the link's delay is in front of MinIO)")
		return nil
	}
	if !r.hasSync {
		row.NA("`cloudfs sync`")
		return nil
	}
	tarPath, err := r.goTar(ctx)
	if err != nil {
		return err
	}
	u, err := url.Parse(r.minio.Endpoint)
	if err != nil {
		return err
	}
	proxy, err := startDelayProxy(u.Host, linkDelay)
	if err != nil {
		return err
	}
	defer proxy.Close()
	via := proxyClient(r.s3, proxy.URL())

	// The proxy must add the round trip: small GETs direct and through it.
	probe := "rtt-probe"
	if _, err := r.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &r.rawBucket, Key: &probe,
		Body: bytes.NewReader(benchBytes(20, 4<<10))}); err != nil {
		return fmt.Errorf("put %s: %w", probe, err)
	}
	direct, err := medianGet(ctx, r.s3, r.rawBucket, probe, linkProbes)
	if err != nil {
		return err
	}
	delayed, err := medianGet(ctx, via, r.rawBucket, probe, linkProbes)
	if err != nil {
		return fmt.Errorf("through the proxy: %w", err)
	}
	row.Method += fmt.Sprintf("; median of %d 4 KiB GETs (one at a time, after one uncounted): %.1f ms through the proxy, %.1f ms direct",
		linkProbes, float64(delayed)/float64(time.Millisecond), float64(direct)/float64(time.Millisecond))
	if delayed-direct < 2*linkDelay*9/10 {
		return fmt.Errorf("the proxy adds %v to a GET, want about %v", delayed-direct, 2*linkDelay)
	}

	data, err := os.ReadFile(tarPath)
	if err != nil {
		return err
	}
	put, err := rawPut(ctx, via, r.rawBucket, "go-src.tar", data)
	if err != nil {
		return fmt.Errorf("through the proxy: %w", err)
	}
	row.AddBaseline(baseRTTPut, put.Seconds())

	const name = "latency"
	mnt, cache := filepath.Join(r.base, "mnt-"+name), filepath.Join(r.base, "cache-"+name)
	for _, d := range []string{mnt, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	m := harness.StartMount(r.b, harness.MountOptions{Remote: "s3://" + r.minio.Bucket + "/" + name, MountPoint: mnt, CacheDir: cache,
		Args: []string{"--settle-delay", heldSettle, "--endpoint", proxy.URL()}, Env: r.env})
	defer m.Unmount()
	if _, err := timed(ctx, nil, nil, "tar", "-xf", tarPath, "-C", mnt); err != nil {
		return err
	}
	d, err := r.cloudfsSync(ctx, mnt)
	if err != nil {
		return err
	}
	if _, _, err := openS3(r.b, r.minio, name).Get(ctx, chunkstore.HeadKey); err != nil {
		return fmt.Errorf("cloudfs sync returned, but the volume has no head: %w", err)
	}
	row.Set(d.Seconds())
	return nil
}

// TestDelayProxy checks the benchmark's delay proxy: a round trip through
// it takes at least twice its delay, and a megabyte each way comes through
// whole and in order, half-closes included.
func TestDelayProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // echo server: copies until the client half-closes, then closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	const delay = 10 * time.Millisecond
	p, err := startDelayProxy(ln.Addr().String(), delay)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q, %v", buf, err)
		}
		if rtt := time.Since(start); rtt < 2*delay {
			t.Fatalf("round trip %v through a %v proxy, want at least %v", rtt, delay, 2*delay)
		}
	}
	data := benchBytes(21, 1<<20)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
	}
}
