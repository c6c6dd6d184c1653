package pull

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// Notifier is told what a pull changed, so the kernel's caches follow:
// the file system implements it. Its methods are called from the
// goroutine that pulled, never from one serving a FUSE request, with no
// lock of the index held.
type Notifier interface {
	// Invalidate drops what the kernel caches of the entries and inode
	// attributes named.
	Invalidate(vs []index.Invalidation)
	// Orphaned is told the inodes a pull took the last name of: those
	// the kernel does not hold can be forgotten now.
	Orphaned(inos []uint64)
}

// Defaults of Options.
const (
	DefaultConcurrency = 8
	DefaultAckInterval = 10 * time.Second
)

// maxPullSteps bounds the fetch-and-apply steps of one pull (each one goes
// a level deeper into the changed directories).
const maxPullSteps = 256

// Options configure New. Zero fields take the defaults.
type Options struct {
	// Device is this mount's device id (its record's name); Host names it
	// in conflict copies (default: Device).
	Device, Host string
	// Machine and Instance go in the device record (see bucket.Device);
	// DeviceETag is the record's ETag as the mount wrote it ("" when it
	// did not): later writes are conditional on it, so another copy of
	// the cache dir writing the same record is noticed.
	Machine, Instance, DeviceETag string
	// Notifier, when set, is told what each pull changed.
	Notifier Notifier
	// Concurrency bounds the parallel fetches of a pull.
	Concurrency int
	// AckInterval is the least time between two writes of the device
	// record.
	AckInterval time.Duration
	// Now returns the current time (tests fix it); nil means time.Now.
	Now func() time.Time
	// PauseApply, when set, is called inside a pull's index transaction
	// before it commits (fault injection, index.Pull.Pause); PauseFetch
	// after a pull's first fetch of objects, before it goes deeper.
	PauseApply, PauseFetch func()
}

// Puller pulls a volume's new commits into an index. Create it with New.
type Puller struct {
	db    *index.DB
	store chunkstore.Store
	load  *bucket.Loader
	opts  Options
	log   *zap.Logger

	mu      sync.Mutex // guards the fields below
	etag    string     // head's ETag as last read or written here
	commits map[chunkstore.ID]*tree.Commit
	st      Status
	ack     struct {
		commit chunkstore.ID
		at     time.Time
		etag   string
		shared bool // another writer of this device's record was seen
	}
}

// New returns a Puller merging the commits of store into db, reading trees
// through load (which reads store).
func New(db *index.DB, store chunkstore.Store, load *bucket.Loader, opts Options, log *zap.Logger) (*Puller, error) {
	if db == nil || store == nil || load == nil || log == nil || opts.Device == "" {
		return nil, errors.New("pull.New: db, store, loader, log and Options.Device are required")
	}
	if opts.Host == "" {
		opts.Host = opts.Device
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.AckInterval <= 0 {
		opts.AckInterval = DefaultAckInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Puller{db: db, store: store, load: load, opts: opts, log: log, commits: map[chunkstore.ID]*tree.Commit{}}
	p.ack.etag = opts.DeviceETag
	return p, nil
}

// Changed reports whether head may have moved since this machine last
// read or wrote it: one request (the head object's metadata).
func (p *Puller) Changed(ctx context.Context) (bool, error) {
	etag, ok, err := bucket.HeadETag(ctx, p.store)
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok {
		return p.etag != "", nil
	}
	return etag != p.etag, nil
}

// NoteHead records head's ETag after this machine swapped it itself, so the
// next poll does not take its own commit for news.
func (p *Puller) NoteHead(etag string) {
	p.mu.Lock()
	p.etag = etag
	p.mu.Unlock()
}

// commit returns commit id, read once.
func (p *Puller) commit(ctx context.Context, id chunkstore.ID) (*tree.Commit, error) {
	p.mu.Lock()
	c := p.commits[id]
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err := bucket.ReadCommit(ctx, p.store, id)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if len(p.commits) > 16 {
		clear(p.commits)
	}
	p.commits[id] = c
	p.mu.Unlock()
	return c, nil
}

// metaID reads an id from the index's meta table (zero when unset).
func (p *Puller) metaID(ctx context.Context, key string) (chunkstore.ID, error) {
	var id chunkstore.ID
	v, err := p.db.Meta(ctx, key)
	if errors.Is(err, index.ErrNotFound) {
		return id, nil
	}
	if err != nil {
		return id, err
	}
	if len(v) != chunkstore.IDSize {
		return id, fmt.Errorf("meta %s holds %d bytes", key, len(v))
	}
	copy(id[:], v)
	return id, nil
}

// ErrNoHead is returned (wrapped) when the bucket has no head although this
// machine synced with a commit before.
var ErrNoHead = errors.New("the remote has no head")

// Pull merges the remote head into the index when it is not the base
// commit already, and reports whether it did. A head that is this
// machine's pending commit (a round's swap whose record was lost) is left
// to the round, which records it. Pull must not run beside a round.
func (p *Puller) Pull(ctx context.Context) (bool, error) {
	moved, err := p.pull(ctx)
	p.mu.Lock()
	if err != nil && ctx.Err() == nil {
		p.st.LastError = err.Error()
	} else if err == nil {
		p.st.LastError = ""
	}
	p.mu.Unlock()
	return moved, err
}

func (p *Puller) pull(ctx context.Context) (bool, error) {
	head, etag, ok, err := bucket.ReadHead(ctx, p.store)
	if err != nil {
		return false, err
	}
	base, err := p.metaID(ctx, index.MetaBaseCommit)
	if err != nil {
		return false, err
	}
	pending, err := p.metaID(ctx, index.MetaPendingCommit)
	if err != nil {
		return false, err
	}
	switch {
	case !ok && base.IsZero():
		p.NoteHead("")
		return false, nil
	case !ok:
		return false, fmt.Errorf("%w, but this mount synced with commit %s", ErrNoHead, base)
	case head == base, head == pending:
		p.NoteHead(etag)
		return false, nil
	}
	start := p.opts.Now()
	c, err := p.commit(ctx, head)
	if err != nil {
		return false, fmt.Errorf("pull %s: %w", head, err)
	}
	var fromAttrs *tree.RootAttrs
	if !base.IsZero() {
		bc, err := p.commit(ctx, base)
		switch {
		case err == nil:
			fromAttrs = &bc.RootAttrs
		case !errors.Is(err, chunkstore.ErrNotFound):
			return false, fmt.Errorf("pull %s: base %w", head, err)
		}
	}
	src := &source{trees: map[chunkstore.ID]*tree.Tree{}, manifests: map[chunkstore.ID]*tree.Manifest{}}
	var res index.PullResult
	fetched := 0
	for step := 0; ; step++ {
		if step == maxPullSteps {
			return false, fmt.Errorf("pull %s: still fetching after %d steps", head, step)
		}
		res, err = p.db.ApplyPull(ctx, index.Pull{From: base, Commit: head, Head: c, FromAttrs: fromAttrs,
			Objects: src, Device: p.opts.Host, Now: p.opts.Now(), Pause: p.opts.PauseApply})
		if err != nil {
			return false, fmt.Errorf("pull %s: %w", head, err)
		}
		if len(res.Need) == 0 {
			break
		}
		if err := p.fetch(ctx, src, res.Need); err != nil {
			return false, fmt.Errorf("pull %s: %w", head, err)
		}
		if fetched == 0 && p.opts.PauseFetch != nil {
			p.opts.PauseFetch()
		}
		fetched += len(res.Need)
	}
	if n := p.opts.Notifier; n != nil {
		n.Invalidate(res.Invalidate)
		if len(res.Orphaned) > 0 {
			n.Orphaned(res.Orphaned)
		}
	}
	for _, cf := range res.Conflicts {
		p.log.Warn("merge conflict", zap.Stringer("kind", cf.Kind), zap.String("path", "/"+cf.Path),
			zap.String("copy", cf.CopyPath), zap.String("device", c.Device))
	}
	p.log.Info("pulled", zap.Stringer("commit", head), zap.Uint64("generation", c.Generation), zap.String("device", c.Device),
		zap.Int("dirs", res.Dirs), zap.Int("added", res.Added), zap.Int("removed", res.Removed),
		zap.Int("changed", res.Changed), zap.Int("moved", res.Moved), zap.Int("conflicts", len(res.Conflicts)),
		zap.Int("objects", fetched), zap.Duration("took", p.opts.Now().Sub(start)))
	p.mu.Lock()
	p.etag = etag
	p.st.Pulls++
	p.st.LastPull = p.opts.Now()
	p.st.LastPullCommit = head.String()
	p.st.LastPullGeneration = c.Generation
	p.st.LastPullDevice = c.Device
	p.mu.Unlock()
	return true, nil
}

// fetch reads the objects ids into src, in parallel.
func (p *Puller) fetch(ctx context.Context, src *source, ids []chunkstore.ID) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for _, id := range ids {
		g.Go(func() error {
			t, m, err := p.load.Object(gctx, id)
			if err != nil {
				return err
			}
			src.put(id, t, m)
			return nil
		})
	}
	return g.Wait()
}

// source is the index.PullSource of one pull: the objects fetched so far.
type source struct {
	mu        sync.Mutex
	trees     map[chunkstore.ID]*tree.Tree
	manifests map[chunkstore.ID]*tree.Manifest
}

func (s *source) put(id chunkstore.ID, t *tree.Tree, m *tree.Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t != nil {
		s.trees[id] = t
	}
	if m != nil {
		s.manifests[id] = m
	}
}

func (s *source) Tree(id chunkstore.ID) *tree.Tree {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trees[id]
}

func (s *source) Manifest(id chunkstore.ID) *tree.Manifest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.manifests[id]
}
