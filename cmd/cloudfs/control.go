package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/health"
	"github.com/cloudfs/cloudfs/fs"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/uploader"
	"github.com/cloudfs/cloudfs/uploader/pull"
)

// The control channel: a unix socket, <cache-dir>/control.sock (mode
// 0600, removed at exit), served by the mount daemon. One request per
// connection: the client writes one JSON controlRequest and a newline, the
// daemon answers with one JSON controlReply and a newline and closes.
// Closing the connection early cancels the request.
const controlSocketName = "control.sock"

// Control operations.
const (
	opSync   = "sync"
	opStatus = "status"
	opWarmup = "warmup"
)

type controlRequest struct {
	Op    string   `json:"op"`
	Paths []string `json:"paths,omitempty"` // warmup: relative to the mount's root
}

type controlReply struct {
	OK     bool         `json:"ok"`
	Error  string       `json:"error,omitempty"` // one line, for the user
	Status *statusReply `json:"status,omitempty"`
	Warmup *warmResult  `json:"warmup,omitempty"`
}

// statusReply is the payload of `cloudfs status --json`: the mount's
// identity and the uploader's figures.
type statusReply struct {
	Mountpoint   string        `json:"mountpoint"`
	Remote       string        `json:"remote"`
	CacheDir     string        `json:"cache_dir"`
	Device       string        `json:"device"`
	PID          int           `json:"pid"`
	Writeback    bool          `json:"writeback"`
	SettleDelay  time.Duration `json:"settle_delay_ns"`
	PollInterval time.Duration `json:"poll_interval_ns"`
	// Online is false while the remote cannot be reached, since
	// OfflineSince (the first failure), with OfflineError.
	Online       bool      `json:"online"`
	OfflineSince time.Time `json:"offline_since,omitzero"`
	OfflineError string    `json:"offline_error,omitempty"`
	uploader.Status
	Pull pull.Status `json:"pull"`
	// Recovered counts the staging files a mount found unaccounted for
	// by the index and moved to RecoveryDir (fs/recover.go), until the
	// user removes them.
	RecoveryDir    string `json:"recovery_dir"`
	RecoveredFiles int    `json:"recovered_files"`
	RecoveredBytes int64  `json:"recovered_bytes"`
	// Warmup is the cloudfs warmup in flight, if any.
	Warmup *warmProgress `json:"warmup,omitempty"`
}

// controlTarget is what the control server asks of the running mount.
type controlTarget struct {
	info         statusReply // identity fields only
	up           *uploader.Uploader
	puller       *pull.Puller
	reach        *health.Store // the remote's reachability (nil: a local directory)
	idx          *index.DB
	probe        chunkstore.Store // the store without retries: a quick reachability check
	probeTimeout time.Duration
	warm         *warmer
}

// controlServer serves the control socket until Close.
type controlServer struct {
	path   string
	ln     net.Listener
	t      *controlTarget
	log    *zap.Logger
	ctx    context.Context // ends at Close: cancels requests in flight
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startControl listens on <cacheDir>/control.sock and serves it in the
// background. A socket left by a killed daemon is replaced (the caller
// holds the cache dir's lock, so no live daemon owns it).
func startControl(cacheDir string, t *controlTarget, log *zap.Logger) (*controlServer, error) {
	path := filepath.Join(cacheDir, controlSocketName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	var ln net.Listener
	err := withSocketPath(path, func(p string) error {
		l, err := net.Listen("unix", p)
		ln = l
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // removed by path in Close
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &controlServer{path: path, ln: ln, t: t, log: log, ctx: ctx, cancel: cancel}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops accepting, cancels requests in flight, waits for them and
// removes the socket.
func (s *controlServer) Close() {
	s.ln.Close()
	s.cancel()
	s.wg.Wait()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove control socket", zap.Error(err))
	}
}

func (s *controlServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Error("control socket accept", zap.Error(err))
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *controlServer) handle(c net.Conn) {
	defer c.Close()
	// Only the mounting user and root may drive the daemon, whatever the
	// socket's mode says.
	if uid, err := peerUID(c); err != nil || !trustedUID(uid) {
		s.log.Warn("control: refused a connection", zap.Uint32("peer_uid", uid), zap.Error(err))
		who := "root"
		if os.Geteuid() != 0 {
			who = fmt.Sprintf("uid %d and root", os.Geteuid())
		}
		// Take the request line (bounded, and thrown away) first: a
		// reply and close before the client has written would make its
		// write fail (EPIPE) instead of showing this answer.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		bufio.NewReader(io.LimitReader(c, 64<<10)).ReadBytes('\n')
		s.reply(c, controlReply{Error: "permission denied: only " + who + " may control this mount"})
		return
	}
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := r.ReadBytes('\n')
	if err != nil {
		s.log.Debug("control: read request", zap.Error(err))
		return
	}
	c.SetReadDeadline(time.Time{})
	var req controlRequest
	if err := json.Unmarshal(line, &req); err != nil {
		s.reply(c, controlReply{Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	// The client closing its end cancels the request.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	go func() {
		r.ReadByte()
		cancel()
	}()
	s.log.Debug("control request", zap.String("op", req.Op))
	var rep controlReply
	switch req.Op {
	case opSync:
		err = s.t.sync(ctx)
	case opStatus:
		var st statusReply
		st, err = s.t.status(ctx)
		rep.Status = &st
	case opWarmup:
		var res warmResult
		res, err = s.t.warm.warm(ctx, req.Paths)
		rep.Warmup = &res
	default:
		err = fmt.Errorf("unknown request %q", req.Op)
	}
	rep.OK = err == nil
	if err != nil {
		rep.Error = strings.ReplaceAll(err.Error(), "\n", "; ")
		s.log.Info("control request failed", zap.String("op", req.Op), zap.Error(err))
	}
	s.reply(c, rep)
}

func (s *controlServer) reply(c net.Conn, rep controlReply) {
	b, err := json.Marshal(rep)
	if err != nil {
		s.log.Error("control: encode reply", zap.Error(err))
		return
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(b, '\n')); err != nil {
		s.log.Debug("control: write reply", zap.Error(err))
	}
}

// status returns the mount's identity and the uploader's figures.
func (t *controlTarget) status(ctx context.Context) (statusReply, error) {
	st, err := t.up.Status(ctx)
	if err != nil {
		return statusReply{}, err
	}
	r := t.info
	r.Status = st
	if r.Pull, err = t.puller.Status(ctx); err != nil {
		return statusReply{}, err
	}
	if r.RecoveredFiles, r.RecoveredBytes, err = fs.Recovered(r.RecoveryDir); err != nil {
		return statusReply{}, err
	}
	r.Warmup = t.warm.Progress()
	r.Online = true
	if t.reach != nil {
		since, off, ferr := t.reach.Offline()
		if off {
			r.Online, r.OfflineSince = false, since
			if ferr != nil {
				r.OfflineError = ferr.Error()
			}
		}
	}
	return r, nil
}

// maxListedFailures bounds the files a failed sync names.
const maxListedFailures = 3

// sync pulls, merges and commits everything closed before the call, until
// the mount has the bucket's latest head (Uploader.SyncNow). Its errors
// are one line for the user.
func (t *controlTarget) sync(ctx context.Context) error {
	// Fail fast when the remote does not answer, rather than after the
	// retry layer's patience.
	pctx, cancel := context.WithTimeout(ctx, t.probeTimeout)
	_, err := t.probe.Stat(pctx, chunkstore.HeadKey)
	cancel()
	if err != nil && !errors.Is(err, chunkstore.ErrNotFound) {
		return fmt.Errorf("remote %s is unreachable (changes stay queued and are retried): %v", t.info.Remote, err)
	}
	if err := t.up.SyncNow(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("sync interrupted: %w", ctx.Err())
		}
		if errors.Is(err, chunkstore.ErrUnreachable) {
			return fmt.Errorf("remote %s became unreachable (changes stay queued and are retried): %v", t.info.Remote, err)
		}
		st, serr := t.up.Status(ctx)
		if serr != nil || len(st.Failed) == 0 {
			return fmt.Errorf("not committed: %w", err)
		}
		return failedFiles(st.Failed)
	}
	return nil
}

// failedFiles reports failed uploads as "2 files failed: /x: access
// denied; /y: ...".
func failedFiles(fs []uploader.Failure) error {
	var parts []string
	for i, f := range fs {
		if i == maxListedFailures {
			parts = append(parts, fmt.Sprintf("and %d more (cloudfs status)", len(fs)-i))
			break
		}
		p := f.Path
		if p == "" {
			p = fmt.Sprintf("inode %d", f.Ino)
		}
		parts = append(parts, p+": "+f.Error)
	}
	noun := "files"
	if len(fs) == 1 {
		noun = "file"
	}
	return fmt.Errorf("%d %s failed: %s", len(fs), noun, strings.Join(parts, "; "))
}

// maxSocketPath is the longest unix socket path bind(2) and connect(2)
// take (sun_path is 108 bytes with its NUL).
const maxSocketPath = 107

// withSocketPath calls fn with a path of the socket at path that fits in
// sun_path: path itself, or for a deep cache dir the same socket reached
// through an open descriptor of its directory (/proc/self/fd/N/name).
func withSocketPath(path string, fn func(p string) error) error {
	if len(path) <= maxSocketPath {
		return fn(path)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path)))
}

// statusPoll is how often callPolling asks the daemon for its status.
const statusPoll = 250 * time.Millisecond

// callPolling sends req to the daemon of mnt and, until the reply comes,
// hands tick the daemon's status every statusPoll (for a progress bar).
func callPolling(ctx context.Context, mnt string, req controlRequest, tick func(*statusReply)) (*controlReply, error) {
	type result struct {
		rep *controlReply
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := callDaemon(ctx, mnt, req)
		done <- result{rep, err}
	}()
	t := time.NewTicker(statusPoll)
	defer t.Stop()
	for {
		select {
		case r := <-done:
			return r.rep, r.err
		case <-t.C:
			if rep, err := callDaemon(ctx, mnt, controlRequest{Op: opStatus}); err == nil && rep.Status != nil {
				tick(rep.Status)
			}
		}
	}
}

// callDaemon sends req to the daemon serving mountpoint mnt and returns
// its reply; a reply that reports an error is returned as a user error.
func callDaemon(ctx context.Context, mnt string, req controlRequest) (*controlReply, error) {
	rt, err := findRuntime(mnt)
	if err != nil {
		return nil, err
	}
	var c net.Conn
	err = withSocketPath(rt.Socket, func(p string) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "unix", p)
		c = conn
		return err
	})
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: the cloudfs daemon (pid %d) does not answer on %s: %v",
			rt.Mountpoint, rt.PID, rt.Socket, unwrapOp(err))}
	}
	defer c.Close()
	if uid, err := peerUID(c); err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: the socket %s: %v", rt.Mountpoint, rt.Socket, err)}
	} else if !trustedUID(uid) {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: the socket %s is served by uid %d, not by this user or root (refusing to trust it)",
			rt.Mountpoint, rt.Socket, uid)}
	}
	go func() {
		<-ctx.Done()
		c.Close()
	}()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: send to the daemon: %v", rt.Mountpoint, unwrapOp(err))}
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		if ctx.Err() != nil {
			return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: %s: %v", rt.Mountpoint, req.Op, ctx.Err())}
		}
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: the daemon closed the connection without a reply (%v)", rt.Mountpoint, unwrapOp(err))}
	}
	var rep controlReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("%s: bad reply from the daemon: %v", rt.Mountpoint, err)}
	}
	if !rep.OK {
		return &rep, &exitError{code: 1, msg: rep.Error}
	}
	return &rep, nil
}

// unwrapOp drops the *net.OpError wrapper, whose address is the socket
// path the message already names.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		if se, ok := oe.Err.(*os.SyscallError); ok {
			return se.Err
		}
		return oe.Err
	}
	return err
}
