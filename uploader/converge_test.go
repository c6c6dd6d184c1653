package uploader

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// node is one entry of a machine's namespace as the index shows it.
type nsEntry struct {
	path string
	attr index.Attr
}

// namespace walks f's whole namespace (loading every directory) and
// returns path -> description: type, mode, content, link count and which
// names share an inode (the first path of the inode), xattr.
func namespace(f *fixture) map[string]string {
	f.t.Helper()
	var ents []nsEntry
	// Load every directory first: loading joins names of hard-linked
	// files, so the counts are read once every name is in.
	var load func(dir uint64)
	load = func(dir uint64) {
		if err := f.db.EnsureLoaded(f.ctx, dir, f.up.load); err != nil {
			f.t.Fatal(err)
		}
		list, err := f.db.ReadDir(f.ctx, dir, 0, 1<<30)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, e := range list {
			if e.Attr.IsDir() {
				load(e.Attr.Ino)
			}
		}
	}
	load(index.RootIno)
	var walk func(dir uint64, path string)
	walk = func(dir uint64, path string) {
		list, err := f.db.ReadDir(f.ctx, dir, 0, 1<<30)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, e := range list {
			p := path + "/" + e.Name
			ents = append(ents, nsEntry{p, e.Attr})
			if e.Attr.IsDir() {
				walk(e.Attr.Ino, p)
			}
		}
	}
	walk(index.RootIno, "")
	first := map[uint64]string{} // the smallest path of each inode
	for _, e := range ents {
		if p, ok := first[e.attr.Ino]; !ok || e.path < p {
			first[e.attr.Ino] = e.path
		}
	}
	out := map[string]string{}
	for _, e := range ents {
		a := e.attr
		d := fmt.Sprintf("mode %o", a.Mode)
		switch {
		case a.IsRegular():
			d += fmt.Sprintf(" %q nlink %d same-as %s", f.read(a.Ino), a.Nlink, first[a.Ino])
		case a.IsSymlink():
			d += " -> " + a.Target
		}
		if v, err := f.db.GetXattr(f.ctx, a.Ino, "user.tag"); err == nil {
			d += " tag=" + string(v)
		}
		out[e.path] = d
	}
	return out
}

// mutator makes random changes to one machine's index, as the file
// system would.
type mutator struct {
	f  *fixture
	r  *rand.Rand
	id int
	op int
}

func (m *mutator) paths() (files, dirs []nsEntry) {
	dirs = append(dirs, nsEntry{"", index.Attr{Ino: index.RootIno, Mode: modeDir}})
	var walk func(dir uint64, path string)
	walk = func(dir uint64, path string) {
		if err := m.f.db.EnsureLoaded(m.f.ctx, dir, m.f.up.load); err != nil {
			m.f.t.Fatal(err)
		}
		list, err := m.f.db.ReadDir(m.f.ctx, dir, 0, 1<<30)
		if err != nil {
			m.f.t.Fatal(err)
		}
		for _, e := range list {
			p := path + "/" + e.Name
			switch {
			case e.Attr.IsDir():
				dirs = append(dirs, nsEntry{p, e.Attr})
				walk(e.Attr.Ino, p)
			case e.Attr.IsRegular():
				files = append(files, nsEntry{p, e.Attr})
			}
		}
	}
	walk(index.RootIno, "")
	return files, dirs
}

func (m *mutator) parentOf(p string) (uint64, string) {
	i := strings.LastIndexByte(p, '/')
	dir := index.RootIno
	if i > 0 {
		dir = m.f.lookup(p[1:i]).Ino
	}
	return dir, p[i+1:]
}

// step makes one change; it returns a description for the log.
func (m *mutator) step() string {
	m.op++
	f := m.f
	files, dirs := m.paths()
	pick := func(l []nsEntry) nsEntry { return l[m.r.IntN(len(l))] }
	name := fmt.Sprintf("n%d-%d", m.id, m.op)
	content := []byte(fmt.Sprintf("m%d op%d", m.id, m.op))
	switch k := m.r.IntN(100); {
	case k < 25 || len(files) == 0:
		d := pick(dirs)
		f.write(f.create(d.attr.Ino, name, modeReg|0o644), 0, content)
		return "create " + d.path + "/" + name
	case k < 40:
		x := pick(files)
		f.write(x.attr.Ino, 0, content)
		return "write " + x.path
	case k < 50:
		x := pick(files)
		d := pick(dirs)
		if _, err := f.db.Link(f.ctx, x.attr.Ino, d.attr.Ino, name); err != nil {
			f.t.Fatal(err)
		}
		return "link " + x.path + " " + d.path + "/" + name
	case k < 60:
		x := pick(files)
		dir, base := m.parentOf(x.path)
		if _, err := f.db.Unlink(f.ctx, dir, base); err != nil {
			f.t.Fatal(err)
		}
		return "unlink " + x.path
	case k < 70:
		x := pick(files)
		dir, base := m.parentOf(x.path)
		d := pick(dirs)
		if _, err := f.db.Rename(f.ctx, dir, base, d.attr.Ino, name, index.RenameNoReplace); err != nil {
			f.t.Fatal(err)
		}
		return "rename " + x.path + " " + d.path + "/" + name
	case k < 80:
		x := pick(files)
		mode := []uint32{0o600, 0o640, 0o644, 0o664}[m.r.IntN(4)]
		if _, err := f.db.SetAttr(f.ctx, x.attr.Ino, index.AttrChange{Mask: index.SetMode, Mode: mode}); err != nil {
			f.t.Fatal(err)
		}
		return fmt.Sprintf("chmod %o %s", mode, x.path)
	case k < 88:
		x := pick(files)
		if err := f.db.SetXattr(f.ctx, x.attr.Ino, "user.tag", []byte(name), 0); err != nil {
			f.t.Fatal(err)
		}
		return "setxattr " + x.path
	case k < 95:
		d := pick(dirs)
		f.create(d.attr.Ino, "d"+name, modeDir|0o755)
		return "mkdir " + d.path + "/d" + name
	default:
		d := pick(dirs)
		if d.path == "" {
			return "rmdir of the root skipped"
		}
		dir, base := m.parentOf(d.path)
		_, err := f.db.Rmdir(f.ctx, dir, base)
		if err != nil && !errors.Is(err, index.ErrNotEmpty) {
			f.t.Fatal(err)
		}
		return "rmdir " + d.path
	}
}

// TestMachinesConvergeIndex is the randomised multi-machine workload
// without the kernel: two machines on one store change their indexes at
// random and commit at random times (each commit merging the other's);
// then both sync. Both namespaces must equal what a fresh machine loads
// from the bucket: names, types, modes, contents, xattrs, link counts and
// which names are one inode. Deterministic for a seed
// (CLOUDFS_MERGE_SEED), so a failure can be replayed.
func TestMachinesConvergeIndex(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if s := os.Getenv("CLOUDFS_MERGE_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{n}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { convergeIndex(t, seed, 120) })
	}
}

func convergeIndex(t *testing.T, seed uint64, steps int) {
	a := newPullingFixture(t)
	a.write(a.create(index.RootIno, "start", modeReg|0o644), 0, []byte("start"))
	a.round()
	b := a.peer("b")
	r := rand.New(rand.NewPCG(seed, 99))
	ms := []*mutator{{f: a, r: rand.New(rand.NewPCG(seed, 0)), id: 0}, {f: b, r: rand.New(rand.NewPCG(seed, 1)), id: 1}}
	var history []string
	for i := range steps {
		m := ms[r.IntN(2)]
		history = append(history, fmt.Sprintf("%d: m%d %s", i, m.id, m.step()))
		for _, c := range ms {
			if bad := c.f.db.CheckLinkCounts(c.f.ctx); bad != "" {
				t.Fatalf("seed %d step %d: machine %d: %s\n%s", seed, i, c.id, bad, strings.Join(history, "\n"))
			}
		}
		if r.IntN(4) == 0 {
			c := ms[r.IntN(2)]
			if _, err := c.f.up.Round(c.f.ctx, true); err != nil {
				t.Fatalf("seed %d step %d: round on m%d: %v\n%s", seed, i, c.id, err, strings.Join(history, "\n"))
			}
			history = append(history, fmt.Sprintf("%d: m%d commits", i, c.id))
			if w := os.Getenv("CLOUDFS_MERGE_WATCH"); w != "" {
				history = append(history, "    head: "+watchEntries(c.f, strings.Split(w, ",")))
			}
			for _, c := range ms {
				if bad := c.f.db.CheckLinkCounts(c.f.ctx); bad != "" {
					t.Fatalf("seed %d after the commit of step %d: machine %d: %s\n%s", seed, i, c.id, bad, strings.Join(history, "\n"))
				}
			}
			if base, err := c.f.db.Meta(c.f.ctx, index.MetaBaseCommit); err == nil && c.f.queued() == 0 &&
				chunkstore.ID(base) == c.f.head() {
				// In step with head: the machine shows what the bucket has.
				compareNS(t, seed, c.id, namespace(c.f), namespace(a.peer(fmt.Sprintf("check%d", i))), history, c.f)
			}
		}
	}
	// Sync everywhere until a whole pass moves head no more.
	for pass := 0; ; pass++ {
		before := a.head()
		for _, m := range ms {
			if _, err := m.f.puller.Pull(m.f.ctx); err != nil {
				t.Fatal(err)
			}
			m.f.round()
		}
		if a.head() == before {
			break
		}
		if pass == 5 {
			t.Fatalf("seed %d: head still moving after %d sync passes\n%s", seed, pass+1, strings.Join(history, "\n"))
		}
	}
	fresh := a.peer("fresh")
	want := namespace(fresh)
	for _, m := range ms {
		compareNS(t, seed, m.id, namespace(m.f), want, history, m.f)
	}
}

// watchEntries describes the head tree's entries of the given names
// (anywhere in the tree), for debugging a seed.
func watchEntries(f *fixture, names []string) string {
	var out []string
	var walk func(id chunkstore.ID, path string)
	walk = func(id chunkstore.ID, path string) {
		tr, err := f.up.load.Tree(f.ctx, id)
		if err != nil {
			out = append(out, err.Error())
			return
		}
		for _, e := range tr.Entries {
			if e.Type == 2 {
				walk(e.Subtree, path+"/"+e.Name)
			}
			if slices.Contains(names, e.Name) {
				out = append(out, fmt.Sprintf("%s/%s mode %o link %d/%d", path, e.Name, e.Mode, e.LinkID, e.Nlink))
			}
		}
	}
	walk(f.headCommit().Root, "")
	return strings.Join(out, "; ")
}

// compareNS fails unless machine id's namespace got is want, the
// bucket's.
func compareNS(t *testing.T, seed uint64, id int, got, want map[string]string, history []string, f *fixture) {
	t.Helper()
	if maps.Equal(got, want) {
		return
	}
	// The head tree's entries of the differing names, for the reader.
	var entries []string
	root, err := f.up.load.Tree(f.ctx, f.headCommit().Root)
	if err == nil {
		for _, e := range root.Entries {
			if got["/"+e.Name] != want["/"+e.Name] {
				entries = append(entries, fmt.Sprintf("%s link %d/%d", e.Name, e.LinkID, e.Nlink))
			}
		}
	}
	history = append(history, "head's root entries that differ: "+strings.Join(entries, ", "))
	if w := os.Getenv("CLOUDFS_MERGE_WATCH"); w != "" {
		history = append(history, "final head: "+watchEntries(f, strings.Split(w, ",")))
	}
	if w := os.Getenv("CLOUDFS_MERGE_GREP"); w != "" {
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if strings.Contains(got[k], w) {
				history = append(history, "here:   "+k+" "+got[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if strings.Contains(want[k], w) {
				history = append(history, "bucket: "+k+" "+want[k])
			}
		}
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			diffs = append(diffs, fmt.Sprintf("%s: %q here, %q in the bucket", k, got[k], want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %q here, not in the bucket", k, got[k]))
		}
	}
	t.Fatalf("seed %d: machine %d differs from the bucket:\n%s\nhistory:\n%s", seed, id,
		strings.Join(diffs, "\n"), strings.Join(history, "\n"))
}
