package index

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// TestPullRules runs each merge rule through ApplyPull: a base commit
// loaded, a local change, a remote commit pulled; then the namespace, the
// conflicts and the queue are checked.
func TestPullRules(t *testing.T) {
	copyName := func(stem, ext string) string { return stem + " (conflict laptop " + pullStamp + ")" + ext }
	tests := []struct {
		name      string
		base      pullSpec
		lazy      []string // directories left not loaded
		local     func(h *pullHarness)
		remote    pullSpec
		want      map[string]string
		conflicts []string
		queued    []string // nil: not checked
	}{
		{
			name:   "remote changes only: applied, nothing queued",
			base:   pullSpec{"a": "f:A", "b": "f:B", "d/x": "f:X", "gone": "f:G"},
			local:  func(h *pullHarness) {},
			remote: pullSpec{"a": "f:A2", "b": "f:B", "d/x": "f:X m600", "d/y": "l:x", "new": "d", "new/z": "f:Z"},
			want:   map[string]string{"a": "f:A2", "b": "f:B", "d": "d", "d/x": "f:X m600", "d/y": "l:x", "new": "d(lazy)"},
			queued: []string{},
		},
		{
			name:   "disjoint changes both apply",
			base:   pullSpec{"a": "f:A", "b": "f:B", "d/x": "f:X"},
			local:  func(h *pullHarness) { h.write("a", "A2"); h.write("d/mine", "M") },
			remote: pullSpec{"a": "f:A", "b": "f:B2", "d/x": "f:X", "d/theirs": "f:T"},
			want:   map[string]string{"a": "f:A2", "b": "f:B2", "d": "d", "d/x": "f:X", "d/mine": "f:M", "d/theirs": "f:T"},
			queued: []string{"/", "a", "d", "d/mine"},
		},
		{
			name:      "one file changed on both sides: remote keeps the name, local is the copy",
			base:      pullSpec{"report.txt": "f:v1"},
			local:     func(h *pullHarness) { h.write("report.txt", "mine") },
			remote:    pullSpec{"report.txt": "f:theirs"},
			want:      map[string]string{"report.txt": "f:theirs", copyName("report", ".txt"): "f:mine"},
			conflicts: []string{"content report.txt -> " + copyName("report", ".txt")},
			queued:    []string{"/", copyName("report", ".txt")},
		},
		{
			name:      "local edit vs remote delete keeps the edit",
			base:      pullSpec{"a": "f:A", "b": "f:B"},
			local:     func(h *pullHarness) { h.write("a", "A2") },
			remote:    pullSpec{"b": "f:B"},
			want:      map[string]string{"a": "f:A2", "b": "f:B"},
			conflicts: []string{"delete-vs-modify a"},
			queued:    []string{"/", "a"},
		},
		{
			name:      "local delete vs remote edit keeps the edit",
			base:      pullSpec{"a": "f:A", "b": "f:B"},
			local:     func(h *pullHarness) { h.unlink("a") },
			remote:    pullSpec{"a": "f:A2", "b": "f:B"},
			want:      map[string]string{"a": "f:A2", "b": "f:B"},
			conflicts: []string{"delete-vs-modify a"},
		},
		{
			name:   "local rename vs remote edit: the edit follows the rename",
			base:   pullSpec{"d/a.txt": "f:A", "e/k": "f:K"},
			local:  func(h *pullHarness) { h.rename("d/a.txt", "e/b.txt") },
			remote: pullSpec{"d/a.txt": "f:A2", "e/k": "f:K"},
			want:   map[string]string{"d": "d", "e": "d", "e/b.txt": "f:A2", "e/k": "f:K"},
		},
		{
			name:   "remote rename vs local edit: the edit follows the rename",
			base:   pullSpec{"d/a.txt": "f:A", "e/k": "f:K"},
			local:  func(h *pullHarness) { h.write("d/a.txt", "A2") },
			remote: pullSpec{"d": "d", "e/b.txt": "f:A", "e/k": "f:K"},
			want:   map[string]string{"d": "d", "e": "d", "e/b.txt": "f:A2", "e/k": "f:K"},
		},
		{
			name:   "remote rename into a directory not loaded here: the local edit follows",
			base:   pullSpec{"d/a.txt": "f:A", "e/k": "f:K", "e/deep/x": "f:X"},
			lazy:   []string{"e"},
			local:  func(h *pullHarness) { h.write("d/a.txt", "A2") },
			remote: pullSpec{"d": "d", "e/k": "f:K", "e/deep/b.txt": "f:A", "e/deep/x": "f:X"},
			want:   map[string]string{"d": "d", "e": "d", "e/k": "f:K", "e/deep": "d", "e/deep/b.txt": "f:A2", "e/deep/x": "f:X"},
		},
		{
			name:   "remote rename into a directory not loaded here, nothing changed here: not loaded",
			base:   pullSpec{"d/a.txt": "f:A", "e/k": "f:K"},
			lazy:   []string{"e"},
			local:  func(h *pullHarness) {},
			remote: pullSpec{"d": "d", "e/k": "f:K", "e/b.txt": "f:A"},
			want:   map[string]string{"d": "d", "e": "d(lazy)"},
		},
		{
			name:   "remote rename of a directory the local changed inside",
			base:   pullSpec{"old/x": "f:X", "old/y": "f:Y"},
			local:  func(h *pullHarness) { h.write("old/x", "X2"); h.write("old/n", "N") },
			remote: pullSpec{"new/x": "f:X", "new/y": "f:Y"},
			want:   map[string]string{"new": "d", "new/x": "f:X2", "new/y": "f:Y", "new/n": "f:N"},
		},
		{
			name:      "new local file in a directory deleted elsewhere keeps the directory and the file",
			base:      pullSpec{"d/x": "f:X", "d/y": "f:Y", "k": "f:K"},
			local:     func(h *pullHarness) { h.write("d/new", "N") },
			remote:    pullSpec{"k": "f:K"},
			want:      map[string]string{"d": "d", "d/new": "f:N", "k": "f:K"},
			conflicts: []string{"delete-vs-modify d"},
			queued:    []string{"/", "d", "d/new"},
		},
		{
			name:      "new remote file in a directory deleted here keeps the directory and the file",
			base:      pullSpec{"d/x": "f:X", "d/y": "f:Y", "k": "f:K"},
			local:     func(h *pullHarness) { h.unlink("d/x"); h.unlink("d/y"); h.unlink("d") },
			remote:    pullSpec{"d/x": "f:X", "d/y": "f:Y", "d/new": "f:N", "k": "f:K"},
			want:      map[string]string{"d": "d", "d/new": "f:N", "k": "f:K"},
			conflicts: []string{"delete-vs-modify d"},
			queued:    []string{"/", "d"},
		},
		{
			name:      "file vs directory of one name keeps both",
			base:      pullSpec{"k": "f:K"},
			local:     func(h *pullHarness) { h.write("x.d", "F") },
			remote:    pullSpec{"k": "f:K", "x.d/in": "f:I"},
			want:      map[string]string{"k": "f:K", "x.d": "d(lazy)", copyName("x", ".d"): "f:F"},
			conflicts: []string{"file-vs-directory x.d -> " + copyName("x", ".d")},
		},
		{
			name:      "directory vs file of one name keeps both",
			base:      pullSpec{"k": "f:K"},
			local:     func(h *pullHarness) { h.mkdir("x.d"); h.write("x.d/in", "I") },
			remote:    pullSpec{"k": "f:K", "x.d": "f:F"},
			want:      map[string]string{"k": "f:K", "x.d": "f:F", copyName("x.d", ""): "d", copyName("x.d", "") + "/in": "f:I"},
			conflicts: []string{"file-vs-directory x.d -> " + copyName("x.d", "")},
		},
		{
			name:   "local chmod, remote edit: both survive",
			base:   pullSpec{"a": "f:A"},
			local:  func(h *pullHarness) { h.chmod("a", 0o600) },
			remote: pullSpec{"a": "f:A2"},
			want:   map[string]string{"a": "f:A2 m600"},
			queued: []string{"/", "a"},
		},
		{
			name:   "a directory never loaded only gets its new tree",
			base:   pullSpec{"lazy/x": "f:X", "lazy/deep/y": "f:Y", "a": "f:A"},
			lazy:   []string{"lazy"},
			local:  func(h *pullHarness) {},
			remote: pullSpec{"lazy/x": "f:X2", "lazy/deep/y": "f:Y", "a": "f:A"},
			want:   map[string]string{"lazy": "d(lazy)", "a": "f:A"},
			queued: []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newPullHarness(t)
			h.start(tc.base, tc.lazy...)
			tc.local(h)
			res := h.pull(tc.remote)
			if got := h.tree(); !maps.Equal(got, tc.want) {
				t.Errorf("tree after the pull:\n got %v\nwant %v", got, tc.want)
			}
			if got := conflictList(res.Conflicts); !slices.Equal(got, tc.conflicts) {
				t.Errorf("conflicts:\n got %q\nwant %q", got, tc.conflicts)
			}
			if tc.queued != nil {
				if got := h.queued(); !slices.Equal(got, tc.queued) {
					t.Errorf("queued %q, want %q", got, tc.queued)
				}
			}
			base, err := h.db.Meta(h.ctx, MetaBaseCommit)
			if err != nil || string(base) != string(h.base[:]) {
				t.Errorf("base commit %x, %v; want the pulled one", base, err)
			}
		})
	}
}

// TestPullHardLinks: link counts stay right when the remote adds a name of
// a hard-linked file in a directory loaded here and in one not loaded, and
// when it changes the file's content.
func TestPullHardLinks(t *testing.T) {
	h := newPullHarness(t)
	h.start(pullSpec{"a": "f:A L7/2", "d/b": "f:A L7/2", "lazy/k": "f:K"}, "lazy")
	res := h.pull(pullSpec{"a": "f:A L7/4", "d/b": "f:A L7/4", "d/c": "f:A L7/4", "lazy/k": "f:K", "lazy/e": "f:A L7/4"})
	if len(res.Conflicts) != 0 {
		t.Fatalf("conflicts %v", res.Conflicts)
	}
	a, b, c := h.lookupPath("a"), h.lookupPath("d/b"), h.lookupPath("d/c")
	if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 4 {
		t.Fatalf("a %d/%d, d/b %d, d/c %d: want one inode with 4 links", a.Ino, a.Nlink, b.Ino, c.Ino)
	}
	// Loading the directory with the fourth name joins the same inode.
	if err := h.db.EnsureLoaded(h.ctx, h.lookupPath("lazy").Ino, h.l); err != nil {
		t.Fatal(err)
	}
	if e := h.lookupPath("lazy/e"); e.Ino != a.Ino || e.Nlink != 4 {
		t.Fatalf("lazy/e = %d with %d links, want %d with 4", e.Ino, e.Nlink, a.Ino)
	}
	// New content of the group: a new inode for every name, the old one
	// displaced (it was open, say).
	h.pull(pullSpec{"a": "f:B L7/3", "d/b": "f:B L7/3", "lazy/k": "f:K", "lazy/e": "f:B L7/3"})
	na, nb, ne := h.lookupPath("a"), h.lookupPath("d/b"), h.lookupPath("lazy/e")
	if na.Ino == a.Ino || na.Ino != nb.Ino || na.Ino != ne.Ino || na.Nlink != 3 {
		t.Fatalf("after the content change: a %d/%d, d/b %d, lazy/e %d (old %d)", na.Ino, na.Nlink, nb.Ino, ne.Ino, a.Ino)
	}
	old, err := h.db.GetAttr(h.ctx, a.Ino)
	if err != nil || old.Nlink != 0 {
		t.Fatalf("old inode %+v, %v: want it unlinked and kept for its open files", old, err)
	}
	if _, err := h.db.Lookup(h.ctx, h.lookupPath("d").Ino, "c"); err == nil {
		t.Fatal("d/c survived its removal")
	}
	if got := h.queued(); len(got) != 0 {
		t.Fatalf("queued %v after remote-only changes", got)
	}
}

// TestPullDisplacedWriteComesBack: a file the pull replaced while it was
// open for writing, and that is written afterwards, comes back as a
// conflict copy beside its name: no edit is lost.
func TestPullDisplacedWriteComesBack(t *testing.T) {
	h := newPullHarness(t)
	h.db.SetDevice("laptop")
	h.start(pullSpec{"d/f.txt": "f:v1"})
	old := h.lookupPath("d/f.txt")
	res := h.pull(pullSpec{"d/f.txt": "f:theirs"})
	if !slices.Contains(res.Orphaned, old.Ino) {
		t.Fatalf("orphaned %v, want the old inode %d", res.Orphaned, old.Ino)
	}
	found := false
	for _, v := range res.Invalidate {
		if v.Dir == h.lookupPath("d").Ino && v.Name == "f.txt" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no invalidation of d/f.txt in %+v", res.Invalidate)
	}
	// The writer that had it open commits its write.
	h.writeIno(old.Ino, old.Size, "mine")
	want := map[string]string{"d": "d", "d/f.txt": "f:theirs"}
	var copyPath string
	for p, d := range h.tree() {
		if p != "d" && p != "d/f.txt" {
			copyPath = p
			want[p] = "f:mine"
			if d != "f:mine" {
				t.Fatalf("%s = %s", p, d)
			}
		}
	}
	if got := h.tree(); !maps.Equal(got, want) || copyPath == "" {
		t.Fatalf("tree %v: want d/f.txt and a conflict copy of the write", got)
	}
	cs, n, err := h.db.Conflicts(h.ctx, 10)
	if err != nil || n != 1 || cs[0].CopyPath != copyPath || cs[0].Path != "d/f.txt" {
		t.Fatalf("conflicts %+v (%d), %v", cs, n, err)
	}
	if h.lookupPath(copyPath).Ino != old.Ino {
		t.Fatal("the copy is not the written inode")
	}
}

// TestPullFetchesOnlyTheChangedPath: a pull after one file changed deep in
// the tree fetches the new trees of the path (and its old ones, read when
// the directories were loaded here), nothing beside it; a directory not
// loaded costs nothing.
func TestPullFetchesOnlyTheChangedPath(t *testing.T) {
	h := newPullHarness(t)
	sp := pullSpec{}
	for i := range 20 {
		sp["wide/"+string(rune('a'+i))+"/f"] = "f:x"
		sp["a/b/c/d/e"+string(rune('a'+i))] = "f:y"
	}
	sp["a/b/c/d/target"] = "f:T"
	h.start(sp)
	next := maps.Clone(sp)
	next["a/b/c/d/target"] = "f:T2"
	id, c := h.commit(next)
	src := &fetchingSource{l: h.l, fetched: map[chunkstore.ID]bool{}}
	attrs := h.head.RootAttrs
	var fetched []chunkstore.ID
	for {
		res, err := h.db.ApplyPull(h.ctx, Pull{From: h.base, Commit: id, Head: c, FromAttrs: &attrs, Objects: src, Device: "laptop", Now: pullTime})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Need) == 0 {
			if res.Dirs != 5 || res.Changed != 1 {
				t.Fatalf("pull walked %d directories and changed %d names, want 5 and 1", res.Dirs, res.Changed)
			}
			break
		}
		for _, n := range res.Need {
			src.fetched[n] = true
			fetched = append(fetched, n)
		}
	}
	// Root, a, b, c, d: their old and new trees, ten in all.
	if len(fetched) != 10 {
		t.Fatalf("fetched %d trees, want 10 (the old and new trees of the five directories on the path)", len(fetched))
	}
	if got := h.content(h.lookupPath("a/b/c/d/target")); got != "T2" {
		t.Fatalf("target = %q", got)
	}
}

// TestPullRefusesAnotherBase: a pull made against another base than the
// index's changes nothing.
func TestPullRefusesAnotherBase(t *testing.T) {
	h := newPullHarness(t)
	h.start(pullSpec{"a": "f:A"})
	id, c := h.commit(pullSpec{"a": "f:A2"})
	_, err := h.db.ApplyPull(h.ctx, Pull{From: chunkstore.Hash([]byte("not the base")), Commit: id, Head: c,
		Objects: loaderSource{h.l}, Device: "laptop", Now: pullTime})
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("ApplyPull from another base: %v", err)
	}
	if got := h.content(h.lookupPath("a")); got != "A" {
		t.Fatalf("a = %q after a refused pull", got)
	}
}

// TestPullLinkCountWithLocalChange: the remote added a name of a
// hard-linked file in a directory not loaded here while this machine
// changed the file's mode: the mode stays this machine's and the count
// takes the new name (so the next commit finds and rewrites every name).
func TestPullLinkCountWithLocalChange(t *testing.T) {
	h := newPullHarness(t)
	h.start(pullSpec{"a": "f:A L7/2", "d/b": "f:A L7/2", "lazy/k": "f:K"}, "lazy")
	h.chmod("a", 0o600)
	h.pull(pullSpec{"a": "f:A L7/3", "d/b": "f:A L7/3", "lazy/k": "f:K", "lazy/c": "f:A L7/3"})
	a, b := h.lookupPath("a"), h.lookupPath("d/b")
	if a.Ino != b.Ino || a.Nlink != 3 || a.Mode&permMax != 0o600 {
		t.Fatalf("a = %d mode %o nlink %d, d/b = %d: want one inode, mode 600, 3 links", a.Ino, a.Mode&permMax, a.Nlink, b.Ino)
	}
	// Links made on both sides add up.
	h2 := newPullHarness(t)
	h2.start(pullSpec{"a": "f:A L7/2", "d/b": "f:A L7/2", "lazy/k": "f:K"}, "lazy")
	x := h2.lookupPath("a")
	if _, err := h2.db.Link(h2.ctx, x.Ino, h2.lookupPath("d").Ino, "mine"); err != nil {
		t.Fatal(err)
	}
	h2.pull(pullSpec{"a": "f:A L7/3", "d/b": "f:A L7/3", "lazy/k": "f:K", "lazy/theirs": "f:A L7/3"})
	if got := h2.lookupPath("d/mine"); got.Ino != x.Ino || got.Nlink != 4 {
		t.Fatalf("after links on both sides: nlink %d (inode %d, want %d): want 4", got.Nlink, got.Ino, x.Ino)
	}
}

// TestPullJoinsSeparateNamesIntoAGroup: names this machine holds as
// separate inodes, unchanged here, that the remote made one hard-link
// group of (same content) become one inode with the group's count, and
// nothing is queued. (Before, each name took the group's link id in turn
// and stayed separate, so this machine committed them separate again and
// the group's machine remade the group: two machines committing back and
// forth for ever, found by TestMachinesConverge.)
func TestPullJoinsSeparateNamesIntoAGroup(t *testing.T) {
	h := newPullHarness(t)
	h.start(pullSpec{"a": "f:A", "d/b": "f:A", "d/e/c": "f:A", "k": "f:K"})
	k := h.lookupPath("k")
	res := h.pull(pullSpec{"a": "f:A L9/3", "d/b": "f:A L9/3", "d/e/c": "f:A L9/3", "k": "f:K"})
	if len(res.Conflicts) != 0 {
		t.Fatalf("conflicts %v", res.Conflicts)
	}
	a, b, c := h.lookupPath("a"), h.lookupPath("d/b"), h.lookupPath("d/e/c")
	if a.Ino != b.Ino || a.Ino != c.Ino || a.Nlink != 3 {
		t.Fatalf("a %d/%d, d/b %d/%d, d/e/c %d/%d: want one inode with 3 links", a.Ino, a.Nlink, b.Ino, b.Nlink, c.Ino, c.Nlink)
	}
	if got := h.content(a); got != "A" {
		t.Fatalf("content %q", got)
	}
	if got := h.queued(); len(got) != 0 {
		t.Fatalf("queued %v after the remote grouped unchanged names", got)
	}
	if h.lookupPath("k").Ino != k.Ino {
		t.Fatal("an entry the remote left alone got a new inode")
	}
}
