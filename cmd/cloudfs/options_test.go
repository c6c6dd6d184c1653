package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"allow_other,ro", "nonempty,nodev,_netdev,x-systemd.automount,fsname=mine"})
	if err != nil {
		t.Fatal(err)
	}
	want := mountOpts{allowOther: true, readOnly: true, nonempty: true, fsName: "mine", kernel: []string{"nodev"}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v, want %+v", o, want)
	}
	if _, err := parseOptions([]string{"allow_other,bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown option: %v", err)
	}
}

func TestParseOwnerOptions(t *testing.T) {
	o, err := parseOptions([]string{"uid=1001,gid=root"})
	if err != nil {
		t.Fatal(err)
	}
	if o.uid == nil || *o.uid != 1001 || o.gid == nil || *o.gid != 0 {
		t.Fatalf("uid %v gid %v, want 1001 and 0", o.uid, o.gid)
	}
	for _, bad := range []string{"uid=", "uid=no-such-user-here", "gid=-1", "uid=4294967296"} {
		if _, err := parseOptions([]string{bad}); err == nil || !strings.Contains(err.Error(), strings.Split(bad, "=")[0]) {
			t.Errorf("-o %s: %v", bad, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"10G": 10 << 30, "512M": 512 << 20, "1.5k": 1536, "100": 100, "2GiB": 2 << 30, "1T": 1 << 40} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1G", "10Q"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestParseRemote(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data")
	s, err := parseRemote("")
	if err != nil || s.url != "/data/cloudfs/default" || s.name != "default" {
		t.Errorf("default remote: %+v %v", s, err)
	}
	s, err = parseRemote("s3://bucket/some/prefix/")
	if err != nil || s.url != "s3://bucket/some/prefix" || s.name != "s3-bucket-some-prefix" {
		t.Errorf("s3 remote: %+v %v", s, err)
	}
	a, _ := parseRemote("/srv/store one")
	b, _ := parseRemote("/other/store one")
	if a.name == b.name || !strings.HasPrefix(a.name, "store-one-") {
		t.Errorf("directory remote names %q and %q", a.name, b.name)
	}
	if _, err := parseRemote("ftp://x"); err == nil {
		t.Error("unknown scheme accepted")
	}
}
