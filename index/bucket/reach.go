package bucket

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// ErrUnreachable is returned (wrapped, joined per problem) by
// CheckReachable when an object reachable from head is missing or corrupt.
var ErrUnreachable = errors.New("object reachable from head is missing or corrupt")

// CheckReachable walks everything reachable from head: every commit
// through its parents, every tree and manifest (read and verified against
// its id), and checks that every chunk they name exists (a packed one:
// inside its pack), and the base of every chunk stored as a delta. A store
// without head passes. It returns nil, or the problems found (each
// wrapping ErrUnreachable), or the first store error that is not a missing
// object. Tests run it after every commit; it reads the whole history.
func CheckReachable(ctx context.Context, s chunkstore.Store) error {
	head, _, ok, err := ReadHead(ctx, s)
	if err != nil || !ok {
		return err
	}
	w := &walker{store: s, load: NewLoader(s), seen: map[chunkstore.ID]bool{}, chunks: map[chunkstore.ID]bool{},
		packed: map[chunkstore.ID]packedAt{}}
	commits := []chunkstore.ID{head}
	for len(commits) > 0 {
		id := commits[0]
		commits = commits[1:]
		if w.seen[id] {
			continue
		}
		w.seen[id] = true
		c, err := ReadCommit(ctx, s, id)
		if err != nil {
			if w.missing(err, "commit %s", id) {
				continue
			}
			return err
		}
		commits = append(commits, c.Parents...)
		if err := w.tree(ctx, c.Root, "commit "+id.String()+":/"); err != nil {
			return err
		}
	}
	if err := w.statChunks(ctx); err != nil {
		return err
	}
	if err := w.statPacks(ctx); err != nil {
		return err
	}
	return errors.Join(w.problems...)
}

// walkConcurrency bounds the parallel chunk checks of CheckReachable.
const walkConcurrency = 8

type walker struct {
	store  chunkstore.Store
	load   *Loader
	seen   map[chunkstore.ID]bool     // trees, manifests and commits visited
	chunks map[chunkstore.ID]bool     // chunks that are objects of their own
	packed map[chunkstore.ID]packedAt // packed chunks
	mu     sync.Mutex                 // guards problems during statChunks

	problems []error
}

// missing records err as a problem if it is a missing or corrupt object.
func (w *walker) missing(err error, format string, args ...any) bool {
	if !errors.Is(err, chunkstore.ErrNotFound) && !errors.Is(err, chunkstore.ErrCorrupt) && !errors.Is(err, tree.ErrCorrupt) {
		return false
	}
	w.mu.Lock()
	w.problems = append(w.problems, fmt.Errorf("%s: %w: %w", fmt.Sprintf(format, args...), ErrUnreachable, err))
	w.mu.Unlock()
	return true
}

func (w *walker) tree(ctx context.Context, id chunkstore.ID, path string) error {
	if w.seen[id] {
		return nil
	}
	w.seen[id] = true
	t, err := w.load.Tree(ctx, id)
	if err != nil {
		if w.missing(err, "tree %s (%s)", id, path) {
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
			m, err := w.load.Manifest(ctx, e.Manifest)
			if err != nil {
				if w.missing(err, "manifest %s (%s%s)", e.Manifest, path, e.Name) {
					continue
				}
				return err
			}
			if m.Size() != e.Size {
				w.problems = append(w.problems, fmt.Errorf("manifest %s (%s%s) holds %d bytes, entry says %d: %w",
					e.Manifest, path, e.Name, m.Size(), e.Size, ErrUnreachable))
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
			w.packed[c.ID] = packedAt{loc: locs[0].ChunkLoc(), path: path + e.Name}
			locs = locs[1:]
			continue
		}
		w.chunks[c.ID] = true
	}
}

// statPacks checks that every pack named exists and holds the bytes of
// each location in it.
func (w *walker) statPacks(ctx context.Context) error {
	byPack := map[chunkstore.ID][]chunkstore.ID{}
	for id, p := range w.packed {
		byPack[p.loc.Pack] = append(byPack[p.loc.Pack], id)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(walkConcurrency)
	for pack, ids := range byPack {
		g.Go(func() error {
			info, err := w.store.Stat(gctx, chunkstore.PackKey(pack))
			if err != nil {
				if !w.missing(err, "pack %s (%s)", pack, w.packed[ids[0]].path) {
					return err
				}
				return nil
			}
			for _, id := range ids {
				if p := w.packed[id]; p.loc.Off+p.loc.Len > info.Size {
					w.missing(fmt.Errorf("%w: pack of %d bytes", chunkstore.ErrCorrupt, info.Size),
						"chunk %s at %d+%d in pack %s (%s)", id, p.loc.Off, p.loc.Len, pack, p.path)
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// statChunks checks that every chunk found exists, and that the base of
// every chunk stored as a delta does too: it reads each chunk's header (a
// ranged GET of 33 bytes) rather than its metadata.
func (w *walker) statChunks(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(walkConcurrency)
	var bmu sync.Mutex
	bases := map[chunkstore.ID]chunkstore.ID{} // base -> a delta of it
	for id := range w.chunks {
		g.Go(func() error {
			head, err := chunkstore.GetRange(gctx, w.store, chunkstore.ChunkKey(id), 0, 1+chunkstore.IDSize)
			if err == nil && len(head) == 0 {
				err = fmt.Errorf("chunk %s is empty: %w", id, chunkstore.ErrCorrupt)
			}
			if err != nil {
				if !w.missing(err, "chunk %s", id) {
					return err
				}
				return nil
			}
			if base, ok := chunkstore.IsDelta(head); ok && !w.chunks[base] {
				bmu.Lock()
				bases[base] = id
				bmu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(walkConcurrency)
	for base, delta := range bases {
		g.Go(func() error {
			_, err := w.store.Stat(gctx, chunkstore.ChunkKey(base))
			if err != nil && !w.missing(err, "chunk %s, the base of delta %s", base, delta) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}
