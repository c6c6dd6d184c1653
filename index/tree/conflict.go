package tree

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ConflictKind says what a Conflict was about.
type ConflictKind uint8

// Conflict kinds.
const (
	// ContentConflict: both sides changed a non-directory differently.
	// Remote's version keeps the name; local's is the copy at CopyPath.
	ContentConflict ConflictKind = iota + 1
	// FileDirConflict: one side has a directory and the other something
	// else under one name. Remote's version keeps the name; local's is the
	// copy at CopyPath.
	FileDirConflict
	// DeleteModifyConflict: one side deleted what the other changed. The
	// change survives; there is no copy. For a deleted directory it is
	// reported for each change inside that survives, or for the directory
	// itself when only its attributes changed.
	DeleteModifyConflict
	// MetadataConflict: both sides set the same attribute (mode, owner or
	// xattrs) of Path to different values; remote's value is kept. Two
	// different mtimes are not a conflict: the later one is kept.
	MetadataConflict
)

func (k ConflictKind) String() string {
	switch k {
	case ContentConflict:
		return "content"
	case FileDirConflict:
		return "file-vs-directory"
	case DeleteModifyConflict:
		return "delete-vs-modify"
	case MetadataConflict:
		return "metadata"
	}
	return fmt.Sprintf("conflict(%d)", uint8(k))
}

// Conflict is one place where the two sides of a merge disagreed. Paths are
// relative to the root, slash-separated.
type Conflict struct {
	Kind ConflictKind
	Path string
	// CopyPath is where the displaced version now is (a sibling of Path),
	// or "" when nothing was displaced.
	CopyPath string
	// CopyFromLocal tells whose version is at CopyPath: always local's (the
	// remote's keeps its name); kept for readers of older results.
	CopyFromLocal bool
}

// ConflictTimeLayout is how the time appears in a conflict-copy name.
const ConflictTimeLayout = "2006-01-02 150405"

const (
	maxDeviceInName = 64 // bytes of the device name kept in a copy's name
	maxExt          = 32 // a longer "extension" is treated as part of the stem
)

// ConflictName returns the name of a conflict copy of the entry name made
// for device at t: "stem (conflict device 2026-11-24 131500).ext", where ext
// is the final extension of name (".txt" of "report.txt", ".gz" of
// "a.tar.gz"; none for ".bashrc" or "notes."; none for a directory, dir).
// n > 1 is added as a counter, "stem (conflict device 2026-11-24 131500
// 2).ext", to avoid a taken name. The time is formatted in t's location.
// '/' and NUL in device become '_'. The result is a valid entry name: when
// it would exceed MaxNameLen bytes the stem is shortened (on a UTF-8
// boundary).
func ConflictName(name string, dir bool, device string, t time.Time, n int) string {
	stem, ext := splitExt(name)
	if dir {
		stem, ext = name, ""
	}
	device = truncate(strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, device), maxDeviceInName)
	if device == "" {
		device = "unknown"
	}
	suffix := " (conflict " + device + " " + t.Format(ConflictTimeLayout)
	if n > 1 {
		suffix += " " + strconv.Itoa(n)
	}
	suffix += ")"
	stem = truncate(stem, MaxNameLen-len(suffix)-len(ext))
	return stem + suffix + ext
}

// splitExt splits name before its final extension: a '.' that is neither
// the first nor the last byte, followed by at most maxExt bytes.
func splitExt(name string) (stem, ext string) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 || len(name)-i > maxExt {
		return name, ""
	}
	return name[:i], name[i:]
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// UniqueConflictName returns the first ConflictName not taken.
func UniqueConflictName(name string, dir bool, device string, t time.Time, taken func(string) bool) string {
	for n := 1; ; n++ {
		if c := ConflictName(name, dir, device, t, n); !taken(c) {
			return c
		}
	}
}
