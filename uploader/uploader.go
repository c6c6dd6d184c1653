package uploader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// Defaults of Options.
const (
	DefaultSettleDelay   = 2 * time.Second
	DefaultQueueInterval = 500 * time.Millisecond
	DefaultConcurrency   = 8
	DefaultMinBackoff    = time.Second
	DefaultMaxBackoff    = 5 * time.Minute
	DefaultBatchLimit    = 10000
)

// ErrNotRunning is returned by SyncNow when Run is not running.
var ErrNotRunning = errors.New("uploader not running")

// Puller brings other devices' commits into the index: package
// uploader/pull's Puller. Pull is only called with no round running.
type Puller interface {
	// Changed reports whether head may have moved since the last Pull or
	// NoteHead (one request).
	Changed(ctx context.Context) (bool, error)
	// Pull merges the remote head into the index unless it is the base
	// commit (or this machine's pending commit), and reports whether it
	// did.
	Pull(ctx context.Context) (bool, error)
	// NoteHead records head's ETag after a round swapped it.
	NoteHead(etag string)
	// Acknowledge records the base commit in the bucket for gc, when it
	// moved (rate-limited unless force).
	Acknowledge(ctx context.Context, force bool) error
}

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
	// QueueInterval is how often Run looks at the queue.
	QueueInterval time.Duration
	// Puller, when set, brings other devices' commits into the index: a
	// round that finds head moved (or loses the head swap) pulls and
	// tries again, SyncNow pulls first, and Run polls head every
	// PullInterval (0: never; pulls then happen only on those
	// occasions).
	Puller       Puller
	PullInterval time.Duration
	// Concurrency bounds parallel file chunking; the parallel store calls
	// for objects of at most a few KiB (tree and manifest puts, chunk
	// checks) are smallCallsPer times as many.
	Concurrency int
	// MinBackoff and MaxBackoff bound the retry delay after a failed
	// round; it doubles with each attempt, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// BatchLimit bounds the queue entries one round takes.
	BatchLimit int
	// AfterSwap, when set, is called after a round swapped head and before
	// the commit is recorded in the index (fault injection: a test kills
	// the daemon there).
	AfterSwap func()
	// Loader reads the remote trees (shared with the mount's lazy loads,
	// for its cache); nil means a Loader of its own.
	Loader *bucket.Loader
	// Now returns the current time (tests fix it); nil means time.Now.
	Now func() time.Time
}

// Uploader is the write-back loop. Create it with New, run it with Run.
// Methods are safe for concurrent use.
type Uploader struct {
	db    *index.DB
	store chunkstore.Store
	load  *bucket.Loader
	gc    *bucket.Collections // the marks of pending garbage collections
	cache *cache.Cache
	vol   chunkstore.Volume
	opts  Options
	log   *zap.Logger

	roundMu sync.Mutex // held by the round in progress; rounds run one at a time

	// pollFails and nextPoll back polls off while the remote fails them
	// (Run's goroutine only).
	pollFails int
	nextPoll  time.Time

	mu      sync.Mutex // guards the fields below
	running bool
	syncReq chan syncRequest
	kick    chan struct{}
	done    chan struct{} // closed and replaced after every round
	stats   counters

	// cutBytes counts the file bytes cut into chunks since New, as they
	// are cut (a round in progress shows in it; Status.BytesCut).
	cutBytes atomic.Int64
}

// counters are the figures Status reports beyond the queue.
type counters struct {
	uploading       int
	lastCommit      chunkstore.ID
	lastCommitTime  time.Time
	lastCommitStats tree.Stats // the volume's totals in lastCommit
	lastError       string
	pullError       string            // the last failed pull or poll ("" after a good one)
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
	setDefault(&opts.QueueInterval, DefaultQueueInterval)
	setDefault(&opts.Concurrency, DefaultConcurrency)
	setDefault(&opts.MinBackoff, DefaultMinBackoff)
	setDefault(&opts.MaxBackoff, DefaultMaxBackoff)
	setDefault(&opts.BatchLimit, DefaultBatchLimit)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Loader == nil {
		opts.Loader = bucket.NewLoader(store)
	}
	return &Uploader{db: db, store: store, load: opts.Loader, gc: bucket.NewCollections(store), cache: c, vol: vol, opts: opts, log: log,
		syncReq: make(chan syncRequest), kick: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Run is the background loop: a round every QueueInterval (taking settled
// entries), at once on SyncNow and WaitCommitted, and a poll of head every
// PullInterval (pulling when it moved). It returns when ctx ends (nil
// then), and rounds run on ctx: cancel it to stop; an interrupted round
// changes nothing and its files stay queued. Entries failed permanently by
// an earlier run are retried once at start.
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
	t := time.NewTicker(u.opts.QueueInterval)
	defer t.Stop()
	var pollC <-chan time.Time
	if u.opts.Puller != nil && u.opts.PullInterval > 0 {
		pt := time.NewTicker(u.opts.PullInterval)
		defer pt.Stop()
		pollC = pt.C
		u.poll(ctx) // catch up at once with what happened while unmounted
	}
	for {
		select {
		case <-ctx.Done():
			u.acknowledge(context.WithoutCancel(ctx), true)
			return nil
		case <-t.C:
			u.logRound(u.Round(ctx, false))
		case <-pollC:
			u.poll(ctx)
		case <-u.kick:
			u.logRound(u.Round(ctx, true))
		case req := <-u.syncReq:
			req.reply <- u.sync(ctx, req.ctx)
		}
	}
}

// maxPollBackoff bounds the wait between polls while they fail.
const maxPollBackoff = time.Minute

// poll pulls when head moved, and acknowledges the base commit. While
// polls or pulls fail (the remote is unreachable), the next ones wait
// twice as long each time, up to maxPollBackoff.
func (u *Uploader) poll(ctx context.Context) {
	now := u.opts.Now()
	if now.Before(u.nextPoll) {
		return
	}
	err := u.pollOnce(ctx)
	if err == nil || ctx.Err() != nil {
		u.pollFails, u.nextPoll = 0, time.Time{}
		return
	}
	u.pollFails++
	wait := u.opts.PullInterval
	for i := 1; i < u.pollFails && wait < maxPollBackoff; i++ {
		wait *= 2
	}
	u.nextPoll = now.Add(min(wait, maxPollBackoff))
	if u.pollFails == 1 {
		u.log.Warn("poll of head failed; polls back off until the remote answers", zap.Error(err))
	} else {
		u.log.Debug("poll of head failed", zap.Int("failures", u.pollFails), zap.Duration("next_in", wait), zap.Error(err))
	}
}

func (u *Uploader) pollOnce(ctx context.Context) error {
	changed, err := u.opts.Puller.Changed(ctx)
	if err != nil {
		u.setPullError(err)
		return err
	}
	if changed {
		if err := u.pull(ctx); err != nil {
			return err
		}
	}
	u.acknowledge(ctx, false)
	return nil
}

// pull runs the Puller with no round running.
func (u *Uploader) pull(ctx context.Context) error {
	u.roundMu.Lock()
	defer u.roundMu.Unlock()
	_, err := u.opts.Puller.Pull(ctx)
	u.setPullError(err)
	return err
}

func (u *Uploader) setPullError(err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err == nil {
		u.stats.pullError = ""
		return
	}
	u.stats.pullError = err.Error()
}

// acknowledge records the base commit in the bucket (for gc).
func (u *Uploader) acknowledge(ctx context.Context, force bool) {
	if u.opts.Puller == nil {
		return
	}
	if err := u.opts.Puller.Acknowledge(ctx, force); err != nil && ctx.Err() == nil {
		u.log.Debug("device record not written", zap.Error(err))
	}
}

func (u *Uploader) logRound(r RoundResult, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		u.log.Warn("upload round failed", zap.Int("files", r.Items), zap.Error(err))
	}
}

// SyncNow makes Run bring the index and the bucket's head into
// agreement: it pulls other devices' commits (with a Puller), retries
// failed entries at once, runs rounds without settle delay until no entry
// changed before the call is left, and returns nil once head is the base
// commit, or the error why not (a round's or a pull's error, the reason an
// entry failed, a head moved by a device this mount cannot pull from). An
// entry changed again after the call is not waited for. ctx bounds the
// wait; the rounds run on Run's context. Without Run it returns
// ErrNotRunning.
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

// sync runs SyncNow's pulls and rounds on the loop's context runCtx.
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
		if u.opts.Puller != nil {
			if err := u.pull(runCtx); err != nil {
				return fmt.Errorf("pull: %w", err)
			}
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
			synced, err := u.inSync(runCtx)
			if err != nil || synced {
				if err == nil {
					u.acknowledge(runCtx, false)
				}
				return err
			}
			continue // another device committed meanwhile: pull it
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
	return fmt.Errorf("sync: still not in step with the remote after %d rounds (files keep changing, or other devices keep committing)", maxSyncRounds)
}

// inSync reports whether the bucket's head is the index's base commit
// (both absent counts), with an error when it cannot be without a pull
// this uploader cannot make.
func (u *Uploader) inSync(ctx context.Context) (bool, error) {
	head, _, ok, err := bucket.ReadHead(ctx, u.store)
	if err != nil {
		return false, err
	}
	base, err := u.db.Meta(ctx, index.MetaBaseCommit)
	if err != nil && !errors.Is(err, index.ErrNotFound) {
		return false, err
	}
	switch {
	case !ok && len(base) == 0:
		return true, nil // nothing committed yet, nothing to commit
	case !ok:
		return false, fmt.Errorf("the remote has no head, but this mount synced with commit %x before", base)
	case string(base) == string(head[:]):
		return true, nil
	case u.opts.Puller == nil:
		return false, fmt.Errorf("the remote head %s is a commit from another device that this mount does not pull", head)
	}
	return false, nil
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

// smallCallsPer is how many more parallel store calls a round makes for
// small objects (trees, manifests, chunk checks) than Options.Concurrency:
// each is a round trip for a few KiB, so over a link with 20 ms round
// trips eight at a time put the 1,000 directory trees of Go's source tree
// in 2.5 s.
const smallCallsPer = 4

// smallCalls bounds a round's parallel store calls for small objects.
func (u *Uploader) smallCalls() int { return u.opts.Concurrency * smallCallsPer }
