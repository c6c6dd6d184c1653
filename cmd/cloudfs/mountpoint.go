package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// checkMountpoint reports, as a one-line user error, why dir cannot be
// mounted on.
func checkMountpoint(dir string, nonempty bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", userError("mountpoint %s: %v", dir, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, syscall.ENOTCONN):
		return "", userError("mountpoint %s is a dead mount (its daemon is gone): run fusermount3 -u %s", abs, abs)
	case errors.Is(err, os.ErrNotExist):
		return "", userError("mountpoint %s does not exist", abs)
	case err != nil:
		return "", userError("mountpoint %s: %v", abs, err)
	case !fi.IsDir():
		return "", userError("mountpoint %s is not a directory", abs)
	}
	if mounted, err := isMountpoint(abs); err != nil {
		return "", err
	} else if mounted {
		return "", userError("mountpoint %s is already mounted", abs)
	}
	if !nonempty {
		d, err := os.Open(abs)
		if err != nil {
			return "", userError("mountpoint %s: %v", abs, err)
		}
		_, err = d.Readdirnames(1)
		d.Close()
		if err == nil {
			return "", userError("mountpoint %s is not empty (use -o nonempty to mount over it)", abs)
		}
		if err != io.EOF {
			return "", userError("mountpoint %s: %v", abs, err)
		}
	}
	return abs, nil
}

// isMountpoint reports whether dir (absolute) is a mount point according
// to /proc/self/mountinfo.
func isMountpoint(dir string) (bool, error) {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
