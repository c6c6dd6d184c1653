package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/uploader"
)

func TestHelperArgs(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
		fake bool
	}{
		// mount.fuse3 for `mount -t fuse.cloudfs` or an fstab line.
		{[]string{"s3://b/p", "/mnt/x", "-o", "ro,cache_dir=/var/cache/c,allow_other,dev,suid"},
			[]string{"--background", "--cache-dir=/var/cache/c", "-o", "ro,allow_other,dev,suid", "s3://b/p", "/mnt/x"}, false},
		// mount(8) calling mount.fuse.cloudfs directly, with its flags.
		{[]string{"cloudfs#/srv/store", "/mnt/x", "-n", "-s", "-oendpoint=http://h:9000,settle_delay=0,writeback=false,subtype=cloudfs"},
			[]string{"--background", "--endpoint=http://h:9000", "--settle-delay=0", "--writeback=false", "/srv/store", "/mnt/x"}, false},
		{[]string{"default", "/mnt/x", "-f", "-t", "fuse.cloudfs"}, []string{"--background", "/mnt/x"}, true},
	} {
		got, fake, err := helperArgs(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) || fake != tc.fake {
			t.Errorf("helperArgs(%q) = %q, %v, %v; want %q, %v", tc.in, got, fake, err, tc.want, tc.fake)
		}
	}
	for _, bad := range [][]string{{"s3://b"}, {"s3://b", "/m", "-o"}, {"s3://b", "/m", "-o", "cache_dir="}, {"s3://b", "/m", "-x"}} {
		if _, _, err := helperArgs(bad); err == nil {
			t.Errorf("helperArgs(%q) accepted", bad)
		}
	}
	if !isHelperCall([]string{"s3://b/p", "/mnt"}) || !isHelperCall([]string{"/srv/x", "/mnt", "-o", "rw"}) || isHelperCall([]string{"mnt", "x"}) {
		t.Error("isHelperCall")
	}
}

func TestFailedFiles(t *testing.T) {
	err := failedFiles([]uploader.Failure{{Path: "/x", Error: "access denied"}, {Ino: 7, Error: "gone"}})
	if err.Error() != "2 files failed: /x: access denied; inode 7: gone" {
		t.Errorf("got %q", err)
	}
	var many []uploader.Failure
	for range 5 {
		many = append(many, uploader.Failure{Path: "/f", Error: "e"})
	}
	if msg := failedFiles(many).Error(); !strings.HasPrefix(msg, "5 files failed:") || !strings.Contains(msg, "and 2 more") {
		t.Errorf("got %q", msg)
	}
}

func TestRuntimeName(t *testing.T) {
	a, b := runtimeName("/mnt/a b"), runtimeName("/mnt/a-b")
	if a == b || !strings.HasPrefix(a, "mnt-a-b-") || !strings.HasSuffix(a, ".json") || strings.Contains(a, "/") {
		t.Errorf("runtimeName: %q %q", a, b)
	}
}
