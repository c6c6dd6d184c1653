package fs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MountType returns the file system type ("fuse.cloudfs", "ext4", ...) of
// the mount on dir according to /proc/self/mountinfo, and whether dir is a
// mount point at all. dir is made absolute and its parent's symlinks are
// resolved; when several mounts are stacked on dir, the last (the one on
// top) wins.
func MountType(dir string) (typ string, mounted bool, err error) {
	m, mounted, err := mountOn(dir)
	return m.typ, mounted, err
}

// mountEntry is what the mount table says of one mount.
type mountEntry struct {
	typ string // file system type
	dev string // device number, "major:minor"
}

// mountOn returns the mount table's entry for the mount on dir (see
// MountType), read without touching dir itself: the daemon must never
// make a request to its own mount, which a kill -9 could leave
// unanswered with the calling thread stuck in the kernel for good.
func mountOn(dir string) (m mountEntry, mounted bool, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return m, false, err
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(r, filepath.Base(abs))
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m, false, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != abs {
			continue
		}
		mounted, m = true, mountEntry{dev: fields[2]}
		// Optional fields end with "-", then type, source, options.
		for i := 6; i+1 < len(fields); i++ {
			if fields[i] == "-" {
				m.typ = fields[i+1]
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		return mountEntry{}, false, fmt.Errorf("read mount table: %w", err)
	}
	return m, mounted, nil
}

// unescapeMountinfo undoes the kernel's octal escapes in mountinfo paths
// (\040 for a space, \011 tab, \012 newline, \134 backslash).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
