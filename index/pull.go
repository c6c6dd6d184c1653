package index

// Pulling another machine's commit into the index: ApplyPull makes a
// commit that another device made head the new base commit, merging it
// with what this machine changed since the old one (tree.Resolve's rules,
// applied to the live namespace instead of to trees).
//
// A pull walks the directories whose tree ids differ between the index
// (each directory's recorded tree_id, its base version) and the new
// commit, and only those this machine has loaded: a directory not loaded
// just gets its new tree id and totals, so a pull costs the directories
// changed that this machine has visited. In a loaded directory, each name
// the remote changed (base entry o != remote entry n) is decided against
// the local version l, read from the index: an inode this machine has not
// changed is replaced by the remote's version, a change on both sides is
// merged or leaves a conflict copy, and so on (see tree/resolve.go).
//
// What the remote changed replaces inodes rather than rewriting them: a
// file whose content changed gets a new inode under its name, so a
// descriptor opened before the pull keeps reading the version it opened
// (close-to-open), and a writer of the old inode is never overwritten. An
// inode that lost its last name this way is displaced: should it be
// written afterwards, it comes back as a conflict copy (resurrectTx).
// Renames the remote made are followed where both ends are in loaded
// directories (the local inode moves, with whatever this machine changed
// in it), and renames this machine made are followed through the
// departed table (the remote's edit of a file renamed here lands on it
// under its new name).
//
// The whole pull is one durable transaction, so kill -9 in the middle of
// one leaves the index as it was. It needs remote objects (trees,
// manifests) it may not have: it then changes nothing and returns the
// missing ids in PullResult.Need; the caller fetches them and calls again
// (each call gets one level deeper into the changed directories).
//
// Invariant kept (see remote_snapshot.go): a directory's tree_id describes
// its entries unless it, or an inode it names, is queued. A directory the
// merge leaves different from the remote's tree is queued (DirtyEntries),
// and so the next commit writes the merged result on top of the pulled
// commit.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// PullSource hands ApplyPull the remote objects it has fetched.
type PullSource interface {
	// Tree returns tree id decoded, or nil when it has not been fetched.
	Tree(id chunkstore.ID) *tree.Tree
	// Manifest returns manifest id decoded (checked against nothing: the
	// index checks its size), or nil when it has not been fetched.
	Manifest(id chunkstore.ID) *tree.Manifest
}

// Pull describes one pull for ApplyPull.
type Pull struct {
	// From is the base commit the caller read from the index (zero: none);
	// a pull finding another one changes nothing (ErrChanged).
	From chunkstore.ID
	// Commit is the remote head to pull, Head its commit object.
	Commit chunkstore.ID
	Head   *tree.Commit
	// FromAttrs are the root's attributes in From's commit (nil: not
	// known: local root attributes then count as unchanged only when
	// equal to the remote's).
	FromAttrs *tree.RootAttrs
	// Objects has the remote trees and manifests fetched so far.
	Objects PullSource
	// Device names this machine in conflict-copy names; Now is the time
	// they carry.
	Device string
	Now    time.Time
	// Pause, when set, is called inside the transaction once the merge is
	// applied and before it commits (fault injection: a test kills the
	// daemon there).
	Pause func()
}

// Invalidation is a change the kernel's caches must drop: the entry Name
// of directory Dir (Dir 0: none), and the attributes of inode Ino (0:
// none). Removed, with Dir and Name, is the inode that lost the name.
type Invalidation struct {
	Dir     uint64
	Name    string
	Removed uint64
	Ino     uint64
}

// PullResult says what ApplyPull did.
type PullResult struct {
	// Need lists the trees and manifests the pull needs and the source
	// lacks: nothing was applied; fetch them and call again.
	Need []chunkstore.ID
	// Invalidate lists what the kernel may have cached that changed.
	Invalidate []Invalidation
	// Orphaned are inodes that lost their last name (an open file keeps
	// them; the caller forgets those the kernel does not hold).
	Orphaned []uint64
	// Conflicts are the disagreements the merge met.
	Conflicts []Conflict
	// Counts: directories walked (loaded, changed), names added, removed
	// and changed, local inodes moved by the remote's renames.
	Dirs, Added, Removed, Changed, Moved int
}

// errNeed ends a pull transaction that lacks remote objects.
var errNeed = errors.New("pull needs remote objects")

// ApplyPull merges commit p.Commit into the index and makes it the base
// commit (see the file comment). The base commit must still be p.From, and
// p.Commit must not be the pending commit of an unfinished round of this
// machine (the round records it: ApplyCommit).
func (db *DB) ApplyPull(ctx context.Context, p Pull) (PullResult, error) {
	if p.Commit.IsZero() || p.Head == nil || p.Objects == nil {
		return PullResult{}, fmt.Errorf("apply pull: %w", ErrInvalid)
	}
	var res PullResult
	var need map[chunkstore.ID]bool
	db.wmu.Lock()
	defer db.wmu.Unlock()
	err := db.writeLocked(ctx, true, func(tx querier) error {
		t := &pullTx{db: db, tx: tx, p: &p, now: p.Now.UnixNano(), need: map[chunkstore.ID]bool{},
			override: map[dirName]*tree.Entry{}, links: map[uint64]linkFix{}, nlinks: map[uint64]uint32{}, shrunk: map[uint64]dirName{}}
		res, need = PullResult{}, t.need
		t.res = &res
		if err := t.run(); err != nil {
			return err
		}
		if len(t.need) > 0 {
			return errNeed
		}
		if p.Pause != nil {
			p.Pause()
		}
		return nil
	})
	if errors.Is(err, errNeed) {
		ids := make([]chunkstore.ID, 0, len(need))
		for id := range need {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b chunkstore.ID) int { return bytes.Compare(a[:], b[:]) })
		return PullResult{Need: ids}, nil
	}
	if err != nil {
		return PullResult{}, fmt.Errorf("apply pull of %s: %w", p.Commit, err)
	}
	return res, nil
}

// dirName is a name in a directory.
type dirName struct {
	dir  uint64
	name string
}

// pullTx is the state of one ApplyPull transaction.
type pullTx struct {
	db   *DB
	tx   querier
	p    *Pull
	now  int64
	need map[chunkstore.ID]bool
	res  *PullResult
	// override gives the base entry of names a remote rename moved a
	// local inode to (the entry it had under its old name).
	override map[dirName]*tree.Entry
	// links: the link count hard-linked inodes kept under remote names
	// end the pull with (keepsLink).
	links map[uint64]linkFix
	// nlinks: each inode's link count when the pull first saw it.
	nlinks map[uint64]uint32
	// shrunk: inodes that lost a name to a remote replacement, with the
	// name (their count is settled at the end).
	shrunk map[uint64]dirName
}

func (t *pullTx) run() error {
	var base, pending []byte
	if err := t.tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, MetaBaseCommit).Scan(&base); err != nil && !isNoRows(err) {
		return err
	}
	if string(base) != string(t.p.From[:]) && !(len(base) == 0 && t.p.From.IsZero()) {
		return fmt.Errorf("base commit is %x, not %s: %w", base, t.p.From, ErrChanged)
	}
	if err := t.tx.QueryRow(`SELECT value FROM meta WHERE key = ?`, MetaPendingCommit).Scan(&pending); err != nil && !isNoRows(err) {
		return err
	}
	if string(pending) == string(t.p.Commit[:]) {
		return fmt.Errorf("commit %s is this machine's pending commit: %w", t.p.Commit, ErrInvalid)
	}
	var rootTree []byte
	if err := t.tx.QueryRow(`SELECT tree_id FROM inodes WHERE ino = ?`, RootIno).Scan(&rootTree); err != nil {
		return err
	}
	var rootBase chunkstore.ID
	if err := scanID(rootTree, &rootBase); err != nil {
		return err
	}
	if err := t.scanRenames(rootBase, t.p.Head.Root); err != nil {
		return err
	}
	if len(t.need) > 0 {
		return nil // fetch first: the renames decide what moves where
	}
	if err := t.rootAttrs(); err != nil {
		return err
	}
	if _, err := t.dir(RootIno, "", rootBase, t.p.Head.Root, t.p.Head.Stats); err != nil {
		return err
	}
	if len(t.need) > 0 {
		return nil
	}
	if err := t.settleLinks(); err != nil {
		return err
	}
	if err := recordConflictsTx(t.tx, t.res.Conflicts); err != nil {
		return err
	}
	if _, err := t.tx.Exec(`INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)`, MetaBaseCommit, t.p.Commit[:]); err != nil {
		return err
	}
	_, err := t.tx.Exec(`DELETE FROM meta WHERE key = ?`, MetaRemoteHead)
	return err
}

// tree returns tree id from the source (the empty tree for the zero id),
// or records it as needed and returns nil.
func (t *pullTx) tree(id chunkstore.ID) *tree.Tree {
	if id.IsZero() || id == tree.EmptyTreeID {
		return &tree.Tree{}
	}
	tr := t.p.Objects.Tree(id)
	if tr == nil {
		t.need[id] = true
	}
	return tr
}

// manifest returns manifest id from the source, or records it as needed.
func (t *pullTx) manifest(id chunkstore.ID) *tree.Manifest {
	m := t.p.Objects.Manifest(id)
	if m == nil {
		t.need[id] = true
	}
	return m
}

// conflict records a conflict at path (copy: where local's version went).
func (t *pullTx) conflict(kind tree.ConflictKind, path, copyPath string) {
	t.res.Conflicts = append(t.res.Conflicts, Conflict{Time: t.p.Now, Kind: kind, Path: path, CopyPath: copyPath})
}

// rootAttrs merges the root directory's attributes: the remote's where
// this machine left them as they were in From's commit.
func (t *pullTx) rootAttrs() error {
	l, err := t.local(0, "", RootIno)
	if err != nil {
		return err
	}
	asEntry := func(a *tree.RootAttrs) *tree.Entry {
		return &tree.Entry{Name: "/", Type: tree.TypeDir, Mode: a.Mode, UID: a.UID, GID: a.GID, MtimeNs: a.MtimeNs, Xattrs: a.Xattrs}
	}
	n := asEntry(&t.p.Head.RootAttrs)
	o := n
	if t.p.FromAttrs != nil {
		o = asEntry(t.p.FromAttrs)
	}
	if tree.SameVersion(o, n) {
		return nil
	}
	le := l.entry
	le.Name = "/"
	d := tree.Resolve(o, &le, n, false)
	if d.Action != tree.MergeDirs {
		return fmt.Errorf("root attributes: merge decided %v: %w", d.Action, ErrInvalid)
	}
	if d.Conflict != 0 {
		t.conflict(d.Conflict, "/", "")
	}
	if err := t.setAttrs(l, d.Attrs); err != nil {
		return err
	}
	na := tree.AttrsOf(n)
	if !d.Attrs.Equal(na) {
		return t.db.markDirtyTx(t.tx, RootIno, DirtyMeta)
	}
	return nil
}

// settleLinks sets the link counts of the hard-linked inodes the pull
// touched: one kept under remote names gets the remote's count plus this
// machine's changes of it (keepsLink); one that only lost names to remote
// replacements keeps the names it has left (the remote's trees name the
// rest of its former names anew: a commit rewrites every name of a changed
// hard-linked file). Never fewer than its names here.
func (t *pullTx) settleLinks() error {
	for ino := range t.shrunk {
		if _, kept := t.links[ino]; !kept {
			t.links[ino] = linkFix{want: 0, remote: -1}
		}
	}
	for ino, fix := range t.links {
		var nlink, names uint32
		var mode uint32
		err := t.tx.QueryRow(`SELECT mode, nlink, (SELECT COUNT(*) FROM dentries WHERE ino = ?1) FROM inodes WHERE ino = ?1`, ino).
			Scan(&mode, &nlink, &names)
		if isNoRows(err) {
			continue
		}
		if err != nil {
			return err
		}
		if mode&sIFMT == sIFDIR || nlink == 0 {
			continue
		}
		final := uint32(max(fix.want, int(names)))
		if fix.remote >= 0 && int(final) != fix.remote {
			// The remote's entries carry another count: the next commit
			// writes this one to every name.
			if err := t.db.markDirtyTx(t.tx, ino, DirtyMeta); err != nil {
				return err
			}
		}
		if final == nlink {
			continue
		}
		if _, err := t.tx.Exec(`UPDATE inodes SET nlink = ? WHERE ino = ?`, final, ino); err != nil {
			return err
		}
		t.invalidate(Invalidation{Ino: ino})
		if final == 0 {
			last := t.shrunk[ino]
			t.db.addOrphan(ino)
			t.res.Orphaned = append(t.res.Orphaned, ino)
			if err := t.db.displaceTx(t.tx, ino, last.dir, last.name, t.now); err != nil {
				return err
			}
		}
	}
	return nil
}
