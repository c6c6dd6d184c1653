package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudfs/cloudfs/integration/harness"
	"golang.org/x/sys/unix"
)

// sh runs a shell command line in dir and fails the test on error.
func sh(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("sh", "-ec", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is required (apt-get install it; .ci/install-deps does): %v", n, err)
		}
	}
}

// snapshot describes every file under dir: type, mode, size, link count,
// inode, times, symlink target, content and xattrs, one line per path.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s mode=%o nlink=%d uid=%d gid=%d ino=%d mtime=%d", rel, st.Mode, st.Nlink, st.Uid, st.Gid, st.Ino, st.Mtim.Nano())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %s", target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " size=%d sum=%x", len(data), bytesSum(data))
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			buf := make([]byte, 4096)
			n, err := unix.Llistxattr(p, buf)
			if err != nil {
				return err
			}
			for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
				if name == "" {
					continue
				}
				v := make([]byte, 4096)
				vn, err := unix.Lgetxattr(p, name, v)
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, " %s=%q", name, v[:vn])
			}
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func bytesSum(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// TestRemount builds a tree of every kind of inode, then checks it is
// unchanged, inode numbers included, after a clean unmount and after a
// kill -9 of the daemon.
func TestRemount(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{})
	sh(t, m.Dir, `
		mkdir -p a/b/c
		printf 'hello\n' > a/file
		head -c 3000000 /dev/urandom > a/b/big
		ln a/file a/b/hardlink
		ln -s ../file a/b/symlink
		mkfifo a/fifo
		chmod 0640 a/file
		chmod 2750 a/b
		touch -d '2001-02-03 04:05:06.789' a/b/big
		setfattr -n user.color -v blue a/file
		printf 'x' | dd of=a/b/big bs=1 seek=1000000 conv=notrunc status=none
		truncate -s 5000000 a/b/big
	`)
	before := snapshot(t, m.Dir)
	m.Unmount()
	m.Remount()
	if after := snapshot(t, m.Dir); after != before {
		t.Errorf("after remount:\n%s\nbefore:\n%s", after, before)
	}
	// Closed data survives kill -9 of the daemon.
	sh(t, m.Dir, `printf 'durable' > a/closed; mv a/closed a/b/c/closed`)
	before = snapshot(t, m.Dir)
	m.Kill9()
	m.Remount()
	if after := snapshot(t, m.Dir); after != before {
		t.Errorf("after kill -9:\n%s\nbefore:\n%s", after, before)
	}
}

// TestMmap writes through a shared writable mapping and reads the bytes
// back after a remount.
func TestMmap(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{})
	name := m.Path("mapped")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	const size = 3 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	for i := 0; i < size; i += 4096 {
		mem[i] = byte(i / 4096)
		want[i] = byte(i / 4096)
	}
	copy(mem[size-5:], "tail!")
	copy(want[size-5:], "tail!")
	if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	if err := unix.Munmap(mem); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.Unmount()
	m.Remount()
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("mapped file differs after remount (len %d)", len(got))
	}
}

// TestCopyFileRange copies within the mount with copy_file_range(2).
func TestCopyFileRange(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{})
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	if err := os.WriteFile(m.Path("src"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(m.Path("src"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(m.Path("dst"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Write([]byte("prefix")); err != nil {
		t.Fatal(err)
	}
	offIn, offOut := int64(100), int64(3)
	n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(dst.Fd()), &offOut, 1<<20, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	want := append([]byte("pre"), data[100:100+n]...)
	got, _ := os.ReadFile(m.Path("dst"))
	if n != 1<<20 || !bytes.Equal(got, want) {
		t.Fatalf("copied %d bytes; content differs: %d vs %d bytes", n, len(got), len(want))
	}
	sh(t, m.Dir, `cp src copy && cmp src copy`)
}

// TestPrograms runs real programs on the mount and checks their results
// after a remount.
func TestPrograms(t *testing.T) {
	requireTool(t, "tar", "git", "sqlite3", "rsync", "setfattr", "getfattr", "go", "vim")
	m := harness.StartMount(t, harness.MountOptions{})
	src := t.TempDir()
	sh(t, src, `
		mkdir -p tree/sub/deeper
		for i in $(seq 1 50); do head -c $((i * 997)) /dev/urandom > tree/sub/f$i; done
		printf 'text\n' > tree/sub/deeper/t.txt
		ln -s sub/deeper/t.txt tree/link
		ln tree/sub/f1 tree/hard
		chmod 0600 tree/sub/f2
		chmod 0755 tree/sub/f3
		touch -d '2010-01-01' tree/sub/f4
	`)
	t.Run("tar", func(t *testing.T) {
		sh(t, m.Dir, `mkdir tar && tar -C "$SRC/tree" -cf - . | tar -C tar -xpf - && diff -r "$SRC/tree" tar
			tar -C tar -cf "$SRC/back.tar" . && mkdir "$SRC/back" && tar -C "$SRC/back" -xpf "$SRC/back.tar" && diff -r "$SRC/tree" "$SRC/back"
			[ "$(stat -c %a tar/sub/f2)" = 600 ] && [ "$(stat -c %a tar/sub/f3)" = 755 ] && [ "$(stat -c %Y tar/sub/f4)" = "$(stat -c %Y "$SRC/tree/sub/f4")" ]
			[ "$(stat -c %h tar/hard)" = 2 ]`, "SRC="+src)
	})
	t.Run("rsync", func(t *testing.T) {
		sh(t, m.Dir, `rsync -aH "$SRC/tree/" rs/ && out=$(rsync -aHc -n -i "$SRC/tree/" rs/) && [ -z "$out" ] || { echo "differs: $out"; exit 1; }`, "SRC="+src)
	})
	t.Run("editor-save", func(t *testing.T) {
		// What editors do: write a temp file, fsync it, give it the old
		// file's mode and xattrs, rename it over the old file.
		sh(t, m.Dir, `printf 'old\n' > doc.txt && chmod 0640 doc.txt && setfattr -n user.tag -v keep doc.txt`)
		old, err := os.Stat(m.Path("doc.txt"))
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := os.OpenFile(m.Path(".doc.txt.swp"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmp.WriteString("new\n"); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Chmod(old.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fsetxattr(int(tmp.Fd()), "user.tag", []byte("keep"), 0); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(m.Path(".doc.txt.swp"), m.Path("doc.txt")); err != nil {
			t.Fatal(err)
		}
		// vim itself, writing through a new file and a rename.
		sh(t, m.Dir, `vim -u NONE -i NONE -N -n -E -s -c 'set backup backupcopy=no writebackup' -c '%s/new/newer/' -c 'wq' doc.txt || true
			[ "$(cat doc.txt)" = newer ] && [ "$(stat -c %a doc.txt)" = 640 ] && [ ! -e doc.txt~ -o -s doc.txt~ ]
			[ "$(getfattr --only-values -n user.tag doc.txt)" = keep ]`)
	})
	t.Run("sqlite", func(t *testing.T) {
		sh(t, m.Dir, `sqlite3 db.sqlite "PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000) INSERT INTO t SELECT i, hex(randomblob(40)) FROM n;
			UPDATE t SET v = 'x' WHERE k % 7 = 0; DELETE FROM t WHERE k % 11 = 0;" >/dev/null
			[ "$(sqlite3 db.sqlite 'PRAGMA integrity_check;')" = ok ]`)
	})
	t.Run("git", func(t *testing.T) {
		sh(t, m.Dir, `git init -q repo && cd repo && cp -r "$SRC/tree/." . && git add -A && git -c user.name=t -c user.email=t@t commit -qm one
			echo more >> sub/deeper/t.txt && git -c user.name=t -c user.email=t@t commit -qam two
			[ -z "$(git status --porcelain)" ] && git fsck --full --strict 2>&1
			cd .. && git clone -q repo clone && cd clone && [ -z "$(git status --porcelain)" ] && git fsck --full 2>&1`, "SRC="+src)
	})
	t.Run("go-build", func(t *testing.T) {
		sh(t, m.Dir, `mkdir gomod && cd gomod && printf 'module example.com/hello\n\ngo 1.22\n' > go.mod
			printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello from cloudfs") }\n' > main.go
			go build -o hello . && [ "$(./hello)" = "hello from cloudfs" ]`, "GOFLAGS=-mod=mod", "GOCACHE="+t.TempDir())
	})
	m.Unmount()
	m.Remount()
	sh(t, m.Dir, `diff -r "$SRC/tree" tar && [ "$(sqlite3 db.sqlite 'PRAGMA integrity_check;')" = ok ]
		[ "$(sqlite3 db.sqlite 'SELECT count(*) FROM t;')" = 18182 ]
		cd repo && [ -z "$(git status --porcelain)" ] && git fsck --full 2>&1 && cd ../gomod && [ "$(./hello)" = "hello from cloudfs" ]
		[ "$(cat ../doc.txt)" = newer ] && [ "$(getfattr --only-values -n user.tag ../doc.txt)" = keep ]`, "SRC="+src)
}

// TestReadOnly: -o ro serves the tree and refuses changes with EROFS.
func TestReadOnly(t *testing.T) {
	m := harness.StartMount(t, harness.MountOptions{})
	sh(t, m.Dir, `printf data > f && mkdir d`)
	m.Unmount()
	m.Opts.Args = []string{"-o", "ro"}
	m.Remount()
	if got, err := os.ReadFile(m.Path("f")); err != nil || string(got) != "data" {
		t.Fatalf("read on ro mount: %q %v", got, err)
	}
	for _, err := range []error{
		os.WriteFile(m.Path("f"), []byte("x"), 0o644),
		os.Mkdir(m.Path("e"), 0o755),
		os.Remove(m.Path("d")),
		os.Chmod(m.Path("f"), 0o600),
	} {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("change on ro mount: %v, want EROFS", err)
		}
	}
}
