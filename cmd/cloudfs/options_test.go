package main

import (
	"math"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore/s3"
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
	for in, want := range map[string]int64{"10G": 10 << 30, "512M": 512 << 20, "1.5k": 1536, "100": 100, "2GiB": 2 << 30, "1T": 1 << 40,
		"0.1": 0, ".5K": 512, "3.": 3, "8388607T": 8388607 << 40, "9223372036854775807": math.MaxInt64} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1G", "10Q", "G", ".", "1.2.3", "+1G", "1_000", "0x10",
		// Not numbers of bytes, or beyond an int64.
		"NaN", "NaNG", "nan", "InfM", "inf", "+Inf", "Infinity", "1e30G", "1e3", "1e-3",
		"99999999999999999999", "9223372036854775808", "8388608T", "8589934592G"} {
		_, err := parseSize(bad)
		if err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		} else if msg := err.Error(); !strings.Contains(msg, strconv.Quote(bad)) || strings.Contains(msg, "\n") {
			t.Errorf("parseSize(%q): error %q does not quote the value on one line", bad, msg)
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
	for _, bad := range []string{"s3://md/v", "s3://My_Bucket", "s3://a..b/p", "s3://10.0.0.1/p", "s3://-bucket"} {
		_, err := parseRemote(bad)
		if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), s3.BucketNameRule) {
			t.Errorf("parseRemote(%q) = %v, want an error naming it and the bucket naming rule", bad, err)
		}
	}
}

// TestCacheSizeFlag checks that a size that is not a byte count stops the
// mount with one line naming --cache-size (also what cache_size= of the
// mount helper becomes), before anything is touched.
func TestCacheSizeFlag(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // mountAndServe sets it
	for _, bad := range []string{"NaNG", "InfM", "1e30G", "99999999999999999999"} {
		err := mountAndServe(mountFlags{cacheSize: bad}, "", filepath.Join(t.TempDir(), "mnt"), &notifier{})
		if err == nil || !strings.HasPrefix(err.Error(), "--cache-size: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--cache-size=%s: %v, want one line about --cache-size", bad, err)
		}
	}
}
