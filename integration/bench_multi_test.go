package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// The two-machine figures of make bench: how long a file closed on one
// mount takes to be visible on another, and what a poll costs when there
// is nothing new.
const (
	propSettle = time.Second
	propPoll   = time.Second
	propTrials = 20
	idlePolls  = 8
)

// countingProxy forwards HTTP requests to target and counts them.
type countingProxy struct {
	srv *httptest.Server
	n   atomic.Int64
}

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	// The Host header stays the proxy's: requests are signed for it.
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.n.Add(1)
		rp.ServeHTTP(w, r)
	}))
	return p, nil
}

func (r *benchRun) propagation(ctx context.Context) error {
	if r.remoteKind != "s3" {
		return errors.New("needs an s3:// remote")
	}
	proxy, err := newCountingProxy(r.minio.Endpoint)
	if err != nil {
		return err
	}
	defer proxy.srv.Close()
	remote := "s3://" + r.minio.Bucket + "/two-machines"
	for _, d := range []string{"prop-a", "prop-b", "cache-prop-a", "cache-prop-b"} {
		if err := os.MkdirAll(filepath.Join(r.base, d), 0o755); err != nil {
			return err
		}
	}
	args := []string{"--settle-delay", propSettle.String(), "--poll-interval", propPoll.String()}
	a := harness.StartMount(r.b, harness.MountOptions{Remote: remote, MountPoint: filepath.Join(r.base, "prop-a"),
		CacheDir: filepath.Join(r.base, "cache-prop-a"), Args: args, Env: r.env})
	defer a.Unmount()
	b := harness.StartMount(r.b, harness.MountOptions{Remote: remote, MountPoint: filepath.Join(r.base, "prop-b"),
		CacheDir: filepath.Join(r.base, "cache-prop-b"), Args: append(args, "--endpoint", proxy.srv.URL), Env: r.env})
	defer b.Unmount()
	var lat []time.Duration
	for i := range propTrials {
		name := fmt.Sprintf("f%02d", i)
		data := benchBytes(uint64(900+i), 4<<10)
		if err := os.WriteFile(a.Path(name), data, 0o644); err != nil {
			return err
		}
		start := time.Now()
		deadline := start.Add(time.Minute)
		for {
			got, err := os.ReadFile(b.Path(name))
			if err == nil && string(got) == string(data) {
				break
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read on the second mount: %w", err)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not visible on the second mount after a minute", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.row.propP50.Set(ms(lat[len(lat)/2]))
	r.row.propP95.Set(ms(lat[(len(lat)*95+99)/100-1]))
	// An idle poll: nothing changes for idlePolls intervals (a is idle
	// too, its uploads done), after the device record's last rewrite
	// (at most every 10 s, when the base commit moved).
	time.Sleep(12 * time.Second)
	before := proxy.n.Load()
	time.Sleep(idlePolls * propPoll)
	r.row.idlePoll.Set(float64(proxy.n.Load()-before) / idlePolls)
	return nil
}
