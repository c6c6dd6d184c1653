package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

func openIndex(t *testing.T, path string) *index.DB {
	t.Helper()
	db, err := index.Open(context.Background(), path, index.Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// copyFile copies from to a new file to with mode perm.
func copyFile(t *testing.T, from, to string, perm os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, perm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestClaimDevice: a mount writes its device record with a new instance
// each time; a copy of the cache dir whose record another instance wrote
// since becomes a new device.
func TestClaimDevice(t *testing.T) {
	ctx := context.Background()
	log := zaptest.NewLogger(t)
	s := mem.New("devices")
	dir := t.TempDir()
	orig := filepath.Join(dir, "index.db")
	db := openIndex(t, orig)
	dev, err := deviceID(ctx, db, log)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := claimDevice(ctx, db, s, dev, log)
	if err != nil || c1.device != dev || c1.etag == "" {
		t.Fatalf("first claim %+v, %v", c1, err)
	}
	rec, _, err := bucket.ReadDevice(ctx, s, dev)
	if err != nil || rec.Instance != c1.instance || rec.Host != hostName() {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "index.db")
	copyFile(t, orig, copied, 0o600)

	db = openIndex(t, orig)
	defer db.Close()
	c2, err := claimDevice(ctx, db, s, dev, log)
	if err != nil || c2.device != dev || c2.instance == c1.instance {
		t.Fatalf("second claim of the original %+v, %v: want the same device, a new instance", c2, err)
	}
	cp := openIndex(t, copied)
	defer cp.Close()
	cdev, err := deviceID(ctx, cp, log)
	if err != nil || cdev != dev {
		t.Fatalf("the copy's id before its claim: %s, %v", cdev, err)
	}
	c3, err := claimDevice(ctx, cp, s, cdev, log)
	if err != nil || c3.device == dev {
		t.Fatalf("claim of the copy %+v, %v: want a new device", c3, err)
	}
	if v, err := cp.Meta(ctx, index.MetaDeviceID); err != nil || string(v) != c3.device {
		t.Fatalf("the copy's index says device %q, %v", v, err)
	}
	// A crash between the new instance and the record's write: the next
	// claim still knows the record as its own.
	if err := db.SetMeta(ctx, metaDevicePrevInst, []byte(c2.instance)); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMeta(ctx, metaDeviceInstance, []byte("never written")); err != nil {
		t.Fatal(err)
	}
	if c4, err := claimDevice(ctx, db, s, dev, log); err != nil || c4.device != dev {
		t.Fatalf("claim after a crash between token and record: %+v, %v", c4, err)
	}
}
