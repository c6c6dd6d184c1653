package fs

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/mnt/plain`:         "/mnt/plain",
		`/mnt/a\040b`:        "/mnt/a b",
		`/mnt/tab\011x\134y`: "/mnt/tab\tx\\y",
		`/mnt/bad\04`:        `/mnt/bad\04`,
		`/mnt/not\999octal`:  `/mnt/not\999octal`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMountTypeOfRoot(t *testing.T) {
	typ, mounted, err := MountType("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if !mounted || typ != "proc" {
		t.Fatalf("MountType(/proc) = %q, %v; want proc, true", typ, mounted)
	}
	if _, mounted, err := MountType(t.TempDir()); err != nil || mounted {
		t.Fatalf("MountType(temp dir) = mounted %v, err %v; want not mounted", mounted, err)
	}
}

// TestMountOnDevice: the mount table's device number of a mount is the one
// stat reports for it (setKernelReadahead reads it there, not by stat).
func TestMountOnDevice(t *testing.T) {
	m, mounted, err := mountOn("/")
	if err != nil || !mounted {
		t.Fatalf("mountOn(/): %v, %v", mounted, err)
	}
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)); m.dev != want {
		t.Fatalf("device of / from the mount table %q, stat says %q", m.dev, want)
	}
}
