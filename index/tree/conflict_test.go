package tree

import (
	"strings"
	"testing"
	"time"
)

func TestConflictName(t *testing.T) {
	at := time.Date(2026, 11, 24, 13, 15, 0, 0, time.UTC)
	long := strings.Repeat("é", 127) + ".txt" // 258 bytes
	tests := []struct {
		name, device string
		n            int
		want         string
	}{
		{"report.txt", "laptop", 1, "report (conflict laptop 2026-11-24 131500).txt"},
		{"report.txt", "laptop", 2, "report (conflict laptop 2026-11-24 131500 2).txt"},
		{"archive.tar.gz", "laptop", 1, "archive.tar (conflict laptop 2026-11-24 131500).gz"},
		{"Makefile", "laptop", 1, "Makefile (conflict laptop 2026-11-24 131500)"},
		{".bashrc", "laptop", 1, ".bashrc (conflict laptop 2026-11-24 131500)"},
		{".config.yml", "laptop", 3, ".config (conflict laptop 2026-11-24 131500 3).yml"},
		{"notes.", "laptop", 1, "notes. (conflict laptop 2026-11-24 131500)"},
		{"...", "laptop", 1, "... (conflict laptop 2026-11-24 131500)"},
		{"x." + strings.Repeat("e", 40), "d", 1, "x." + strings.Repeat("e", 40) + " (conflict d 2026-11-24 131500)"},
		{"a.txt", "my/host\x00", 1, "a (conflict my_host_ 2026-11-24 131500).txt"},
		{"a.txt", "", 1, "a (conflict unknown 2026-11-24 131500).txt"},
	}
	for _, tc := range tests {
		if got := ConflictName(tc.name, false, tc.device, at, tc.n); got != tc.want {
			t.Errorf("ConflictName(%q, %q, %d) = %q, want %q", tc.name, tc.device, tc.n, got, tc.want)
		}
	}
	// Long names are shortened to a valid name, on a rune boundary, keeping the extension.
	got := ConflictName(long, false, strings.Repeat("d", 300), at, 12)
	if err := CheckName(got); err != nil || !strings.HasSuffix(got, " 12).txt") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("long name: %q (%d bytes): %v", got, len(got), err)
	}
	if strings.ContainsRune(got, '\uFFFD') || !strings.Contains(got, strings.Repeat("d", maxDeviceInName)+" ") {
		t.Fatalf("long name badly cut: %q", got)
	}
	// A directory's name has no extension.
	if got := ConflictName("photos.2024", true, "d", at, 1); got != "photos.2024 (conflict d 2026-11-24 131500)" {
		t.Fatalf("directory: %q", got)
	}
	// The time is written in the location of t.
	if got := ConflictName("a", false, "d", at.In(time.FixedZone("x", 3600)), 1); got != "a (conflict d 2026-11-24 141500)" {
		t.Fatalf("zoned: %q", got)
	}
}

func TestUniqueConflictName(t *testing.T) {
	at := time.Date(2026, 11, 24, 13, 15, 0, 0, time.UTC)
	taken := map[string]bool{
		"a (conflict d 2026-11-24 131500).txt":   true,
		"a (conflict d 2026-11-24 131500 2).txt": true,
	}
	if got := UniqueConflictName("a.txt", false, "d", at, func(n string) bool { return taken[n] }); got != "a (conflict d 2026-11-24 131500 3).txt" {
		t.Fatalf("got %q", got)
	}
}
