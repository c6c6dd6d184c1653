package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/tree"
)

// Defaults of Options.
const (
	DefaultSettleDelay  = 2 * time.Second
	DefaultPollInterval = 500 * time.Millisecond
	DefaultConcurrency  = 8
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 5 * time.Minute
	DefaultBatchLimit   = 10000
)

// ErrNotRunning is returned by SyncNow when Run is not running.
var ErrNotRunning = errors.New("uploader not running")

// Options configure New. Zero fields take the defaults.
type Options struct {
	// StagingDir is the directory of the file system's staging files
	// (required).
	StagingDir string
	// Device names this machine in commits (default: the host name).
	Device string
	// SettleDelay is how long a queued file must go unchanged before a
	// round takes it (SyncNow and WaitCommitted do not wait for it).
	SettleDelay time.Duration
	// PollInterval is how often Run looks at the queue.
	PollInterval time.Duration
	// Concurrency bounds parallel store calls (tree puts, chunk checks)
	// and parallel file chunking.
	Concurrency int
	// MinBackoff and MaxBackoff bound the retry delay after a failed
	// round; it doubles with each attempt, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// BatchLimit bounds the queue entries one round takes.
	BatchLimit int
	// Now returns the current time (tests fix it); nil means time.Now.
	Now func() time.Time
}

// Uploader is the write-back loop. Create it with New, run it with Run.
// Methods are safe for concurrent use.
type Uploader struct {
	db    *index.DB
	store chunkstore.Store
	cache *cache.Cache
	vol   chunkstore.Volume
	opts  Options
	log   *zap.Logger

	roundMu sync.Mutex // held by the round in progress; rounds run one at a time

	mu      sync.Mutex // guards the fields below
	running bool
	syncReq chan syncRequest
	kick    chan struct{}
	done    chan struct{} // closed and replaced after every round
	stats   counters
}

// counters are the figures Status reports beyond the queue.
type counters struct {
	uploading       int
	lastCommit      chunkstore.ID
	lastCommitTime  time.Time
	lastCommitStats tree.Stats // the volume's totals in lastCommit
	lastError       string
	chunks          cache.UploadStats // totals since New
	rounds          int64
}

type syncRequest struct {
	ctx   context.Context
	reply chan error
}

// New returns an uploader committing db's queued changes to store, reading
// chunks through c (whose store must be store, possibly decorated) and
// cutting them with vol's chunker parameters.
func New(db *index.DB, store chunkstore.Store, c *cache.Cache, vol chunkstore.Volume, opts Options, log *zap.Logger) (*Uploader, error) {
	if db == nil || store == nil || c == nil || log == nil || opts.StagingDir == "" {
		return nil, errors.New("uploader.New: db, store, cache, log and Options.StagingDir are required")
	}
	if err := vol.Chunker.Validate(); err != nil {
		return nil, fmt.Errorf("uploader.New: %w", err)
	}
	if opts.Device == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "cloudfs"
		}
		opts.Device = h
	}
	setDefault(&opts.SettleDelay, DefaultSettleDelay)
	setDefault(&opts.PollInterval, DefaultPollInterval)
	setDefault(&opts.Concurrency, DefaultConcurrency)
	setDefault(&opts.MinBackoff, DefaultMinBackoff)
	setDefault(&opts.MaxBackoff, DefaultMaxBackoff)
	setDefault(&opts.BatchLimit, DefaultBatchLimit)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Uploader{db: db, store: store, cache: c, vol: vol, opts: opts, log: log,
		syncReq: make(chan syncRequest), kick: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Run is the background loop: a round every PollInterval (taking settled
// entries), at once on SyncNow and WaitCommitted. It returns when ctx ends
// (nil then), and rounds run on ctx: cancel it to stop; an interrupted
// round changes nothing and its files stay queued. Entries failed
// permanently by an earlier run are retried once at start.
func (u *Uploader) Run(ctx context.Context) error {
	u.mu.Lock()
	if u.running {
		u.mu.Unlock()
		return errors.New("uploader: Run called twice")
	}
	u.running = true
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.running = false
		u.mu.Unlock()
	}()
	if _, err := u.db.RetryFailed(ctx); err != nil {
		u.log.Warn("retry failed uploads", zap.Error(err))
	}
	t := time.NewTicker(u.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			u.logRound(u.Round(ctx, false))
		case <-u.kick:
			u.logRound(u.Round(ctx, true))
		case req := <-u.syncReq:
			req.reply <- u.sync(ctx, req.ctx)
		}
	}
}

func (u *Uploader) logRound(r RoundResult, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		u.log.Warn("upload round failed", zap.Int("files", r.Items), zap.Error(err))
	}
}

// SyncNow makes Run commit everything queued before the call: it retries
// failed entries at once, runs rounds without settle delay until no entry
// changed before the call is left, and returns nil, or the error why not
// (a round's error, or the reason an entry failed). An entry changed again
// after the call is not waited for. ctx bounds the wait; the rounds run on
// Run's context. Without Run it returns ErrNotRunning.
func (u *Uploader) SyncNow(ctx context.Context) error {
	u.mu.Lock()
	running := u.running
	u.mu.Unlock()
	if !running {
		return ErrNotRunning
	}
	req := syncRequest{ctx: ctx, reply: make(chan error, 1)}
	select {
	case u.syncReq <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxSyncRounds bounds the rounds of one SyncNow.
const maxSyncRounds = 8

// sync runs SyncNow's rounds on the loop's context runCtx.
func (u *Uploader) sync(runCtx, callerCtx context.Context) error {
	start := u.opts.Now()
	if _, err := u.db.RetryFailed(runCtx); err != nil {
		return err
	}
	var busy uint64 // a queued inode still being written
	for range maxSyncRounds {
		if err := callerCtx.Err(); err != nil {
			return err
		}
		r, err := u.Round(runCtx, true)
		if err != nil {
			return err
		}
		left, err := u.db.ListDirty(runCtx)
		if err != nil {
			return err
		}
		var old []index.DirtyItem
		for _, it := range left {
			if !it.ChangedAt.After(start) {
				old = append(old, it)
			}
		}
		if len(old) == 0 {
			return nil
		}
		busy = 0
		for _, it := range old {
			if it.LastError != "" {
				return fmt.Errorf("inode %d not uploaded: %s", it.Ino, it.LastError)
			}
			if u.db.Unpersisted(it.Ino) {
				busy = it.Ino
			}
		}
		if r.Items == 0 {
			return fmt.Errorf("%d queued inodes were not taken by a round", len(old))
		}
		if busy != 0 {
			// A writer is between a write and its commit: give it a
			// moment rather than spin.
			select {
			case <-time.After(syncBusyWait):
			case <-callerCtx.Done():
				return callerCtx.Err()
			}
		}
	}
	if busy != 0 {
		return fmt.Errorf("sync: inode %d is still open for writing through another descriptor (it is uploaded once closed)", busy)
	}
	return fmt.Errorf("sync: still queued after %d rounds (files keep changing)", maxSyncRounds)
}

// syncBusyWait is how long SyncNow waits before another round when a
// queued file is still being written.
const syncBusyWait = 100 * time.Millisecond

// WaitCommitted waits until inode ino is off the queue (its content and
// names are committed: close of a mount with --writeback=false). It makes
// Run start a round at once. It returns the entry's error when an upload
// attempt of it fails after the call, and ctx's error when ctx ends. Run
// must be running for it to make progress.
func (u *Uploader) WaitCommitted(ctx context.Context, ino uint64) error {
	first := true
	var attempts int
	for {
		u.mu.Lock()
		done := u.done
		u.mu.Unlock()
		it, err := u.db.Dirty(ctx, ino)
		if errors.Is(err, index.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if index.FailedPermanently(it) {
			return fmt.Errorf("upload of inode %d failed: %s", ino, it.LastError)
		}
		if first {
			attempts, first = it.Attempts, false
		} else if it.Attempts > attempts && it.LastError != "" {
			return fmt.Errorf("upload of inode %d: %s", ino, it.LastError)
		}
		select {
		case u.kick <- struct{}{}:
		default:
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// roundFinished publishes the end of a round to WaitCommitted callers.
func (u *Uploader) roundFinished() {
	u.mu.Lock()
	close(u.done)
	u.done = make(chan struct{})
	u.stats.rounds++
	u.mu.Unlock()
}
