package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// isolateAWS hides the machine's AWS settings, so only what a test sets
// decides the endpoint.
func isolateAWS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CA_BUNDLE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

// unsetenv unsets k for the test (t.Setenv restores it afterwards).
func unsetenv(t *testing.T, k string) {
	t.Setenv(k, "")
	os.Unsetenv(k)
}

func mustRemote(t *testing.T, r string) remoteSpec {
	t.Helper()
	s, err := parseRemote(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3Endpoint(t *testing.T) {
	isolateAWS(t)
	for flag, want := range map[string]string{
		"":                             "", // AWS itself
		"http://127.0.0.1:9000":        "http://127.0.0.1:9000",
		"HTTPS://S3.Example.COM/":      "https://s3.example.com",
		"https://s3.example.com/base/": "https://s3.example.com/base",
	} {
		if got, err := s3Endpoint(s3Flags{endpoint: flag}); err != nil || got != want {
			t.Errorf("s3Endpoint(--endpoint=%q) = %q, %v; want %q", flag, got, err, want)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://nas:9000")
	if got, err := s3Endpoint(s3Flags{}); err != nil || got != "http://nas:9000" {
		t.Errorf("s3Endpoint from AWS_ENDPOINT_URL_S3 = %q, %v", got, err)
	}
	if _, err := s3Endpoint(s3Flags{endpoint: "nas:9000"}); err == nil {
		t.Error("endpoint without a scheme accepted")
	}
}

// TestCacheDirEndpoint checks that the same bucket at two endpoints gets
// two default cache dirs, and that AWS keeps the name of older versions.
func TestCacheDirEndpoint(t *testing.T) {
	isolateAWS(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	spec := mustRemote(t, "s3://bkt/vol")
	dirs := map[string]string{}
	for _, ep := range []string{"", "http://127.0.0.1:9000", "http://127.0.0.1:9001", "https://127.0.0.1:9000", "http://nas:9000"} {
		dir, note, err := defaultCacheDir(spec, s3Flags{endpoint: ep})
		if err != nil || note != "" {
			t.Fatalf("endpoint %q: %q %q %v", ep, dir, note, err)
		}
		if other, ok := dirs[dir]; ok {
			t.Errorf("endpoints %q and %q share cache dir %s", other, ep, dir)
		}
		dirs[dir] = ep
		if filepath.Dir(dir) != filepath.Join(cache, "cloudfs") || !strings.HasPrefix(filepath.Base(dir), "s3-bkt-vol") {
			t.Errorf("endpoint %q: cache dir %s", ep, dir)
		}
	}
	if dir, _, _ := defaultCacheDir(spec, s3Flags{}); dir != filepath.Join(cache, "cloudfs", "s3-bkt-vol") {
		t.Errorf("AWS: cache dir %s, want the name older versions used", dir)
	}
	if dir, _, _ := defaultCacheDir(spec, s3Flags{endpoint: "http://nas:9000"}); !strings.Contains(filepath.Base(dir), "-at-nas-9000-") {
		t.Errorf("custom endpoint: cache dir %s does not name its host", dir)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://nas:9000/")
	if dir, _, _ := defaultCacheDir(spec, s3Flags{}); dirs[dir] != "http://nas:9000" {
		t.Errorf("endpoint from AWS_ENDPOINT_URL: cache dir %s, want that of --endpoint=http://nas:9000", dir)
	}
	local := mustRemote(t, "/srv/store")
	if dir, _, _ := defaultCacheDir(local, s3Flags{endpoint: "http://nas:9000"}); filepath.Base(dir) != local.name {
		t.Errorf("directory remote: cache dir %s, want its volume name %s (no endpoint)", dir, local.name)
	}
}

// TestCacheDirOldIdentity checks the cache dirs of older versions, whose
// name had no endpoint: AWS uses one as it is; a custom endpoint does not
// (it may be another endpoint's) and says so.
func TestCacheDirOldIdentity(t *testing.T) {
	isolateAWS(t)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	spec := mustRemote(t, "s3://bkt/vol")
	old := filepath.Join(cache, "cloudfs", "s3-bkt-vol")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	if dir, note, err := defaultCacheDir(spec, s3Flags{}); dir != old || note != "" || err != nil {
		t.Errorf("AWS with an old cache dir: %q %q %v, want %s", dir, note, err, old)
	}
	dir, note, err := defaultCacheDir(spec, s3Flags{endpoint: "http://nas:9000"})
	if err != nil || dir == old || filepath.Dir(dir) != filepath.Dir(old) {
		t.Fatalf("custom endpoint with an old cache dir: %q %v, want a new dir next to %s", dir, err, old)
	}
	if !strings.Contains(note, old) || !strings.Contains(note, "--cache-dir="+old) || !strings.Contains(note, "http://nas:9000") ||
		strings.Contains(note, "\n") {
		t.Errorf("note %q does not name the old dir, the endpoint and --cache-dir on one line", note)
	}
	if err := os.Remove(old); err != nil {
		t.Fatal(err)
	}
	if _, note, _ := defaultCacheDir(spec, s3Flags{endpoint: "http://nas:9000"}); note != "" {
		t.Errorf("note %q without an old cache dir", note)
	}
}

// TestCacheDirNoHome checks the default cache dir without HOME, as mount(8)
// and boot-time mounts run cloudfs: a user's comes from the password
// database, root's is under /var/cache.
func TestCacheDirNoHome(t *testing.T) {
	spec := mustRemote(t, "/srv/no-home-test")
	unsetenv(t, "HOME")
	unsetenv(t, "XDG_CACHE_HOME")

	u, err := user.LookupId(strconv.Itoa(otherUID))
	if err != nil || u.HomeDir == "" {
		t.Fatalf("uid %d in the password database: %+v %v", otherUID, u, err)
	}
	want := filepath.Join(u.HomeDir, ".cache", "cloudfs", spec.name)
	if dir, _, err := defaultCacheDirAs(otherUID, spec, ""); err != nil || dir != want {
		t.Errorf("uid %d without HOME: %q %v, want %s", otherUID, dir, err, want)
	}

	rootHome := t.TempDir()
	lookupHome = func(uid int) (string, error) {
		if uid != 0 {
			return "", errors.New("unexpected uid " + strconv.Itoa(uid))
		}
		return rootHome, nil
	}
	defer func() { lookupHome = defaultLookupHome }()
	want = filepath.Join("/var/cache/cloudfs", spec.name)
	if dir, _, err := defaultCacheDirAs(0, spec, ""); err != nil || dir != want {
		t.Errorf("root without HOME: %q %v, want %s", dir, err, want)
	}
	// A cache dir an older version made in root's home is kept.
	old := filepath.Join(rootHome, ".cache", "cloudfs", spec.name)
	mkdirOwned(t, old, os.Geteuid())
	if dir, _, err := defaultCacheDirAs(0, spec, ""); err != nil || dir != old {
		t.Errorf("root without HOME, old cache dir in its home: %q %v, want %s", dir, err, old)
	}

	lookupHome = func(int) (string, error) { return "", errors.New("no such user") }
	if _, _, err := defaultCacheDirAs(otherUID, spec, ""); err == nil || !strings.Contains(err.Error(), "HOME") ||
		!strings.Contains(err.Error(), "--cache-dir") {
		t.Errorf("no HOME and no password entry: %v, want an error naming HOME and --cache-dir", err)
	}
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if dir, _, err := defaultCacheDirAs(otherUID, spec, ""); err != nil || dir != filepath.Join("/xdg/cloudfs", spec.name) {
		t.Errorf("XDG_CACHE_HOME: %q %v", dir, err)
	}
}

var defaultLookupHome = lookupHome

// TestCacheDirRootHome checks root with HOME set: its cache dirs are under
// /var/cache, except one an older version made under $HOME/.cache, which
// is kept if it is root's.
func TestCacheDirRootHome(t *testing.T) {
	needRoot(t)
	unsetenv(t, "XDG_CACHE_HOME")
	lookupHome = func(int) (string, error) { return "", errors.New("no password database here") }
	defer func() { lookupHome = defaultLookupHome }()
	home := t.TempDir()
	t.Setenv("HOME", home)
	spec := mustRemote(t, "/srv/root-home-test")
	fresh := filepath.Join("/var/cache/cloudfs", spec.name)
	if dir, _, err := defaultCacheDirAs(0, spec, ""); err != nil || dir != fresh {
		t.Errorf("root, no old cache dir: %q %v, want %s", dir, err, fresh)
	}
	old := filepath.Join(home, ".cache", "cloudfs", spec.name)
	mkdirOwned(t, old, otherUID)
	if dir, _, err := defaultCacheDirAs(0, spec, ""); err != nil || dir != fresh {
		t.Errorf("root, another user's cache dir under HOME: %q %v, want %s", dir, err, fresh)
	}
	if err := os.Chown(old, 0, 0); err != nil {
		t.Fatal(err)
	}
	if dir, _, err := defaultCacheDirAs(0, spec, ""); err != nil || dir != old {
		t.Errorf("root, its old cache dir under HOME: %q %v, want %s", dir, err, old)
	}
}

func mkdirOwned(t *testing.T, dir string, uid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if uid != os.Geteuid() {
		if err := os.Chown(dir, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPrivateCacheDir(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	fresh := filepath.Join(base, "new", "parent", "vol")
	lock, err := prepareCacheDir(fresh)
	if err != nil {
		t.Fatal(err)
	}
	lock.Close()
	for _, d := range []string{fresh, filepath.Dir(fresh), filepath.Dir(filepath.Dir(fresh))} {
		if m := mode(d); m != 0o700 {
			t.Errorf("%s made with mode %v, want 0700", d, m)
		}
	}

	wide := filepath.Join(base, "wide")
	os.Mkdir(wide, 0o755)
	os.Chmod(wide, 0o775)
	if err := privateCacheDir(wide); err != nil || mode(wide) != 0o700 {
		t.Errorf("wide cache dir: %v, mode %v; want tightened to 0700", err, mode(wide))
	}

	// Root may use a directory of another user it is pointed at, tightened.
	theirs := filepath.Join(base, "theirs")
	mkdirOwned(t, theirs, otherUID)
	os.Chmod(theirs, 0o755)
	if err := privateCacheDir(theirs); err != nil || mode(theirs) != 0o700 {
		t.Errorf("root, another user's dir: %v, mode %v; want used, 0700", err, mode(theirs))
	}

	// A symlink to a directory of this user is followed and the target
	// tightened; one to another user's is refused.
	own := filepath.Join(base, "own-target")
	os.Mkdir(own, 0o755)
	os.Chmod(own, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink(own, link)
	if err := privateCacheDir(link); err != nil || mode(own) != 0o700 {
		t.Errorf("symlink to own dir: %v, target mode %v; want used, 0700", err, mode(own))
	}
	other := filepath.Join(base, "other-link")
	os.Symlink(theirs, other)
	_, err = prepareCacheDir(other)
	if err == nil || !strings.Contains(err.Error(), "symlink") || !strings.Contains(err.Error(), "uid 65534") ||
		strings.Contains(err.Error(), "\n") {
		t.Errorf("symlink to another user's dir: %v, want refused in one line", err)
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := prepareCacheDir(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as cache dir: %v", err)
	}
}

// TestPrivateCacheDirOtherUser runs prepareCacheDir as an unprivileged user
// on a world-writable directory of root's: refused, since its owner
// controls what the daemon reads and writes there.
func TestPrivateCacheDirOtherUser(t *testing.T) {
	needRoot(t)
	base := openTempDir(t)
	rootDir := filepath.Join(base, "roots")
	os.Mkdir(rootDir, 0o777)
	os.Chmod(rootDir, 0o777)
	ownDir := filepath.Join(base, "own")
	mkdirOwned(t, ownDir, otherUID)
	os.Chmod(ownDir, 0o777)

	bin := filepath.Join(openTempDir(t), "cmd.test")
	copyFile(t, os.Args[0], bin, 0o755)
	run := func(dir string) string {
		cmd := exec.Command(bin, "-test.run", "^TestPrivateCacheDirHelper$")
		cmd.Env = append(os.Environ(), "CLOUDFS_TEST_CACHEDIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper as uid %d: %v\n%s", otherUID, err, out)
		}
		return string(out)
	}
	if out := run(rootDir); !strings.Contains(out, "result: cache dir: "+rootDir+" belongs to uid 0, not to this user (uid 65534)\n") {
		t.Errorf("root's dir as another user's cache dir:\n%s", out)
	}
	if out := run(ownDir); !strings.Contains(out, "result: ok\n") {
		t.Errorf("the user's own dir:\n%s", out)
	}
	if fi, err := os.Stat(ownDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the user's own dir left at %v (%v), want 0700", fi.Mode().Perm(), err)
	}
}

// TestPrivateCacheDirHelper is TestPrivateCacheDirOtherUser's other user.
func TestPrivateCacheDirHelper(t *testing.T) {
	dir := os.Getenv("CLOUDFS_TEST_CACHEDIR")
	if dir == "" {
		return // run only as the helper
	}
	lock, err := prepareCacheDir(dir)
	if err != nil {
		fmt.Printf("result: %v\n", err)
		return
	}
	lock.Close()
	fmt.Println("result: ok")
}
