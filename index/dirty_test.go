package index

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A failure recorded against the seq an upload read does not stick to an
// entry queued again meanwhile: that change gets an attempt of its own.
func TestFailDirtyKeepsANewerChange(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	f, err := db.Create(ctx, RootIno, "f", NewNode{Mode: modeFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetAttr(ctx, f.Ino, AttrChange{Mask: SetMode, Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	read, err := db.Dirty(ctx, f.Ino)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetAttr(ctx, f.Ino, AttrChange{Mask: SetMode, Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	if err := db.FailDirty(ctx, f.Ino, read.Seq, errors.New("staged data vanished"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if it, err := db.Dirty(ctx, f.Ino); err != nil || it.Attempts != 0 || it.LastError != "" || !it.NextTry.IsZero() {
		t.Fatalf("entry queued again after the attempt read it: %+v, %v; want it fresh", it, err)
	}
	cur, _ := db.Dirty(ctx, f.Ino)
	if err := db.FailDirty(ctx, f.Ino, cur.Seq, errors.New("boom"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if it, _ := db.Dirty(ctx, f.Ino); it.Attempts != 1 || it.LastError != "boom" {
		t.Fatalf("failure at the current seq: %+v", it)
	}
	if err := db.FailDirty(ctx, 9999, 1, errors.New("x"), time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failure of an entry not queued: %v, want ErrNotFound", err)
	}
}
