package index

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// pullTime is the time of the harness's pulls (conflict-copy names).
var pullTime = time.Date(2026, 12, 1, 18, 45, 1, 0, time.UTC)

const pullStamp = "2026-12-01 184501"

// pullHarness is one machine's index and the remote's objects, in memory:
// base builds the remote's first commit and loads it, the test changes the
// index locally, and pull applies a second remote commit.
type pullHarness struct {
	t      *testing.T
	ctx    context.Context
	db     *DB
	l      *memLoader
	base   chunkstore.ID
	head   *tree.Commit
	staged map[uint64]string // content staged locally, by inode
	gen    int
}

func newPullHarness(t *testing.T) *pullHarness {
	db, _ := openTest(t)
	return &pullHarness{t: t, ctx: context.Background(), db: db, l: newMemLoader(), staged: map[uint64]string{}}
}

// chunkOf returns the one chunk of a test file's content.
func chunkOf(content string) tree.ChunkRef {
	return tree.ChunkRef{ID: chunkstore.Hash([]byte("chunk:" + content)), Length: uint32(len(content))}
}

var chunkContent = map[chunkstore.ID]string{}

// spec describes a tree: path -> "f:content", "d", "l:target", with
// optional " m<octal mode>", " x<xattr user.t value>", " L<link id>/<count>".
type pullSpec map[string]string

func specEntry(t *testing.T, name, desc string) tree.Entry {
	t.Helper()
	parts := strings.Fields(desc)
	e := tree.Entry{Name: name, Mode: 0o644}
	switch kind := parts[0]; {
	case kind == "d":
		e.Type, e.Mode = tree.TypeDir, 0o755
	case strings.HasPrefix(kind, "f:"):
		e.Type = tree.TypeFile
		if c := kind[2:]; c != "" {
			r := chunkOf(c)
			chunkContent[r.ID] = c
			e.Chunks, e.Size = []tree.ChunkRef{r}, uint64(len(c))
		}
	case strings.HasPrefix(kind, "l:"):
		e.Type, e.Mode, e.Target = tree.TypeSymlink, 0o777, kind[2:]
	default:
		t.Fatalf("spec %q", desc)
	}
	for _, p := range parts[1:] {
		switch p[0] {
		case 'm':
			fmt.Sscanf(p[1:], "%o", &e.Mode)
		case 'x':
			e.Xattrs = []tree.Xattr{{Name: "user.t", Value: []byte(p[1:])}}
		case 'L':
			fmt.Sscanf(p[1:], "%d/%d", &e.LinkID, &e.Nlink)
		default:
			t.Fatalf("spec %q", desc)
		}
	}
	return e
}

// commit builds sp as a commit and returns its id and object.
func (h *pullHarness) commit(sp pullSpec) (chunkstore.ID, *tree.Commit) {
	h.t.Helper()
	root := tree.NewDir()
	for _, p := range slices.Sorted(maps.Keys(sp)) {
		dir, name := root, p
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			var err error
			for _, part := range strings.Split(p[:i], "/") {
				if dir, err = dir.Sub(part); err != nil {
					h.t.Fatal(err)
				}
			}
			name = p[i+1:]
		}
		e := specEntry(h.t, name, sp[p])
		var err error
		if e.Type == tree.TypeDir {
			sub := tree.NewDir()
			if _, old, ok := dir.Lookup(name); ok && old != nil {
				sub = old
			}
			err = dir.SetDir(e, sub)
		} else {
			err = dir.Set(e)
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	rootID := h.l.add(h.t, root)
	h.gen++
	c := &tree.Commit{Root: rootID, Device: "desk", Generation: uint64(h.gen), RootAttrs: tree.RootAttrs{Mode: 0o755}}
	rt, err := h.l.Tree(h.ctx, rootID)
	if err != nil {
		h.t.Fatal(err)
	}
	c.Stats = rt.Totals()
	return chunkstore.Hash([]byte(fmt.Sprintf("commit %d %s", h.gen, rootID))), c
}

// start loads sp as the base commit, with every directory loaded but those
// in lazy.
func (h *pullHarness) start(sp pullSpec, lazy ...string) {
	h.t.Helper()
	id, c := h.commit(sp)
	if err := h.db.LoadRemote(h.ctx, id, c); err != nil {
		h.t.Fatal(err)
	}
	h.base, h.head = id, c
	var load func(ino uint64, path string)
	load = func(ino uint64, path string) {
		if slices.Contains(lazy, path) {
			return
		}
		if err := h.db.EnsureLoaded(h.ctx, ino, h.l); err != nil {
			h.t.Fatal(err)
		}
		ents, err := h.db.ReadDir(h.ctx, ino, 0, 1<<20)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, e := range ents {
			if e.Attr.IsDir() {
				load(e.Attr.Ino, joinSlash(path, e.Name))
			}
		}
	}
	load(RootIno, "")
}

// source serves ApplyPull from the loader.
type loaderSource struct{ l *memLoader }

func (s loaderSource) Tree(id chunkstore.ID) *tree.Tree {
	if _, ok := s.l.objects[id]; !ok {
		return nil
	}
	t, err := s.l.Tree(context.Background(), id)
	if err != nil {
		return nil
	}
	return t
}

func (s loaderSource) Manifest(id chunkstore.ID) *tree.Manifest {
	if _, ok := s.l.objects[id]; !ok {
		return nil
	}
	m, err := s.l.Manifest(context.Background(), id)
	if err != nil {
		return nil
	}
	return m
}

// fetchingSource serves only the objects fetched so far (as a real pull
// does), counting the rounds.
type fetchingSource struct {
	l       *memLoader
	fetched map[chunkstore.ID]bool
}

func (s *fetchingSource) Tree(id chunkstore.ID) *tree.Tree {
	if !s.fetched[id] {
		return nil
	}
	return loaderSource{s.l}.Tree(id)
}

func (s *fetchingSource) Manifest(id chunkstore.ID) *tree.Manifest {
	if !s.fetched[id] {
		return nil
	}
	return loaderSource{s.l}.Manifest(id)
}

// pull applies sp as the remote's next commit and returns the result; it
// fetches what ApplyPull asks for, as the puller does.
func (h *pullHarness) pull(sp pullSpec) PullResult {
	h.t.Helper()
	id, c := h.commit(sp)
	src := &fetchingSource{l: h.l, fetched: map[chunkstore.ID]bool{}}
	attrs := h.head.RootAttrs
	for tries := 0; ; tries++ {
		res, err := h.db.ApplyPull(h.ctx, Pull{From: h.base, Commit: id, Head: c, FromAttrs: &attrs, Objects: src,
			Device: "laptop", Now: pullTime})
		if err != nil {
			h.t.Fatalf("ApplyPull: %v", err)
		}
		if len(res.Need) == 0 {
			h.base, h.head = id, c
			return res
		}
		if tries > 20 {
			h.t.Fatalf("ApplyPull keeps needing %v", res.Need)
		}
		for _, n := range res.Need {
			if _, ok := h.l.objects[n]; !ok {
				h.t.Fatalf("ApplyPull needs %s, which the remote does not have", n)
			}
			src.fetched[n] = true
		}
	}
}

// lookupPath returns the inode at slash path p.
func (h *pullHarness) lookupPath(p string) Attr {
	h.t.Helper()
	a, err := h.db.GetAttr(h.ctx, RootIno)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, part := range strings.Split(p, "/") {
		if a, err = h.db.Lookup(h.ctx, a.Ino, part); err != nil {
			h.t.Fatalf("lookup %s: %v", p, err)
		}
	}
	return a
}

func splitPath(p string) (string, string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

func (h *pullHarness) dirOf(p string) uint64 {
	d, _ := splitPath(p)
	if d == "" {
		return RootIno
	}
	return h.lookupPath(d).Ino
}

// write stages content as the whole of the file at p (created if needed),
// as a close does before the upload: content not known as chunks.
func (h *pullHarness) write(p, content string) uint64 {
	h.t.Helper()
	_, name := splitPath(p)
	dir := h.dirOf(p)
	a, err := h.db.Lookup(h.ctx, dir, name)
	if err != nil {
		if a, err = h.db.Create(h.ctx, dir, name, NewNode{Mode: sIFREG | 0o644}); err != nil {
			h.t.Fatal(err)
		}
	}
	h.writeIno(a.Ino, a.Size, content)
	return a.Ino
}

func (h *pullHarness) writeIno(ino uint64, oldSize int64, content string) {
	h.t.Helper()
	now := pullTime.Add(-time.Hour).UnixNano()
	c := DataCommit{Size: int64(len(content)), Mtime: now, Ctime: now, StagingName: fmt.Sprintf("st-%d", ino),
		Cut: Ranges{{Off: 0, Len: max(oldSize, 1)}}}
	if len(content) > 0 {
		c.AddStaged = Ranges{{Off: 0, Len: int64(len(content))}}
	}
	if _, err := h.db.CommitData(h.ctx, ino, c); err != nil {
		h.t.Fatal(err)
	}
	h.staged[ino] = content
}

func (h *pullHarness) mkdir(p string) {
	h.t.Helper()
	_, name := splitPath(p)
	if _, err := h.db.Create(h.ctx, h.dirOf(p), name, NewNode{Mode: sIFDIR | 0o755}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *pullHarness) rename(from, to string) {
	h.t.Helper()
	_, fn := splitPath(from)
	_, tn := splitPath(to)
	if _, err := h.db.Rename(h.ctx, h.dirOf(from), fn, h.dirOf(to), tn, 0); err != nil {
		h.t.Fatal(err)
	}
}

func (h *pullHarness) unlink(p string) {
	h.t.Helper()
	_, name := splitPath(p)
	a := h.lookupPath(p)
	var err error
	if a.IsDir() {
		_, err = h.db.Rmdir(h.ctx, h.dirOf(p), name)
	} else {
		_, err = h.db.Unlink(h.ctx, h.dirOf(p), name)
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *pullHarness) chmod(p string, mode uint32) {
	h.t.Helper()
	a := h.lookupPath(p)
	if _, err := h.db.SetAttr(h.ctx, a.Ino, AttrChange{Mask: SetMode | SetMtime | SetCtime, Mode: mode, Mtime: a.Mtime, Ctime: a.Ctime}); err != nil {
		h.t.Fatal(err)
	}
}

// tree renders the index as path -> description ("f:content" with staged
// or chunk content, "d", "l:target", " m<mode>" when not the default),
// walking only loaded directories; a directory not loaded is "d(lazy)".
func (h *pullHarness) tree() map[string]string {
	h.t.Helper()
	out := map[string]string{}
	var walk func(ino uint64, path string)
	walk = func(ino uint64, path string) {
		ents, err := h.db.ReadDir(h.ctx, ino, 0, 1<<20)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, e := range ents {
			p := joinSlash(path, e.Name)
			a := e.Attr
			var desc string
			def := uint32(0o644)
			switch {
			case a.IsDir():
				desc, def = "d", 0o755
				loaded, err := h.db.Loaded(h.ctx, a.Ino)
				if err != nil {
					h.t.Fatal(err)
				}
				if !loaded {
					desc = "d(lazy)"
				}
			case a.IsSymlink():
				desc, def = "l:"+a.Target, 0o777
			default:
				desc = "f:" + h.content(a)
			}
			if a.Mode&permMax != def {
				desc += fmt.Sprintf(" m%o", a.Mode&permMax)
			}
			out[p] = desc
			if desc == "d" || strings.HasPrefix(desc, "d m") {
				walk(a.Ino, p)
			}
		}
	}
	walk(RootIno, "")
	return out
}

// content returns a file's content as the harness wrote it: staged bytes,
// or its chunks.
func (h *pullHarness) content(a Attr) string {
	h.t.Helper()
	st, err := h.db.Staging(h.ctx, a.Ino)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(st.Ranges) > 0 {
		return h.staged[a.Ino]
	}
	exts, err := h.db.Extents(h.ctx, a.Ino, 0, a.Size)
	if err != nil {
		h.t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range exts {
		b.WriteString(chunkContent[e.Chunk])
	}
	return b.String()
}

// queued returns the paths of the queued inodes that have one, sorted.
func (h *pullHarness) queued() []string {
	h.t.Helper()
	items, err := h.db.ListDirty(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		if it.Ino == RootIno {
			out = append(out, "/")
			continue
		}
		parent, name, err := h.db.Parent(h.ctx, it.Ino)
		if err != nil {
			continue
		}
		var dir string
		if parent != RootIno {
			err = h.db.read(h.ctx, func(tx querier) (err error) {
				dir, err = pathTx(tx, parent)
				return err
			})
			if err != nil {
				h.t.Fatal(err)
			}
		}
		out = append(out, joinSlash(dir, name))
	}
	slices.Sort(out)
	return out
}

func conflictList(cs []Conflict) []string {
	var out []string
	for _, c := range cs {
		s := c.Kind.String() + " " + c.Path
		if c.CopyPath != "" {
			s += " -> " + c.CopyPath
		}
		out = append(out, s)
	}
	return out
}
