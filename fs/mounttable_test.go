package fs

import "testing"

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
