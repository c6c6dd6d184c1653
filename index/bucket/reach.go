package bucket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// ErrUnreachable is returned (wrapped, joined per problem) by
// CheckReachable when an object reachable from head is missing or corrupt.
var ErrUnreachable = errors.New("object reachable from head is missing or corrupt")

// Reach is what a walk of some commits' trees found: every tree and
// manifest (Trees), chunk object (Chunks: a chunk of its own, or the base
// of a delta one) and pack (Packs), each with a path that names it for
// messages ("commit <id>:/dir/file").
type Reach struct {
	Trees  map[chunkstore.ID]string
	Chunks map[chunkstore.ID]string
	Packs  map[chunkstore.ID]string
	// Blind are the trees and manifests that could not be read (missing or
	// corrupt): what they name is unknown. Missing are the chunk objects
	// and packs named that the store does not hold, or that are corrupt
	// (a pack shorter than a location in it, an empty chunk).
	Blind, Missing []error
}

// CheckOptions tune Check.
type CheckOptions struct {
	// ReadData reads every chunk reached (whole chunk objects, whole
	// packs) and checks its bytes against its id, rather than only that
	// it exists.
	ReadData bool
	// Progress, when set, is called as objects are checked with the
	// count so far (from several goroutines at once).
	Progress func(checked int64)
}

// CheckReport is what Check found.
type CheckReport struct {
	Commits  int // commits walked: head and its ancestors still in the store
	Reach    *Reach
	Problems []error // each wraps ErrUnreachable
	// HistoryEnd is set when an ancestor of head is no longer in the store
	// (garbage collection keeps only part of the history): the generation
	// of the oldest commit walked.
	HistoryEnd uint64
}

// CheckReachable is Check without reading data: nil, or the problems
// found joined (each wrapping ErrUnreachable), or the first store error
// that is not a missing object. Tests run it after every commit.
func CheckReachable(ctx context.Context, s chunkstore.Store) error {
	rep, err := Check(ctx, s, CheckOptions{})
	if err != nil {
		return err
	}
	return errors.Join(rep.Problems...)
}

// Check walks everything reachable from head: every commit through its
// parents (an ancestor that garbage collection removed ends the history
// there and is no problem; a corrupt one is), every tree and manifest
// (read and verified against its id), and checks that every chunk they
// name exists (a packed one: inside its pack), and the base of every
// chunk stored as a delta; with ReadData, that each chunk's bytes match
// its id. A store without head passes.
func Check(ctx context.Context, s chunkstore.Store, opts CheckOptions) (*CheckReport, error) {
	rep := &CheckReport{}
	head, _, ok, err := ReadHead(ctx, s)
	if err != nil || !ok {
		return rep, err
	}
	w := newWalker(s, NewLoader(s))
	w.progress = opts.Progress
	commits := []chunkstore.ID{head}
	oldest, ended := uint64(0), false
	for len(commits) > 0 {
		id := commits[0]
		commits = commits[1:]
		if w.seen[id] {
			continue
		}
		w.seen[id] = true
		c, err := ReadCommit(ctx, s, id)
		if err != nil {
			if id != head && errors.Is(err, chunkstore.ErrNotFound) {
				ended = true
				continue
			}
			if w.blind(err, "commit %s", id) {
				continue
			}
			return rep, err
		}
		rep.Commits++
		if oldest == 0 || c.Generation < oldest {
			oldest = c.Generation
		}
		commits = append(commits, c.Parents...)
		if err := w.tree(ctx, c.Root, "commit "+id.String()+":/"); err != nil {
			return rep, err
		}
	}
	if ended {
		rep.HistoryEnd = oldest
	}
	if err := w.finish(ctx, opts.ReadData); err != nil {
		return rep, err
	}
	rep.Reach = w.reach()
	rep.Problems = append(append([]error(nil), rep.Reach.Blind...), rep.Reach.Missing...)
	return rep, nil
}

// Root is a tree to walk and the name it has in messages.
type Root struct {
	ID   chunkstore.ID
	Name string // e.g. "commit <id>:/"
}

// Walk reaches everything below roots through load: every tree and
// manifest, every chunk named and the base of every delta among them (a
// ranged read of each chunk object's header), and every pack. It stops
// only at a store error that is not a missing or corrupt object; those are
// in the Reach's Blind and Missing. progress, when set, counts objects.
func Walk(ctx context.Context, load *Loader, roots []Root, progress func(int64)) (*Reach, error) {
	w := newWalker(load.Store(), load)
	w.progress = progress
	for _, r := range roots {
		if err := w.tree(ctx, r.ID, r.Name); err != nil {
			return nil, err
		}
	}
	if err := w.finish(ctx, false); err != nil {
		return nil, err
	}
	return w.reach(), nil
}

// walkConcurrency bounds the parallel chunk checks of a walk.
const walkConcurrency = 16

type walker struct {
	store    chunkstore.Store
	load     *Loader
	seen     map[chunkstore.ID]bool     // trees, manifests and commits visited
	trees    map[chunkstore.ID]string   // trees and manifests read
	chunks   map[chunkstore.ID]string   // chunks that are objects of their own
	packed   map[chunkstore.ID]packedAt // packed chunks
	progress func(int64)
	count    atomic.Int64

	mu            sync.Mutex // guards the problems during the parallel checks
	blinds, misss []error
}

func newWalker(s chunkstore.Store, load *Loader) *walker {
	return &walker{store: s, load: load, seen: map[chunkstore.ID]bool{}, trees: map[chunkstore.ID]string{},
		chunks: map[chunkstore.ID]string{}, packed: map[chunkstore.ID]packedAt{}}
}

func (w *walker) tick() {
	if n := w.count.Add(1); w.progress != nil {
		w.progress(n)
	}
}

func (w *walker) reach() *Reach {
	r := &Reach{Trees: w.trees, Chunks: w.chunks, Packs: map[chunkstore.ID]string{}, Blind: w.blinds, Missing: w.misss}
	for _, p := range w.packed {
		if _, ok := r.Packs[p.loc.Pack]; !ok {
			r.Packs[p.loc.Pack] = p.path
		}
	}
	return r
}

// problem records err as a problem, in blind (what the object names is
// unknown) or missing, if it is a missing or corrupt object.
func (w *walker) problem(blind bool, err error, format string, args ...any) bool {
	if !errors.Is(err, chunkstore.ErrNotFound) && !errors.Is(err, chunkstore.ErrCorrupt) && !errors.Is(err, tree.ErrCorrupt) {
		return false
	}
	err = fmt.Errorf("%s: %w: %w", fmt.Sprintf(format, args...), ErrUnreachable, err)
	w.mu.Lock()
	if blind {
		w.blinds = append(w.blinds, err)
	} else {
		w.misss = append(w.misss, err)
	}
	w.mu.Unlock()
	return true
}

func (w *walker) blind(err error, format string, args ...any) bool {
	return w.problem(true, err, format, args...)
}

func (w *walker) missing(err error, format string, args ...any) bool {
	return w.problem(false, err, format, args...)
}

func (w *walker) tree(ctx context.Context, id chunkstore.ID, path string) error {
	if w.seen[id] {
		return nil
	}
	w.seen[id] = true
	w.trees[id] = path
	w.tick()
	t, err := w.load.Tree(ctx, id)
	if err != nil {
		if w.blind(err, "tree %s (%s)", id, path) {
			return nil
		}
		return err
	}
	for _, e := range t.Entries {
		switch {
		case e.Type == tree.TypeDir:
			if err := w.tree(ctx, e.Subtree, path+e.Name+"/"); err != nil {
				return err
			}
		case !e.Manifest.IsZero():
			if w.seen[e.Manifest] {
				continue
			}
			w.seen[e.Manifest] = true
			w.trees[e.Manifest] = path + e.Name
			w.tick()
			m, err := w.load.Manifest(ctx, e.Manifest)
			if err != nil {
				if w.blind(err, "manifest %s (%s%s)", e.Manifest, path, e.Name) {
					continue
				}
				return err
			}
			if m.Size() != e.Size {
				w.missing(fmt.Errorf("%w: holds %d bytes, entry says %d", tree.ErrCorrupt, m.Size(), e.Size),
					"manifest %s (%s%s)", e.Manifest, path, e.Name)
			}
			if err := tree.CheckLocs(e.Locs, m.Chunks); err != nil {
				w.missing(err, "locations of %s%s", path, e.Name)
				continue
			}
			w.addChunks(&e, m.Chunks, path)
		default:
			w.addChunks(&e, e.Chunks, path)
		}
	}
	return nil
}

// packedAt is a packed chunk's location and a path that names it.
type packedAt struct {
	loc  chunkstore.Loc
	path string
}

// addChunks records the chunks refs of file entry e, at their locations.
func (w *walker) addChunks(e *tree.Entry, refs []tree.ChunkRef, path string) {
	locs := e.Locs
	for i, c := range refs {
		if len(locs) > 0 && int(locs[0].Ref) == i {
			if _, ok := w.packed[c.ID]; !ok {
				w.packed[c.ID] = packedAt{loc: locs[0].ChunkLoc(), path: path + e.Name}
			}
			locs = locs[1:]
			continue
		}
		if _, ok := w.chunks[c.ID]; !ok {
			w.chunks[c.ID] = path + e.Name
		}
	}
}

// finish checks the chunks and packs found, and adds the delta bases.
func (w *walker) finish(ctx context.Context, readData bool) error {
	if err := w.statChunks(ctx, readData); err != nil {
		return err
	}
	return w.statPacks(ctx, readData)
}

// statPacks checks that every pack named exists and holds the bytes of
// each location in it; with readData, that each location holds its
// chunk.
func (w *walker) statPacks(ctx context.Context, readData bool) error {
	byPack := map[chunkstore.ID][]chunkstore.ID{}
	for id, p := range w.packed {
		byPack[p.loc.Pack] = append(byPack[p.loc.Pack], id)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(walkConcurrency)
	for pack, ids := range byPack {
		g.Go(func() error {
			defer w.tick()
			key := chunkstore.PackKey(pack)
			var size int64
			var data []byte
			var err error
			if readData {
				data, _, err = w.store.Get(gctx, key)
				size = int64(len(data))
			} else {
				var info chunkstore.Info
				info, err = w.store.Stat(gctx, key)
				size = info.Size
			}
			if err != nil {
				if !w.missing(err, "pack %s (%s)", pack, w.packed[ids[0]].path) {
					return err
				}
				return nil
			}
			for _, id := range ids {
				p := w.packed[id]
				if p.loc.Off+p.loc.Len > size {
					w.missing(fmt.Errorf("%w: pack of %d bytes", chunkstore.ErrCorrupt, size),
						"chunk %s at %d+%d in pack %s (%s)", id, p.loc.Off, p.loc.Len, pack, p.path)
					continue
				}
				if readData {
					if _, err := chunkstore.DecodeLimit(data[p.loc.Off:p.loc.Off+p.loc.Len], id, chunkstore.PackChunkMax); err != nil {
						w.missing(err, "chunk %s at %d+%d in pack %s (%s)", id, p.loc.Off, p.loc.Len, pack, p.path)
					}
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// statChunks checks that every chunk found exists, and that the base of
// every chunk stored as a delta does too (adding it to the chunks): it
// reads each chunk's header (a ranged GET of 33 bytes) rather than its
// metadata. With readData it reads each chunk whole and checks its bytes
// (a delta's decoded against its base).
func (w *walker) statChunks(ctx context.Context, readData bool) error {
	todo := make(map[chunkstore.ID]string, len(w.chunks))
	for id, p := range w.chunks {
		todo[id] = p
	}
	var deltas []chunkstore.ID
	for len(todo) > 0 {
		var bmu sync.Mutex
		bases := map[chunkstore.ID]string{} // bases not yet known -> a path
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(walkConcurrency)
		for id, path := range todo {
			g.Go(func() error {
				defer w.tick()
				key := chunkstore.ChunkKey(id)
				var head []byte
				var err error
				if readData {
					head, _, err = w.store.Get(gctx, key)
				} else {
					head, err = chunkstore.GetRange(gctx, w.store, key, 0, 1+chunkstore.IDSize)
				}
				if err == nil && len(head) == 0 {
					err = fmt.Errorf("chunk %s is empty: %w", id, chunkstore.ErrCorrupt)
				}
				if err != nil {
					if !w.missing(err, "chunk %s (%s)", id, path) {
						return err
					}
					return nil
				}
				base, isDelta := chunkstore.IsDelta(head)
				if !isDelta {
					if readData {
						if _, err := chunkstore.Decode(head, id); err != nil {
							w.missing(err, "chunk %s (%s)", id, path)
						}
					}
					return nil
				}
				bmu.Lock()
				defer bmu.Unlock()
				deltas = append(deltas, id)
				if _, known := w.chunks[base]; !known {
					bases[base] = "the base of delta " + id.String() + " (" + path + ")"
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for id, p := range bases {
			w.chunks[id] = p
		}
		todo = bases
	}
	if !readData {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(walkConcurrency)
	for _, id := range deltas {
		g.Go(func() error {
			_, err := w.readChunk(gctx, id, 0)
			if err != nil && !w.missing(err, "chunk %s (%s)", id, w.chunks[id]) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// maxDeltaDepth bounds the chain of bases readChunk follows.
const maxDeltaDepth = 4

// readChunk reads chunk id and decodes it (a delta: against its base,
// read the same way), verified against its id.
func (w *walker) readChunk(ctx context.Context, id chunkstore.ID, depth int) ([]byte, error) {
	stored, _, err := w.store.Get(ctx, chunkstore.ChunkKey(id))
	if err != nil {
		return nil, err
	}
	base, ok := chunkstore.IsDelta(stored)
	if !ok {
		return chunkstore.Decode(stored, id)
	}
	if depth >= maxDeltaDepth {
		return nil, fmt.Errorf("chunk %s: a chain of more than %d deltas: %w", id, maxDeltaDepth, chunkstore.ErrCorrupt)
	}
	b, err := w.readChunk(ctx, base, depth+1)
	if err != nil {
		return nil, fmt.Errorf("base %s: %w", base, err)
	}
	return chunkstore.DecodeDelta(stored, id, b)
}
