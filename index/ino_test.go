package index

import (
	"context"
	"fmt"
	"testing"
)

// Inode numbers are never handed out twice: not after an unlink, not after
// a reopen (which drops the reserved block), not between Create and the
// inserts that let AUTOINCREMENT choose (CreateUnlinked); and a Create from
// a reserved block leaves sqlite_sequence alone.
func TestInodeNumbersNeverReused(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	seen := map[uint64]string{}
	note := func(ino uint64, what string) {
		t.Helper()
		if prev, ok := seen[ino]; ok {
			t.Fatalf("inode number %d given to %s and before to %s", ino, what, prev)
		}
		seen[ino] = what
	}
	seqOf := func(db *DB) (seq uint64) {
		t.Helper()
		if err := db.w.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'inodes'`).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	create := func(db *DB, name string) uint64 {
		t.Helper()
		a, err := db.Create(ctx, RootIno, name, NewNode{Mode: modeFile})
		if err != nil {
			t.Fatal(err)
		}
		note(a.Ino, name)
		return a.Ino
	}
	first := create(db, "a")
	seq := seqOf(db)
	for i := range 5 {
		create(db, fmt.Sprint("b", i))
	}
	if got := seqOf(db); got != seq {
		t.Errorf("sqlite_sequence moved from %d to %d on creates within a reserved block", seq, got)
	}
	if _, err := db.Unlink(ctx, RootIno, "b4"); err != nil {
		t.Fatal(err)
	}
	u, err := db.CreateUnlinked(ctx, RootIno, NewNode{Mode: modeFile})
	if err != nil {
		t.Fatal(err)
	}
	note(u.Ino, "an O_TMPFILE inode")
	if u.Ino <= first+inoBlock-1 {
		t.Errorf("AUTOINCREMENT gave %d, inside the block reserved from %d", u.Ino, first)
	}
	create(db, "c")
	if _, err := db.Create(ctx, RootIno, "c", NewNode{Mode: modeFile}); err == nil {
		t.Fatal("second create of c succeeded")
	}
	db.Close()
	db = reopen(t, path)
	for i := range 3 {
		create(db, fmt.Sprint("d", i))
	}
}
