package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestWritebackS3 mounts s3://bucket/vol on MinIO and shows that what is
// written reaches the bucket as a tree that a second machine (a fresh
// cache dir) mounts lazily, that identical content is stored once, and
// what copies and edits add to the bucket.
func TestWritebackS3(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "vol"}
	vol.initFixedChunking(t)
	a := vol.mount(t, "", "--settle-delay", "0")

	t.Run("SecondMountReadsIdenticalBytes", func(t *testing.T) {
		writeClose(t, a.Path("hello.txt"), []byte("hello, bucket\n"))
		writeClose(t, a.Path("docs", "deep", "er", "note.md"), []byte("# note\n"))
		writeClose(t, a.Path("docs", "three-mib.bin"), patterned(1, 3<<20+17))
		writeClose(t, a.Path("docs", "empty"), nil)
		if err := os.Symlink("docs/deep", a.Path("link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(a.Path("emptydir"), 0o750); err != nil {
			t.Fatal(err)
		}
		d := cloudfsSyncOK(t, m, a.Dir)
		t.Logf("cloudfs sync took %v", d.Round(time.Millisecond))
		if st := cloudfsStatus(t, a.Dir); st.QueuedFiles != 0 || st.LastCommit == "" || st.LastCommit != vol.head(t) {
			t.Fatalf("after sync: status %+v, head %s", st, vol.head(t))
		}
		vol.checkReachable(t)
		b := vol.mount(t, "")
		sameTree(t, treeSums(t, b.Dir), treeSums(t, a.Dir), "second mount on an empty cache dir")
		fi, err := os.Stat(b.Path("emptydir"))
		if err != nil || fi.Mode().Perm() != 0o750 {
			t.Fatalf("emptydir on the second mount: %v %v", fi, err)
		}
		b.Unmount()
	})

	t.Run("IdenticalFilesStoredOnce", func(t *testing.T) {
		data := patterned(2, 6<<20)
		before := vol.chunks(t)
		writeClose(t, a.Path("dup", "one"), data)
		cloudfsSyncOK(t, m, a.Dir)
		one := vol.chunks(t) - before
		writeClose(t, a.Path("dup", "two"), data)
		cloudfsSyncOK(t, m, a.Dir)
		two := vol.chunks(t) - before
		t.Logf("chunk objects: %d after the first copy, %d after the second", one, two)
		if one < 3 || two != one {
			t.Fatalf("two identical 6 MiB files: %d chunk objects after the first, %d after both; want the same (>= 3)", one, two)
		}
		if st := cloudfsStatus(t, a.Dir); st.ChunksPresent < one {
			t.Errorf("status counts %d chunks already present, want >= %d", st.ChunksPresent, one)
		}
		vol.checkReachable(t)
	})

	const bigSize = 64 << 20
	big := patterned(3, bigSize)
	t.Run("CopyAddsNothing", func(t *testing.T) {
		writeClose(t, a.Path("big"), big)
		cloudfsSyncOK(t, m, a.Dir)
		added := vol.addedBy(t, a.Dir, func() {
			if out, err := exec.Command("cp", a.Path("big"), a.Path("big.copy")).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
		})
		t.Logf("cp of a 64 MiB file added %d bytes to the bucket", added)
		if added > 256<<10 {
			t.Fatalf("cp of a 64 MiB file added %d bytes; want only trees and a commit (< 256 KiB)", added)
		}
		checkFiles(t, a.Dir, map[string]string{"big.copy": sha(big)}, "after cp")
		vol.checkReachable(t)
	})

	t.Run("InPlaceEdit", func(t *testing.T) {
		patch := patterned(4, 1<<20)
		off := int64(bigSize/2 + 12345)
		added := vol.addedBy(t, a.Dir, func() {
			f, err := os.OpenFile(a.Path("big"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(patch, off); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		})
		copy(big[off:], patch)
		t.Logf("in-place 1 MiB edit of a 64 MiB file added %.2f MiB", float64(added)/(1<<20))
		if added > 2<<20 {
			t.Fatalf("in-place 1 MiB edit added %d bytes; want <= 2 MiB", added)
		}
		vol.checkReachable(t)
	})

	t.Run("EditorResave", func(t *testing.T) {
		patch := patterned(5, 1<<20)
		off := int64(bigSize / 4)
		added := vol.addedBy(t, a.Dir, func() {
			if err := editorSave(a.Path("big"), off, patch); err != nil {
				t.Fatal(err)
			}
		})
		copy(big[off:], patch)
		t.Logf("editor-style resave (temp + rename) with 1 MiB changed added %.2f MiB", float64(added)/(1<<20))
		if added > 8<<20 {
			t.Fatalf("editor-style resave added %d bytes; want <= 8 MiB", added)
		}
		vol.checkReachable(t)
		b := vol.mount(t, "")
		checkFiles(t, b.Dir, map[string]string{"big": sha(big), "big.copy": sha(patterned(3, bigSize))}, "fresh mount after the edits")
		b.Unmount()
	})
}

// TestWritebackOff: with --writeback=false, close() returns once the file
// is committed: head already names it.
func TestWritebackOff(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "sync"}
	a := vol.mount(t, "", "--writeback=false")
	store := vol.store(t)
	for i, name := range []string{"first", "second"} {
		data := patterned(uint64(10+i), 2<<20+i)
		start := time.Now()
		writeClose(t, a.Path(name), data)
		t.Logf("close of a 2 MiB file returned after %v", time.Since(start).Round(time.Millisecond))
		size, ok := rootEntrySize(t, store, name)
		if !ok || size != uint64(len(data)) {
			t.Fatalf("after close of %s: head's root has it %v with %d bytes, want %d", name, ok, size, len(data))
		}
	}
	vol.checkReachable(t)
	if st := cloudfsStatus(t, a.Dir); st.QueuedFiles != 0 {
		t.Fatalf("queued after close with --writeback=false: %+v", st)
	}
}

// rootEntrySize looks name up in the root tree of the store's head.
func rootEntrySize(t *testing.T, s chunkstore.Store, name string) (uint64, bool) {
	t.Helper()
	ctx := context.Background()
	head, _, ok, err := bucket.ReadHead(ctx, s)
	if err != nil || !ok {
		t.Fatalf("head: %v %v", ok, err)
	}
	c, err := bucket.ReadCommit(ctx, s, head)
	if err != nil {
		t.Fatal(err)
	}
	root, err := bucket.NewLoader(s).Tree(ctx, c.Root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range root.Entries {
		if e.Name == name {
			return e.Size, true
		}
	}
	return 0, false
}

// TestWritebackS3BadInput: wrong credentials, a missing bucket and an
// endpoint nobody listens on each fail the mount with one line and a
// non-zero exit; sync and status on what is not a cloudfs mount too.
func TestWritebackS3BadInput(t *testing.T) {
	m := harness.StartMinIO(t)
	closed, err := freePortForTest()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		remote string
		env    []string
		args   []string
		want   []string
	}{
		{"WrongSecret", "s3://" + m.Bucket + "/x", []string{"AWS_SECRET_ACCESS_KEY=wrong-" + m.SecretKey}, nil, []string{"credentials"}},
		{"MissingBucket", "s3://no-such-bucket-" + strings.ToLower(m.AccessKey) + "/x", nil, nil, []string{"does not exist"}},
		{"ClosedPort", "s3://" + m.Bucket + "/x", nil,
			[]string{"--endpoint", "http://127.0.0.1:" + closed, "--connect-timeout", "2s"}, []string{"127.0.0.1:" + closed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mnt, cache := t.TempDir(), t.TempDir()
			env := append(m.Env(), tc.env...)
			start := time.Now()
			args := append(append([]string{"mount", "--cache-dir", cache}, tc.args...), tc.remote, mnt)
			code, out := cloudfsCmd(t, env, args...)
			t.Logf("exit %d after %v: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
			if code == 0 {
				t.Fatal("mount succeeded")
			}
			oneLine(t, out, tc.want...)
			if harness.Mounted(mnt) {
				t.Fatal("mounted anyway")
			}
		})
	}
	t.Run("NotACloudfsMount", func(t *testing.T) {
		dir := t.TempDir()
		for _, args := range [][]string{{"sync", dir}, {"status", dir}, {"status", "--json", "/proc"}, {"sync", filepath.Join(dir, "missing")}} {
			code, out := cloudfsCmd(t, nil, args...)
			t.Logf("cloudfs %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(out))
			if code == 0 {
				t.Fatalf("cloudfs %v succeeded", args)
			}
			oneLine(t, out, "not a cloudfs mount")
		}
	})
}
