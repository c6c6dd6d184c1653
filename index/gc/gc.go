package gc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// Defaults of Options.
const (
	DefaultKeepLast     = 10
	DefaultKeepWithin   = 7 * 24 * time.Hour
	DefaultGrace        = time.Hour
	DefaultDeviceExpiry = 90 * 24 * time.Hour
)

// Options tune Run. Zero fields take the defaults.
type Options struct {
	KeepLast     int           // newest commits of head's history kept (at least 1: head)
	KeepWithin   time.Duration // commits made within this long before now are kept
	Grace        time.Duration // see the package doc (at least bucket.MinGrace)
	DeviceExpiry time.Duration // a device unseen this long holds nothing back
	// DryRun reports what a run would mark and free, and writes and
	// deletes nothing.
	DryRun bool
	// MaxDelete bounds the objects one run deletes (0: no bound); the
	// rest stay marked for the next run.
	MaxDelete int
	// Host names the machine in the marks it writes.
	Host string
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
	// Progress, when set, is told the stage ("listing", "reading trees",
	// "deleting") and the count of objects so far in it.
	Progress func(stage string, n int64)
}

// Count is a number of objects and their stored bytes.
type Count struct {
	Objects int64 `json:"objects"`
	Bytes   int64 `json:"bytes"`
}

func (c *Count) add(i chunkstore.Info) { c.Objects++; c.Bytes += i.Size }

// Report is what a run found and did. Counts are of content-addressed
// objects (chunks, packs, trees and manifests, commits).
type Report struct {
	DryRun      bool  `json:"dry_run"`
	Scanned     Count `json:"scanned"`     // listed
	Reachable   Count `json:"reachable"`   // kept: reachable from a kept commit
	Young       Count `json:"young"`       // unreachable, kept: within the grace period
	Unreachable Count `json:"unreachable"` // unreachable and older than the grace period
	Marked      Count `json:"marked"`      // newly marked (dry run: would be)
	Pending     Count `json:"pending"`     // marked by earlier runs, not yet due
	Freed       Count `json:"freed"`       // deleted (dry run: would be)
	Left        Count `json:"left"`        // due but left for the next run by MaxDelete
	Rescued     Count `json:"rescued"`     // marked, reachable (or written) again, kept

	KeptCommits    int      `json:"kept_commits"`
	Devices        int      `json:"devices"`                   // live device records
	ExpiredDevices []string `json:"expired_devices,omitempty"` // past DeviceExpiry
	// MissingDevices are live devices whose acknowledged commit is gone.
	MissingDevices []string `json:"missing_devices,omitempty"`
	MarksSwept     int      `json:"marks_swept"`
	BadMarks       []string `json:"bad_marks,omitempty"` // marks that do not parse: ignored
	// NextSweep is when a run can sweep the earliest pending mark (this
	// run's included); zero when none is pending.
	NextSweep time.Time `json:"next_sweep,omitzero"`
}

// ErrBlind is returned (wrapped) when a tree or manifest that a kept
// commit reaches cannot be read: what it names is unknown, so the run
// deletes nothing.
var ErrBlind = errors.New("cannot read the whole of what the volume keeps")

// run is one collection.
type run struct {
	store   chunkstore.Store
	opts    Options
	now     time.Time
	listed  map[bucket.Ref]chunkstore.Info // content-addressed objects listed
	reached map[bucket.Ref]bool
	freed   map[bucket.Ref]bool // deleted by this run's sweep (dry run: would be)
	rep     *Report
}

// Run collects the garbage of the volume in s once: it sweeps the due
// marks of earlier runs and marks what is unreachable now.
func Run(ctx context.Context, s chunkstore.Store, opts Options) (*Report, error) {
	if opts.KeepLast <= 0 {
		opts.KeepLast = DefaultKeepLast
	}
	if opts.KeepWithin <= 0 {
		opts.KeepWithin = DefaultKeepWithin
	}
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Grace < bucket.MinGrace {
		return nil, fmt.Errorf("grace period %v is below %v", opts.Grace, bucket.MinGrace)
	}
	if opts.DeviceExpiry <= 0 {
		opts.DeviceExpiry = DefaultDeviceExpiry
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Progress == nil {
		opts.Progress = func(string, int64) {}
	}
	r := &run{store: s, opts: opts, now: opts.Now(), listed: map[bucket.Ref]chunkstore.Info{},
		reached: map[bucket.Ref]bool{}, freed: map[bucket.Ref]bool{}, rep: &Report{DryRun: opts.DryRun}}
	// Time first, then the listing, then head: a sweep's deadline has
	// passed before head is read, so no commit after that read names
	// what it deletes.
	if err := r.list(ctx); err != nil {
		return nil, err
	}
	head, _, hasHead, err := bucket.ReadHead(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := r.mark(ctx, head, hasHead); err != nil {
		return nil, err
	}
	for ref, info := range r.listed {
		switch {
		case r.reached[ref]:
			r.rep.Reachable.add(info)
		case r.young(info):
			r.rep.Young.add(info)
		default:
			r.rep.Unreachable.add(info)
		}
	}
	pending, err := r.sweep(ctx)
	if err != nil {
		return r.rep, err
	}
	return r.rep, r.markNew(ctx, pending)
}

// young reports whether an object is within the grace period.
func (r *run) young(i chunkstore.Info) bool { return r.now.Sub(i.ModTime) < r.opts.Grace }

// list lists the bucket once.
func (r *run) list(ctx context.Context) error {
	var n int64
	err := r.store.List(ctx, "", func(i chunkstore.Info) error {
		n++
		if n%1000 == 0 {
			r.opts.Progress("listing", n)
		}
		if ref, ok := bucket.ParseRef(i.Key); ok {
			r.listed[ref] = i
			r.rep.Scanned.add(i)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", r.store, err)
	}
	r.opts.Progress("listing", n)
	return nil
}

// mark finds what the kept commits reach.
func (r *run) mark(ctx context.Context, head chunkstore.ID, hasHead bool) error {
	k, err := r.keptCommits(ctx, head, hasHead)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	r.rep.KeptCommits, r.rep.Devices = len(k.commits), k.devices
	r.rep.ExpiredDevices, r.rep.MissingDevices = k.expired, k.missingDevices
	ids := make([]chunkstore.ID, 0, len(k.commits))
	for id := range k.commits {
		r.reached[bucket.Ref{Kind: bucket.RefCommit, ID: id}] = true
		ids = append(ids, id)
	}
	// Newest first, so that the paths in messages are the current ones.
	slices.SortFunc(ids, func(a, b chunkstore.ID) int {
		return cmp.Compare(k.commits[b].Generation, k.commits[a].Generation)
	})
	roots := make([]bucket.Root, len(ids))
	for i, id := range ids {
		roots[i] = bucket.Root{ID: k.commits[id].Root, Name: "commit " + id.String() + ":/"}
	}
	reach, err := bucket.Walk(ctx, bucket.NewLoaderSize(r.store, 64<<20), roots,
		func(n int64) {
			if n%1000 == 0 {
				r.opts.Progress("reading trees", n)
			}
		})
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	if len(reach.Blind) > 0 {
		return fmt.Errorf("gc deletes nothing: %w (%d objects; run cloudfs fsck): %w", ErrBlind, len(reach.Blind), reach.Blind[0])
	}
	for id := range reach.Trees {
		r.reached[bucket.Ref{Kind: bucket.RefTree, ID: id}] = true
	}
	for id := range reach.Chunks {
		r.reached[bucket.Ref{Kind: bucket.RefChunk, ID: id}] = true
	}
	for id := range reach.Packs {
		r.reached[bucket.Ref{Kind: bucket.RefPack, ID: id}] = true
	}
	return nil
}

// sweep deletes the objects of the due marks that are still unreachable,
// and the marks it finished. It returns the objects of the marks not
// swept, which a new mark leaves out.
func (r *run) sweep(ctx context.Context) (map[bucket.Ref]bool, error) {
	keys, bad, err := bucket.ListMarks(ctx, r.store)
	if err != nil {
		return nil, err
	}
	r.rep.BadMarks = append(r.rep.BadMarks, bad...)
	pending := map[bucket.Ref]bool{}
	var doomed []string // keys to delete
	dooming := map[bucket.Ref]bool{}
	var done []string // marks to remove once their objects are deleted
	budget := r.opts.MaxDelete
	for _, key := range keys {
		m, err := bucket.ReadMark(ctx, r.store, key)
		switch {
		case errors.Is(err, chunkstore.ErrNotFound):
			continue // swept by another run meanwhile
		case errors.Is(err, bucket.ErrBadMark) || errors.Is(err, chunkstore.ErrTooLarge):
			r.rep.BadMarks = append(r.rep.BadMarks, key)
			continue
		case err != nil:
			return nil, err
		}
		if r.now.Before(m.SweepAfter()) {
			for _, o := range m.Objects {
				if info, ok := r.listed[o]; ok && !pending[o] && !r.reached[o] {
					pending[o] = true
					r.rep.Pending.add(info)
				}
			}
			r.noteSweep(m.SweepAfter())
			continue
		}
		left := false
		for _, o := range m.Objects {
			info, ok := r.listed[o]
			switch {
			case !ok || pending[o] || dooming[o]:
				continue // gone, or another mark's
			case r.reached[o] || info.ModTime.After(m.Time):
				r.rep.Rescued.add(info)
				continue
			case r.opts.MaxDelete > 0 && budget == 0:
				r.rep.Left.add(info)
				pending[o] = true
				left = true
				continue
			}
			budget--
			doomed = append(doomed, o.Key())
			dooming[o] = true
			r.rep.Freed.add(info)
		}
		if !left {
			done = append(done, key)
		} else {
			r.noteSweep(m.SweepAfter())
		}
	}
	r.freed = dooming
	if r.opts.DryRun {
		return pending, nil
	}
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, k := range doomed {
		g.Go(func() error {
			if err := r.store.Delete(gctx, k); err != nil {
				return fmt.Errorf("gc: %w", err)
			}
			if c := n.Add(1); c%100 == 0 {
				r.opts.Progress("deleting", c)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, key := range done {
		if err := bucket.DeleteMark(ctx, r.store, key); err != nil {
			return nil, err
		}
		r.rep.MarksSwept++
	}
	return pending, nil
}

func (r *run) noteSweep(t time.Time) {
	if r.rep.NextSweep.IsZero() || t.Before(r.rep.NextSweep) {
		r.rep.NextSweep = t
	}
}

// markNew marks the objects unreachable and older than the grace period
// that no pending mark names.
func (r *run) markNew(ctx context.Context, pending map[bucket.Ref]bool) error {
	var refs []bucket.Ref
	for ref, info := range r.listed {
		if r.reached[ref] || pending[ref] || r.freed[ref] || r.young(info) {
			continue
		}
		refs = append(refs, ref)
		r.rep.Marked.add(info)
	}
	if len(refs) == 0 {
		return nil
	}
	r.noteSweep(r.now.Add(r.opts.Grace))
	if r.opts.DryRun {
		return nil
	}
	slices.SortFunc(refs, func(a, b bucket.Ref) int { return compareRef(a, b) })
	for len(refs) > 0 {
		n := min(len(refs), bucket.MaxMarkObjects)
		if _, err := bucket.PutMark(ctx, r.store, r.now, r.opts.Grace, r.opts.Host, refs[:n]); err != nil {
			return fmt.Errorf("gc: %w", err)
		}
		refs = refs[n:]
	}
	return nil
}

func compareRef(a, b bucket.Ref) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	for i := range a.ID {
		if a.ID[i] != b.ID[i] {
			return int(a.ID[i]) - int(b.ID[i])
		}
	}
	return 0
}
