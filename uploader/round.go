package uploader

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// ErrHeadMoved is returned (wrapped) by a round that found head moved by
// another device since the base commit and could not merge it (no Puller,
// or the head kept moving): the round wrote no head, its entries stay
// queued, and the remote head is recorded (index MetaRemoteHead).
var ErrHeadMoved = bucket.ErrHeadMoved

// maxMerges bounds the pulls one round makes when other devices keep
// committing before it.
const maxMerges = 5

// RoundResult summarises a round.
type RoundResult struct {
	Items   int               // queue entries the round took
	Commit  chunkstore.ID     // the commit made head (zero: none)
	Chunked int               // files read and chunked
	Chunks  cache.UploadStats // chunks uploaded vs already present
	Objects int               // tree and manifest objects written
	Done    int               // queue entries taken off
	Changed int               // files changed during the upload, or still being written (still queued)
	Failed  int               // files failed on their own (still queued, with the reason)
}

// The retry-time bounds of NextDirty: urgent rounds take every entry not
// failed permanently.
var (
	farFuture   = time.Unix(0, 1<<62-1)
	allSettled  = farFuture
	urgentDueBy = farFuture
)

// Round runs one round now and waits for it: with urgent set it ignores
// the settle delay and retry times (SyncNow, WaitCommitted), otherwise it
// takes settled entries that are due. A round that finds head moved by
// another device (before it starts, or when its head swap is refused)
// pulls that commit through Options.Puller, which merges it with the
// queued changes, and starts again on top of it. Run calls it; tests and
// tools may call it directly (rounds never overlap). A round with nothing
// to do returns a zero RoundResult.
func (u *Uploader) Round(ctx context.Context, urgent bool) (RoundResult, error) {
	u.roundMu.Lock()
	defer u.roundMu.Unlock()
	defer u.roundFinished()
	for merges := 0; ; merges++ {
		a, err := u.roundOnce(ctx, urgent)
		if a == nil {
			return RoundResult{}, err
		}
		if err == nil {
			u.mu.Lock()
			u.stats.lastError = ""
			u.mu.Unlock()
			return a.res, nil
		}
		if !errors.Is(err, ErrHeadMoved) || u.opts.Puller == nil || merges == maxMerges || ctx.Err() != nil {
			u.fail(ctx, a, err)
			return a.res, err
		}
		// Another device committed first: what this attempt wrote stays
		// for the next one (content-addressed), or for gc.
		u.recordOrphans(ctx, a)
		u.log.Info("head moved; merging the other device's commit before committing", zap.Error(err))
		if _, perr := u.opts.Puller.Pull(ctx); perr != nil {
			u.setPullError(perr)
			err = fmt.Errorf("%w; the pull failed: %w", err, perr)
			u.fail(ctx, a, err)
			return a.res, err
		}
		u.setPullError(nil)
	}
}

// roundOnce is one attempt of Round: it returns nil when nothing is
// queued.
func (u *Uploader) roundOnce(ctx context.Context, urgent bool) (*attempt, error) {
	now := u.opts.Now()
	settled, due := now.Add(-u.opts.SettleDelay), now
	if urgent {
		settled, due = allSettled, urgentDueBy
	}
	items, err := u.db.NextDirty(ctx, settled, due, u.opts.BatchLimit)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	a := &attempt{u: u, items: items, res: RoundResult{Items: len(items)},
		refs: map[uint64][]chunkstore.Ref{}, failed: map[uint64]error{}, busy: map[uint64]bool{}}
	u.setUploading(len(items))
	defer u.setUploading(0)
	return a, a.run(ctx)
}

// attempt is the state of one round.
type attempt struct {
	u       *Uploader
	items   []index.DirtyItem // the entries taken
	snap    *index.Snapshot
	res     RoundResult
	stats   tree.Stats                       // the volume's totals in the commit made, or in the head kept
	written []string                         // keys written: orphan candidates if the round fails
	refs    map[uint64][]chunkstore.Ref      // resolved content of every file in the snapshot
	content []index.FileContent              // files chunked this round
	check   map[chunkstore.ID]bool           // chunks the new entries reference
	sent    map[chunkstore.ID]bool           // chunks this round put
	located map[chunkstore.ID]chunkstore.Loc // packed chunks: put in packs by this round, or found in one
	known   map[chunkstore.ID]chunkstore.Loc // where the index places chunks (zero Loc: an object of its own)
	packed  map[chunkstore.ID]index.Packed   // located chunks the new entries name, for the index
	failed  map[uint64]error                 // files that failed on their own
	busy    map[uint64]bool                  // files still being written: left queued, unread
	// finishPending: head moved past this machine's pending commit (its
	// swap succeeded, then another device committed on top): the round
	// only records the pending commit, if its trees are still the
	// snapshot's, before the merge of what came after.
	finishPending bool
	// took is how long each stage of the round took so far, for the
	// commit's log line (where a round's time goes, without a profiler).
	took stageTimes
}

// stageTimes are the durations of a round's stages.
type stageTimes struct {
	start                                 time.Time
	snapshot, upload, build, trees, check time.Duration
}

// lap returns the time since *last and sets *last to now.
func lap(last *time.Time) time.Duration {
	now := time.Now()
	d := now.Sub(*last)
	*last = now
	return d
}

func (a *attempt) run(ctx context.Context) error {
	u := a.u
	inos := make([]uint64, len(a.items))
	for i, it := range a.items {
		inos[i] = it.Ino
	}
	a.took.start = time.Now()
	last := a.took.start
	load := u.load
	if slices.Contains(inos, index.RootIno) {
		// The root's own attributes may change before anything loaded it
		// (it has no parent to load first); the commit rebuilds it.
		if err := u.db.EnsureLoaded(ctx, index.RootIno, load); err != nil {
			return err
		}
	}
	if n, err := u.db.LoadLinkNames(ctx, inos, load); a.linkWalkFailed(err) != nil {
		return err
	} else if n > 0 {
		u.log.Info("loaded directories to find the other names of changed hard-linked files", zap.Int("dirs", n))
	}
	snap, err := u.db.Snapshot(ctx, inos)
	if err != nil {
		return err
	}
	// A rebuilt directory writes the count of every hard-linked file it
	// names, queued or not: one short of its names is settled first (its
	// other names found, or its count corrected), as for the queued.
	if short, err := u.db.ShortOfNames(ctx, linkedIn(snap.Root)); err != nil {
		return err
	} else if len(short) > 0 {
		if _, err := u.db.LoadLinkNames(ctx, short, load); a.linkWalkFailed(err) != nil {
			return err
		}
		if snap, err = u.db.Snapshot(ctx, append(inos, short...)); err != nil {
			return err
		}
	}
	a.snap = snap
	a.took.snapshot = lap(&last)
	if snap.Root == nil {
		return a.finishWithoutTree(ctx)
	}
	parentID, parent, cond, err := a.parent(ctx)
	if err != nil {
		return err
	}
	if err := a.cutAndUpload(ctx); err != nil {
		return err
	}
	a.took.upload = lap(&last)
	b, err := a.build(ctx)
	if err != nil {
		return err
	}
	a.took.build = lap(&last)
	if err := a.putObjects(ctx, b); err != nil {
		return err
	}
	a.took.trees = lap(&last)
	for _, base := range a.res.Chunks.Bases {
		a.check[base] = true // a delta needs its base as much as itself
	}
	if err := a.checkChunks(ctx); err != nil {
		return err
	}
	a.took.check = lap(&last)
	if a.finishPending {
		if b.root.ID != parent.Root || !parent.RootAttrs.Equal(&snap.RootAttrs) {
			return fmt.Errorf("%w: past this machine's pending commit %s, which no longer matches the queue", ErrHeadMoved, parentID)
		}
		if err := a.apply(ctx, parentID, b); err != nil {
			return err
		}
		u.log.Info("recorded the pending commit of an interrupted round; merging what came after it", zap.Stringer("commit", parentID))
		return fmt.Errorf("%w: past this machine's pending commit %s (recorded)", ErrHeadMoved, parentID)
	}
	commitID := parentID
	if parent == nil || b.root.ID != parent.Root || !parent.RootAttrs.Equal(&snap.RootAttrs) {
		if commitID, err = a.commit(ctx, b.root, parentID, parent, cond); err != nil {
			return err
		}
		a.res.Commit = commitID
	} else {
		a.stats = parent.Stats
	}
	return a.apply(ctx, commitID, b)
}

// cutAndUpload resolves every file's chunk list (resolveFiles) while the
// chunks cut are uploaded: each new chunk is on its way to the store as
// soon as it is cut, so the upload of a large file overlaps its chunking.
// Chunks wholly staged are not written to the chunk cache: until the
// trimmer hands them to it, the clean staging file holds the same bytes.
// Every chunk cut is an orphan candidate should the round fail, whether or
// not its upload ran.
func (a *attempt) cutAndUpload(ctx context.Context) error {
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ups := a.u.cache.StartUpload(upCtx)
	err := a.resolveFiles(ctx, ups)
	if err != nil {
		cancel() // the round fails: stop the uploads
	}
	st, uerr := ups.Wait()
	cut := ups.IDs()
	a.located = ups.Located()
	for _, id := range cut {
		if _, ok := a.located[id]; !ok {
			a.written = append(a.written, chunkstore.ChunkKey(id))
		}
	}
	a.written = append(a.written, ups.PackKeys()...)
	// What was cut and not uploaded is cut again by the next round, from
	// the staging files; a chunk left dirty would stay cached for good.
	if n := a.u.cache.DiscardDirty(cut); n > 0 {
		a.u.log.Debug("dropped chunks cut but not uploaded", zap.Int("chunks", n))
	}
	a.sent = map[chunkstore.ID]bool{}
	for _, id := range ups.Sent() {
		a.sent[id] = true
	}
	a.res.Chunks = st
	if uerr != nil && (err == nil || errors.Is(err, errUploadStopped)) {
		return fmt.Errorf("upload chunks: %w", uerr)
	}
	return err // nil, or why the cutting failed (and the uploads were stopped)
}

// parent decides what the commit builds on from head: the base commit, or
// the pending commit whose head swap succeeded unseen. Anything else is a
// lost race (ErrHeadMoved).
func (a *attempt) parent(ctx context.Context) (chunkstore.ID, *tree.Commit, chunkstore.Cond, error) {
	u, snap := a.u, a.snap
	head, etag, exists, err := bucket.ReadHead(ctx, u.store)
	if err != nil {
		return head, nil, chunkstore.Cond{}, err
	}
	switch {
	case !exists && snap.Base.IsZero():
		return head, nil, chunkstore.Cond{IfNoneMatch: true}, nil
	case exists && head == snap.Base:
	case exists && head == snap.Pending && !head.IsZero():
		u.log.Info("head is the pending commit of an interrupted round; building on it", zap.Stringer("commit", head))
	case exists && !snap.Pending.IsZero() && u.opts.Puller != nil && u.descends(ctx, head, snap.Pending):
		// Our swap succeeded and another device built on it: record our
		// commit first, so the merge of theirs sees our changes as
		// committed rather than as conflicting edits.
		c, err := bucket.ReadCommit(ctx, u.store, snap.Pending)
		if err != nil {
			return head, nil, chunkstore.Cond{}, fmt.Errorf("read pending commit: %w", err)
		}
		a.finishPending = true
		return snap.Pending, c, chunkstore.Cond{}, nil
	default:
		if exists {
			if err := u.db.SetMeta(ctx, index.MetaRemoteHead, head[:]); err != nil {
				return head, nil, chunkstore.Cond{}, err
			}
		}
		return head, nil, chunkstore.Cond{}, fmt.Errorf("%w: head %s (exists %t), base %s", ErrHeadMoved, head, exists, snap.Base)
	}
	c, err := bucket.ReadCommit(ctx, u.store, head)
	if err != nil {
		return head, nil, chunkstore.Cond{}, fmt.Errorf("read head commit: %w", err)
	}
	return head, c, chunkstore.Cond{IfMatch: etag}, nil
}

// linkedIn returns the hard-linked non-directories the rebuilt directory d
// and those below it name.
func linkedIn(d *index.SnapDir) []uint64 {
	var out []uint64
	var walk func(d *index.SnapDir)
	walk = func(d *index.SnapDir) {
		if d == nil {
			return
		}
		for _, e := range d.Entries {
			switch {
			case e.Dir != nil:
				walk(e.Dir)
			case e.Entry.Type != tree.TypeDir && e.Nlink > 1:
				out = append(out, e.Ino)
			}
		}
	}
	walk(d)
	return out
}

// maxAncestry bounds the commits descends reads.
const maxAncestry = 64

// descends reports whether commit anc is head or one of its ancestors
// within maxAncestry commits (read from the bucket; errors say no).
func (u *Uploader) descends(ctx context.Context, head, anc chunkstore.ID) bool {
	queue, seen := []chunkstore.ID{head}, map[chunkstore.ID]bool{}
	for len(queue) > 0 && len(seen) < maxAncestry {
		id := queue[0]
		queue = queue[1:]
		if id == anc {
			return true
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		c, err := bucket.ReadCommit(ctx, u.store, id)
		if err != nil {
			return false
		}
		queue = append(queue, c.Parents...)
	}
	return false
}

// commit writes the commit object of root (with the root's attributes and
// its totals as the stats), records it pending and swaps head.
func (a *attempt) commit(ctx context.Context, root index.DirTree, parentID chunkstore.ID, parent *tree.Commit, cond chunkstore.Cond) (chunkstore.ID, error) {
	u := a.u
	c := &tree.Commit{Root: root.ID, Device: u.opts.Device, TimeNs: u.opts.Now().UnixNano(), Generation: 1,
		Stats: root.Totals, RootAttrs: a.snap.RootAttrs}
	if parent != nil {
		c.Parents = []chunkstore.ID{parentID}
		c.Generation = tree.NextGeneration(parent)
	}
	data, id, err := tree.EncodeCommit(c)
	if err != nil {
		return id, err
	}
	if err := a.checkCollections(ctx); err != nil {
		return id, err
	}
	a.written = append(a.written, chunkstore.CommitKey(id))
	if err := bucket.PutObject(ctx, u.store, tree.Object{Kind: tree.KindCommit, ID: id, Data: data}); err != nil {
		return id, err
	}
	if err := u.db.SetMeta(ctx, index.MetaPendingCommit, id[:]); err != nil {
		return id, err
	}
	tag, err := bucket.SwapHead(ctx, u.store, id, cond.IfMatch)
	if err != nil {
		return id, err
	}
	if u.opts.Puller != nil {
		u.opts.Puller.NoteHead(tag)
	}
	if u.opts.AfterSwap != nil {
		u.opts.AfterSwap()
	}
	u.log.Info("committed", zap.Stringer("commit", id), zap.Stringer("root", root.ID),
		zap.Uint64("generation", c.Generation), zap.Int("files", len(a.content)),
		zap.Uint64("volume_files", c.Stats.Files), zap.Uint64("volume_bytes", c.Stats.Bytes),
		zap.Int("objects", a.res.Objects), zap.Int("packs", a.res.Chunks.Packs),
		zap.Duration("took", time.Since(a.took.start)), zap.Duration("snapshot", a.took.snapshot),
		zap.Duration("chunks", a.took.upload), zap.Duration("build", a.took.build),
		zap.Duration("trees", a.took.trees), zap.Duration("check", a.took.check))
	a.stats = c.Stats
	return id, nil
}

// checkCollections makes sure no object the commit relies on beyond its
// parent's tree (what the round put, and the chunks its new entries name,
// found present) is one a garbage collection marked and may be sweeping:
// one past its mark's deadline fails the round with bucket.ErrCollecting,
// to be retried after the sweep. (What the parent's tree names is safe:
// the head swap succeeds only while that tree is head, which a sweep
// keeps.)
func (a *attempt) checkCollections(ctx context.Context) error {
	keys := slices.Clone(a.written)
	for id := range a.check {
		key, err := a.chunkObject(ctx, id)
		if err != nil {
			return err
		}
		keys = append(keys, key)
	}
	err := a.u.gc.Check(ctx, keys, a.u.opts.Now())
	for _, bad := range a.u.gc.TakeBad() {
		a.u.log.Warn("a gc mark in the bucket does not parse; ignored (as gc does)", zap.Error(bad))
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// linkWalkFailed takes a LoadLinkNames error: a walk that gave up fails
// the inodes it names on their own (they keep their committed entries and
// stay queued, with the error in status) and returns nil; any other error
// is returned.
func (a *attempt) linkWalkFailed(err error) error {
	var lw *index.LinkWalkError
	if !errors.As(err, &lw) {
		return err
	}
	a.u.log.Error("hard-linked files left out of the commit", zap.Error(err))
	for _, ino := range lw.Inos {
		a.failed[ino] = err
	}
	return nil
}

// apply records the commit in the index and fails the files that failed
// on their own.
func (a *attempt) apply(ctx context.Context, commitID chunkstore.ID, b *built) error {
	u := a.u
	items := make([]index.DirtyItem, 0, len(a.snap.Items))
	for _, it := range a.snap.Items {
		if a.failed[it.Ino] == nil && !a.busy[it.Ino] {
			items = append(items, it)
		}
	}
	r, err := u.db.ApplyCommit(ctx, index.Applied{Commit: commitID, Dirs: b.dirs, Files: a.content, Items: items,
		Links: b.links, Unlinked: b.unlinked, Packed: slices.Collect(maps.Values(a.packed))})
	if err != nil {
		return err
	}
	a.res.Done, a.res.Changed = r.Done, len(r.Changed)+len(a.busy)
	seqs := make(map[uint64]uint64, len(a.snap.Items))
	for _, it := range a.snap.Items {
		seqs[it.Ino] = it.Seq
	}
	for ino, ferr := range a.failed {
		u.log.Error("file cannot be uploaded", zap.Uint64("ino", ino), zap.Error(ferr))
		// An inode not among the items (a linked name's, from the walk
		// for its other names) has no seq here: seq 0 records it anyway.
		if err := u.db.FailDirty(ctx, ino, seqs[ino], ferr, time.Time{}); err != nil && !errors.Is(err, index.ErrNotFound) {
			return err
		}
	}
	a.res.Failed = len(a.failed)
	u.mu.Lock()
	u.stats.lastCommit, u.stats.lastCommitTime = commitID, u.opts.Now()
	u.stats.lastCommitStats = a.stats
	u.stats.chunks.Uploaded += a.res.Chunks.Uploaded
	u.stats.chunks.UploadedBytes += a.res.Chunks.UploadedBytes
	u.stats.chunks.Present += a.res.Chunks.Present
	u.stats.chunks.PresentBytes += a.res.Chunks.PresentBytes
	u.stats.chunks.Packs += a.res.Chunks.Packs
	u.stats.chunks.Packed += a.res.Chunks.Packed
	u.mu.Unlock()
	return nil
}

// finishWithoutTree takes entries off the queue when no directory needs
// writing (all of removed inodes).
func (a *attempt) finishWithoutTree(ctx context.Context) error {
	for _, it := range a.snap.Items {
		ok, err := a.u.db.DoneDirty(ctx, it.Ino, it.Seq)
		if err != nil {
			return err
		}
		if ok {
			a.res.Done++
		}
	}
	return nil
}

// fail records a failed round: orphan candidates, and each entry's error
// and retry time. A round interrupted by the end of ctx (shutdown) is not
// counted as an attempt.
func (u *Uploader) fail(ctx context.Context, a *attempt, cause error) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := u.opts.Now()
	u.recordOrphans(bg, a)
	u.mu.Lock()
	u.stats.lastError = cause.Error()
	u.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	permanent := chunkstore.IsPermanent(cause) && !errors.Is(cause, ErrHeadMoved)
	for _, it := range a.items {
		next := time.Time{}
		if !permanent {
			next = now.Add(u.backoff(it.Attempts))
		}
		// Whatever the seq: a failing remote fails a newer change too.
		if err := u.db.FailDirty(bg, it.Ino, 0, cause, next); err != nil && !errors.Is(err, index.ErrNotFound) {
			u.log.Error("record upload failure", zap.Uint64("ino", it.Ino), zap.Error(err))
		}
	}
}

// recordOrphans records what the failed attempt a wrote as orphan
// candidates.
func (u *Uploader) recordOrphans(ctx context.Context, a *attempt) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := u.db.AddOrphanCandidates(ctx, a.written, u.opts.Now()); err != nil {
		u.log.Error("record orphan candidates", zap.Int("keys", len(a.written)), zap.Error(err))
	}
}

// backoff returns the delay before attempt attempts+1: MinBackoff doubled
// per earlier attempt, capped at MaxBackoff, with jitter in [d/2, d).
func (u *Uploader) backoff(attempts int) time.Duration {
	d := u.opts.MinBackoff
	for range min(attempts, 40) {
		if d >= u.opts.MaxBackoff/2 {
			d = u.opts.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, u.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

func (u *Uploader) setUploading(n int) {
	u.mu.Lock()
	u.stats.uploading = n
	u.mu.Unlock()
}
