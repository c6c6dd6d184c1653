package integration

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// statT returns the stat(2) of path.
func statT(t *testing.T, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// checkOneInode fails unless the paths under mnt (stat'ed in the order
// given, each first use of a directory loading it) are one inode with
// nlink links whose content has sha256 sum.
func checkOneInode(t *testing.T, mnt string, nlink uint64, sum string, paths ...string) {
	t.Helper()
	var ino uint64
	for i, p := range paths {
		st := statT(t, mnt+"/"+p)
		if st.Nlink != nlink {
			t.Fatalf("%s: nlink %d, want %d", p, st.Nlink, nlink)
		}
		if i == 0 {
			ino = st.Ino
		} else if st.Ino != ino {
			t.Fatalf("%s: st_ino %d, %s has %d: want one inode", p, st.Ino, paths[0], ino)
		}
	}
	checkFiles(t, mnt, map[string]string{paths[len(paths)-1]: sum}, "hard links")
}

// TestFreshMountHardLinksRootAttrs writes hard links across directories
// and the root directory's attributes through one mount, syncs, and mounts
// the bucket again with an empty cache dir: the names are one inode with
// the right link count (also before the directories of the other names
// are loaded), the root has its mode, owner, mtime and xattr, and the
// commit counts the volume. Then a fresh mount that has seen one name
// edits it, and a third mount sees the edit through every name.
func TestFreshMountHardLinksRootAttrs(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "fresh"}
	a := vol.mount(t, "", "--settle-delay", "0")

	data := patterned(7, 3<<20+11)
	writeClose(t, a.Path("a", "x"), data)
	if err := os.MkdirAll(a.Path("b", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]string{{"b", "z"}, {"b", "deep", "y"}} {
		if err := os.Link(a.Path("a", "x"), a.Path(p...)); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	if err := unix.Setxattr(a.Dir, "user.volume", []byte("photos"), 0); err != nil {
		t.Fatalf("setxattr on the root: %v", err)
	}
	if err := os.Chown(a.Dir, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(a.Dir, 0o751); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a.Dir, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	cloudfsSyncOK(t, m, a.Dir)

	// The commit counts x, z and y (three names of one 3 MiB file) and the
	// directories /, a, b, b/deep; status shows the same.
	ctx := context.Background()
	head, _, _, err := bucket.ReadHead(ctx, vol.store(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := bucket.ReadCommit(ctx, vol.store(t), head)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stats.Files != 3 || c.Stats.Dirs != 4 || c.Stats.Bytes != 3*uint64(len(data)) || c.Stats.Chunks < 3 {
		t.Fatalf("commit stats %+v", c.Stats)
	}
	if st := cloudfsStatus(t, a.Dir); st.Volume == nil || st.Volume.Files != 3 || st.Volume.Bytes != c.Stats.Bytes {
		t.Fatalf("status volume %+v, commit stats %+v", st.Volume, c.Stats)
	}
	a.Unmount()

	b := vol.mount(t, "")
	root := statT(t, b.Dir)
	if root.Mode != syscall.S_IFDIR|0o751 || root.Uid != 1234 || root.Gid != 5678 || root.Mtim.Nano() != mtime.UnixNano() {
		t.Fatalf("root on a fresh mount: mode %o uid %d gid %d mtime %d; want %o 1234 5678 %d",
			root.Mode, root.Uid, root.Gid, root.Mtim.Nano(), syscall.S_IFDIR|0o751, mtime.UnixNano())
	}
	v := make([]byte, 64)
	if n, err := unix.Getxattr(b.Dir, "user.volume", v); err != nil || string(v[:n]) != "photos" {
		t.Fatalf("root xattr on a fresh mount: %q, %v", v[:max(n, 0)], err)
	}
	// y's directory is loaded first: it reports three links before a and
	// b's own entries are seen.
	checkOneInode(t, b.Dir, 3, sha(data), "b/deep/y", "a/x", "b/z")
	b.Unmount()

	// A fresh mount sees only a/x, edits it in place and syncs: the commit
	// rewrites z and y too (it loads b and b/deep to find them).
	e := vol.mount(t, "", "--settle-delay", "0")
	if st := statT(t, e.Path("a", "x")); st.Nlink != 3 {
		t.Fatalf("a/x on the editing mount: nlink %d", st.Nlink)
	}
	patch := patterned(8, 4096)
	f, err := os.OpenFile(e.Path("a", "x"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(patch, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(data[1<<20:], patch)
	cloudfsSyncOK(t, m, e.Dir)
	e.Unmount()
	vol.checkReachable(t)

	g := vol.mount(t, "")
	checkOneInode(t, g.Dir, 3, sha(data), "b/z", "b/deep/y", "a/x")
	checkFiles(t, g.Dir, map[string]string{"b/z": sha(data), "b/deep/y": sha(data)}, "every name after the edit")
	g.Unmount()
}
