package tree

import (
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// TestResolve is the table of the merge rules for one name (resolve.go):
// base o, local l, remote n, and what Resolve decides.
func TestResolve(t *testing.T) {
	sub := func(name string) chunkstore.ID { return chunkstore.Hash([]byte("tree " + name)) }
	d := func(tree string) *Entry { e := dir(); e.Subtree, e.Totals = sub(tree), Stats{Dirs: 1}; return &e }
	f := func(content string) *Entry { e := file(content); return &e }
	mode := func(e *Entry, m uint32) *Entry { c := *e; c.Mode = m; return &c }
	mtime := func(e *Entry, ns int64) *Entry { c := *e; c.MtimeNs = ns; return &c }
	owner := func(e *Entry, uid uint32) *Entry { c := *e; c.UID = uid; return &c }
	link := func(e *Entry, id uint64, n uint32) *Entry { c := *e; c.LinkID, c.Nlink = id, n; return &c }
	ln := symlink("target")

	tests := []struct {
		name      string
		o, l, n   *Entry
		unknown   bool // local content changed, not known
		want      Action
		copyLocal bool
		attrs     *Attrs
		base      chunkstore.ID
		conflict  ConflictKind
	}{
		// One side changed: that side's version.
		{name: "nothing changed", o: f("A"), l: f("A"), n: f("A"), want: Keep},
		{name: "local edit only", o: f("A"), l: f("A2"), n: f("A"), want: Keep},
		{name: "local edit being written", o: f("A"), l: f("A"), n: f("A"), unknown: true, want: Keep},
		{name: "remote edit only", o: f("A"), l: f("A"), n: f("A2"), want: Take},
		{name: "remote add", n: f("N"), want: Take},
		{name: "local add", l: f("N"), want: Keep},
		{name: "remote delete", o: f("A"), l: f("A"), want: Take},
		{name: "local delete", o: f("A"), n: f("A"), want: Keep},
		{name: "both deleted", o: f("A"), want: Keep},
		{name: "same edit on both sides", o: f("A"), l: f("B"), n: f("B"), want: Keep},
		{name: "same file created on both sides", l: f("B"), n: f("B"), want: Keep},
		{name: "link count changed remotely", o: link(f("A"), 7, 2), l: link(f("A"), 7, 2), n: link(f("A"), 7, 3), want: Take},
		// Both changed one file's content.
		{name: "both edited", o: f("A"), l: f("mine"), n: f("theirs"), want: Take, copyLocal: true, conflict: ContentConflict},
		{name: "both created", l: f("mine"), n: f("theirs"), want: Take, copyLocal: true, conflict: ContentConflict},
		{name: "remote edit, local being written", o: f("A"), l: f("A"), n: f("A2"), unknown: true, want: Take, copyLocal: true, conflict: ContentConflict},
		{name: "file vs symlink", o: f("A"), l: &ln, n: f("A2"), want: Take, copyLocal: true, conflict: ContentConflict},
		// Attributes merge by group.
		{name: "local chmod, remote edit", o: f("A"), l: mode(f("A"), 0o600), n: mtime(f("A2"), 7), want: SetContent,
			attrs: &Attrs{Mode: 0o600, MtimeNs: 7}},
		{name: "local edit, remote chmod", o: f("A"), l: mtime(f("A2"), 9), n: mode(f("A"), 0o640), want: SetAttrs,
			attrs: &Attrs{Mode: 0o640, MtimeNs: 9}},
		{name: "being written, remote chmod", o: f("A"), l: f("A"), n: mode(f("A"), 0o640), unknown: true, want: SetAttrs,
			attrs: &Attrs{Mode: 0o640}},
		{name: "chmod on both sides", o: f("A"), l: mode(f("A"), 0o600), n: mode(f("A"), 0o640), want: SetAttrs,
			attrs: &Attrs{Mode: 0o640}, conflict: MetadataConflict},
		{name: "chmod here, chown there", o: f("A"), l: mode(f("A"), 0o600), n: owner(f("A"), 1000), want: SetAttrs,
			attrs: &Attrs{Mode: 0o600, UID: 1000}},
		{name: "two mtimes: the later wins", o: f("A"), l: mtime(f("A"), 5), n: mtime(f("A"), 3), want: SetAttrs,
			attrs: &Attrs{Mode: 0o644, MtimeNs: 5}},
		{name: "same content created at different times", l: mtime(f("A"), 1), n: mtime(f("A"), 2), want: SetAttrs,
			attrs: &Attrs{Mode: 0o644, MtimeNs: 2}},
		// Edit vs delete keeps the edit.
		{name: "local edit, remote delete", o: f("A"), l: f("A2"), want: Keep, conflict: DeleteModifyConflict},
		{name: "local delete, remote edit", o: f("A"), n: f("A2"), want: Take, conflict: DeleteModifyConflict},
		{name: "being written, remote delete", o: f("A"), l: f("A"), unknown: true, want: Keep, conflict: DeleteModifyConflict},
		// Directories merge inside.
		{name: "both changed a directory", o: d("o"), l: d("l"), n: d("n"), want: MergeDirs, base: sub("o"), attrs: &Attrs{Mode: 0o755}},
		{name: "local chmod of a directory the remote changed", o: d("o"), l: mode(d("o"), 0o700), n: d("n"), want: MergeDirs,
			base: sub("o"), attrs: &Attrs{Mode: 0o700}},
		{name: "both created a directory", l: d("l"), n: d("n"), want: MergeDirs, attrs: &Attrs{Mode: 0o755}},
		{name: "local directory, remote deleted it", o: d("o"), l: d("l"), want: Prune, base: sub("o")},
		{name: "unchanged local directory, remote deleted it", o: d("o"), l: d("o"), want: Prune, base: sub("o")},
		{name: "local deleted a directory the remote changed", o: d("o"), n: d("n"), want: Restore, base: sub("o")},
		// A directory and a non-directory under one name: both stay.
		{name: "local file, remote directory", l: f("F"), n: d("n"), want: Take, copyLocal: true, conflict: FileDirConflict},
		{name: "local directory, remote file", l: d("l"), n: f("F"), want: Take, copyLocal: true, conflict: FileDirConflict},
		{name: "local directory replacing a file, remote edit", o: f("A"), l: d("l"), n: f("A2"), want: Take, copyLocal: true, conflict: FileDirConflict},
		{name: "remote replaced a directory by a file", o: d("o"), l: d("l"), n: f("F"), want: Prune, base: sub("o")},
		{name: "local replaced a directory by a file, remote changed it", o: d("o"), l: f("F"), n: d("n"), want: Restore,
			base: sub("o"), copyLocal: true, conflict: FileDirConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Resolve(tc.o, tc.l, tc.n, tc.unknown)
			if got.Action != tc.want || got.CopyLocal != tc.copyLocal || got.Base != tc.base || got.Conflict != tc.conflict {
				t.Fatalf("Resolve = %v copy %v base %s conflict %v; want %v copy %v base %s conflict %v",
					got.Action, got.CopyLocal, got.Base, got.Conflict, tc.want, tc.copyLocal, tc.base, tc.conflict)
			}
			if tc.attrs != nil && !got.Attrs.Equal(*tc.attrs) {
				t.Fatalf("attrs %+v, want %+v", got.Attrs, *tc.attrs)
			}
		})
	}
}
