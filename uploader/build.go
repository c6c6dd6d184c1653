package uploader

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// snapshotTries bounds how often a file that changes while it is read is
// read again before the round takes what it read (the file stays queued).
const snapshotTries = 3

// resolveFiles finds the chunk list of every file in the snapshot: the
// extents as they are where possible, otherwise by (re)chunking, in
// parallel, adding each chunk cut to ups. It also collects the chunks the
// new entries reference.
func (a *attempt) resolveFiles(ctx context.Context, ups *cache.Uploads) error {
	u := a.u
	changed := map[uint64]bool{}
	for _, it := range a.snap.Items {
		changed[it.Ino] = true
	}
	a.check = map[chunkstore.ID]bool{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, min(u.opts.Concurrency, runtime.GOMAXPROCS(0))))
	for ino, f := range a.snap.Files {
		if refs, ok := directRefs(f); ok {
			mu.Lock()
			a.refs[ino] = refs
			if changed[ino] {
				for _, r := range refs {
					a.check[r.ID] = true
				}
			}
			mu.Unlock()
			continue
		}
		if u.db.Unpersisted(ino) {
			// Still being written behind the index's back (a
			// passthrough session): its bytes are read once the writer
			// commits for the last time. Like a failed file it keeps
			// its last committed entry and stays queued, but with no
			// error and no backoff.
			a.busy[ino] = true
			continue
		}
		g.Go(func() error {
			refs, cur, err := u.chunkFile(gctx, f, ups)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !permanentFileError(err) {
					return err
				}
				a.failed[ino] = err
				return nil
			}
			a.refs[ino] = refs
			a.res.Chunked++
			exts := make([]index.Extent, len(refs))
			for i, r := range refs {
				exts[i] = index.Extent{Off: r.Offset, Len: r.Length, Chunk: r.ID}
				a.check[r.ID] = true
			}
			a.content = append(a.content, index.FileContent{Ino: ino, Version: cur.Version, Extents: exts})
			return nil
		})
	}
	return g.Wait()
}

// errUploadStopped stops cutting a file once an upload of the round
// failed: the round fails with that upload's error (Uploads.Wait).
var errUploadStopped = errors.New("chunk upload failed")

// permanentFileError reports whether err, from reading one file, fails that
// file alone rather than the round: its staged bytes vanished, or a chunk
// it names is missing or corrupt everywhere.
func permanentFileError(err error) bool {
	return errors.Is(err, errVanished) || errors.Is(err, chunkstore.ErrNotFound) || errors.Is(err, chunkstore.ErrCorrupt)
}

// chunkFile cuts file f into chunks (re-cutting only around what changed
// since its extents were uploaded), stores the new ones that are not
// wholly staged in the cache as dirty, adds them all to ups, and checks the
// bytes read were f's version; a file that changed meanwhile is read again
// from a new snapshot. It returns the chunk list and the snapshot it
// belongs to.
func (u *Uploader) chunkFile(ctx context.Context, f *index.SnapFile, ups *cache.Uploads) ([]chunkstore.Ref, *index.SnapFile, error) {
	for try := 1; ; try++ {
		r, err := openFileReader(ctx, u.opts.StagingDir, f, u.cache.Get)
		if err != nil {
			return nil, f, err
		}
		old, edits := rechunkPlan(f)
		refs, st, err := chunkstore.Rechunk(r, f.Size, old, edits, u.vol.Chunker, func(c chunkstore.Chunk) error {
			n := int64(len(c.Data))
			u.cutBytes.Add(n)
			if !f.Staging.Ranges.Contains(c.Offset, n) {
				// A chunk wholly in the staging file stays readable
				// from it (clean once uploaded) until the trimmer hands
				// it to the cache; one cut around an edit also holds
				// bytes of the chunks it replaces, which only the cache
				// keeps locally.
				if err := u.cache.PutDirty(c.ID, c.Data); err != nil {
					return err
				}
				// It keeps some bytes of the chunk it replaced: stored
				// as a delta of it (one written over entirely is not).
				if base, ok := replacedChunk(f.Extents, c.Offset, n); ok {
					u.cache.SetBase(c.ID, base)
				}
			}
			// The chunker reuses c.Data: the upload gets a copy, with
			// room for the stored form's header byte in front.
			buf := make([]byte, 1+n)
			copy(buf[1:], c.Data)
			if ups.AddFrom(c.ID, buf) != nil {
				return errUploadStopped
			}
			return nil
		})
		if cerr := r.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, f, fmt.Errorf("chunk file %d: %w", f.Ino, err)
		}
		u.log.Debug("chunked file", zap.Uint64("ino", f.Ino), zap.Int64("size", f.Size),
			zap.Int("cut", st.Chunks), zap.Int64("cut_bytes", st.Bytes), zap.Int("reused", st.Reused))
		ok, err := u.db.ContentCurrent(ctx, f.Ino, f.Version)
		if err != nil {
			return nil, f, err
		}
		if ok || try == snapshotTries {
			return refs, f, nil
		}
		nf, err := u.db.FileSnapshot(ctx, f.Ino)
		if errors.Is(err, index.ErrNotFound) {
			return refs, f, nil // deleted meanwhile; stays as read
		}
		if err != nil {
			return nil, f, err
		}
		f = nf
	}
}

// built is the output of build: the root tree, each rebuilt directory's
// tree (id and totals), and the objects to write (manifests, and trees by
// depth).
type built struct {
	root      index.DirTree
	dirs      map[uint64]index.DirTree
	manifests []tree.Object
	levels    [][]tree.Object
	// links are the entries of hard-linked inodes written, by inode: the
	// index records their link ids with the content committed; unlinked
	// are inodes with a link id written without one (no longer linked).
	links    map[uint64]tree.Entry
	unlinked []uint64
}

func (a *attempt) build(ctx context.Context) (*built, error) {
	b := &built{dirs: map[uint64]index.DirTree{}, links: map[uint64]tree.Entry{}}
	a.known, a.packed = map[chunkstore.ID]chunkstore.Loc{}, map[chunkstore.ID]index.Packed{}
	for _, f := range a.snap.Files {
		for _, e := range f.Extents {
			a.known[e.Chunk] = e.Loc // a zero Loc: no location
		}
	}
	seen := map[chunkstore.ID]bool{}
	if _, err := a.buildDir(ctx, a.snap.Root, 0, b, seen); err != nil {
		return nil, err
	}
	b.root = b.dirs[a.snap.Root.Ino]
	return b, nil
}

// buildDir builds the tree of the rebuilt directory d, below the trees of
// its rebuilt subdirectories, records it in b.dirs with its totals (the
// sum of its entries': a kept subdirectory's totals are the ones recorded
// with its tree id, so they cost what the rebuilt directories cost) and
// returns its id.
func (a *attempt) buildDir(ctx context.Context, d *index.SnapDir, depth int, b *built, seen map[chunkstore.ID]bool) (chunkstore.ID, error) {
	td := tree.NewDir()
	var old *tree.Tree // d's last committed tree, read only for failed files
	for _, e := range d.Entries {
		ent := e.Entry
		var err error
		switch {
		case e.Dir != nil:
			if ent.Subtree, err = a.buildDir(ctx, e.Dir, depth+1, b, seen); err != nil {
				return ent.Subtree, err
			}
			ent.Totals = b.dirs[e.Dir.Ino].Totals
			err = td.Set(ent)
		case ent.Type == tree.TypeFile && (a.failed[e.Ino] != nil || a.busy[e.Ino]):
			if old, err = a.oldTree(ctx, d.Ino, old); err != nil {
				return chunkstore.ID{}, err
			}
			if prev := old.Find(ent.Name); prev != nil && prev.Type == tree.TypeFile {
				err = td.Set(*prev) // keep what was committed; the file stays queued
			}
		case ent.Type == tree.TypeFile:
			a.setLink(&ent, &e)
			refs := a.refs[e.Ino]
			crefs := make([]tree.ChunkRef, len(refs))
			ent.Locs = nil
			for i, r := range refs {
				crefs[i] = tree.ChunkRef{ID: r.ID, Length: uint32(r.Length)}
				l, ok, lerr := a.locOf(ctx, r)
				if lerr != nil {
					return chunkstore.ID{}, lerr
				}
				if ok {
					ent.Locs = append(ent.Locs, tree.Loc{Ref: uint32(i), Pack: l.Pack, Off: uint64(l.Off), Len: uint32(l.Len)})
				}
			}
			err = td.SetFile(ent, crefs)
		default:
			if ent.Type != tree.TypeDir {
				a.setLink(&ent, &e)
			}
			err = td.Set(ent)
		}
		if err != nil {
			return chunkstore.ID{}, fmt.Errorf("directory %d: %w", d.Ino, err)
		}
		switch {
		case ent.LinkID != 0 && ent.Type != tree.TypeDir:
			if written, _, ok := td.Lookup(ent.Name); ok && written.LinkID == ent.LinkID {
				b.links[e.Ino] = written
			}
		case e.LinkID != 0 && e.Nlink < 2 && ent.Type != tree.TypeDir && a.failed[e.Ino] == nil && !a.busy[e.Ino]:
			b.unlinked = append(b.unlinked, e.Ino)
		}
	}
	id, objs, err := tree.Build(td)
	if err != nil {
		return id, fmt.Errorf("directory %d: %w", d.Ino, err)
	}
	for _, o := range objs {
		if seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		if o.Kind == tree.KindManifest {
			b.manifests = append(b.manifests, o)
			continue
		}
		for len(b.levels) <= depth {
			b.levels = append(b.levels, nil)
		}
		b.levels[depth] = append(b.levels[depth], o)
	}
	b.dirs[d.Ino] = index.DirTree{ID: id, Totals: td.Totals()}
	return id, nil
}

// locOf returns where chunk r is in a pack (loc), and records a location
// this round found for the index to keep with the commit.
func (a *attempt) locOf(ctx context.Context, r chunkstore.Ref) (chunkstore.Loc, bool, error) {
	if l, ok := a.located[r.ID]; ok {
		a.packed[r.ID] = index.Packed{ID: r.ID, Len: r.Length, Loc: l}
		return l, true, nil
	}
	return a.loc(ctx, r.ID, r.Length)
}

// loc returns where chunk id, of length n (0: unknown), is in a pack:
// where this round put or found it, or where the index placed it (when
// the snapshot was taken, or now: a file read again from a newer snapshot
// may reuse chunks the first one did not name).
func (a *attempt) loc(ctx context.Context, id chunkstore.ID, n int64) (chunkstore.Loc, bool, error) {
	if l, ok := a.located[id]; ok {
		return l, true, nil
	}
	if l, ok := a.known[id]; ok || n > chunkstore.PackChunkMax {
		return l, !l.Pack.IsZero(), nil
	}
	l, ok, err := a.u.db.ChunkLoc(ctx, id)
	if err == nil {
		a.known[id] = l // zero when there is none
	}
	return l, ok, err
}

// oldTree returns directory dir's last committed tree (empty if none),
// loading it on first use.
func (a *attempt) oldTree(ctx context.Context, dir uint64, have *tree.Tree) (*tree.Tree, error) {
	if have != nil {
		return have, nil
	}
	id, err := a.u.db.TreeID(ctx, dir)
	if err != nil || id.IsZero() {
		return &tree.Tree{}, err
	}
	return a.u.load.Tree(ctx, id)
}

// setLink sets the hard link of ent, the entry of e, a non-directory: an
// inode with several names gets its link count and a link id, the one it
// was loaded with from the remote tree if any (so its names committed
// earlier, or by another device, and the ones written now stay one
// inode), else one made from this device and the inode number.
func (a *attempt) setLink(ent *tree.Entry, e *index.SnapEntry) {
	if e.Nlink < 2 {
		return
	}
	ent.Nlink, ent.LinkID = e.Nlink, e.LinkID
	if ent.LinkID == 0 {
		ent.LinkID = a.linkID(e.Ino)
	}
}

// linkID is the hard-link hint of inode ino: the first 8 bytes of the hash
// of the device name and the inode number (never 0).
func (a *attempt) linkID(ino uint64) uint64 {
	h := chunkstore.Hash([]byte(a.u.opts.Device + "/" + strconv.FormatUint(ino, 10)))
	return max(binary.LittleEndian.Uint64(h[:8]), 1)
}

// putObjects writes the manifests, then the trees deepest first, each
// group in parallel: a stored tree never names a missing object.
func (a *attempt) putObjects(ctx context.Context, b *built) error {
	groups := [][]tree.Object{b.manifests}
	for _, l := range slices.Backward(b.levels) {
		groups = append(groups, l)
	}
	for _, objs := range groups {
		for _, o := range objs {
			a.written = append(a.written, bucket.ObjectKey(o))
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(a.u.smallCalls())
		for _, o := range objs {
			g.Go(func() error { return bucket.PutObject(gctx, a.u.store, o) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		a.res.Objects += len(objs)
	}
	return nil
}

// errMissingChunk is returned (wrapped) when a chunk a new entry names is
// not in the store.
var errMissingChunk = errors.New("chunk missing from the store")

// checkChunks checks with Stat, in parallel, that the store holds every
// chunk the new entries reference, but for those this round put itself:
// their puts succeeded moments ago and gave them a fresh modification
// time, which garbage collection's grace period protects. A chunk the
// round found already present is checked again, as it may be an old
// orphan that a collection is deleting. A packed chunk is checked by its
// pack, each pack once.
func (a *attempt) checkChunks(ctx context.Context) error {
	keys := map[string]chunkstore.ID{} // key -> a chunk it holds
	for id := range a.check {
		if a.sent[id] {
			continue
		}
		key, err := a.chunkObject(ctx, id)
		if err != nil {
			return err
		}
		keys[key] = id // a pack once for all its chunks
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.u.smallCalls())
	for key, id := range keys {
		g.Go(func() error { return a.checkObject(gctx, id, key) })
	}
	return g.Wait()
}

// chunkObject returns the key of the object that holds chunk id: its pack,
// or a chunk object of its own.
func (a *attempt) chunkObject(ctx context.Context, id chunkstore.ID) (string, error) {
	l, ok, err := a.loc(ctx, id, 0)
	switch {
	case err != nil:
		return "", err
	case ok:
		return chunkstore.PackKey(l.Pack), nil
	}
	return chunkstore.ChunkKey(id), nil
}

// checkObject checks that the store holds key, which holds chunk id.
func (a *attempt) checkObject(ctx context.Context, id chunkstore.ID, key string) error {
	_, err := a.u.store.Stat(ctx, key)
	if errors.Is(err, chunkstore.ErrNotFound) {
		return fmt.Errorf("check chunk %s (%s): %w", id, key, errMissingChunk)
	}
	if err != nil {
		return fmt.Errorf("check chunk %s (%s): %w", id, key, err)
	}
	return nil
}
