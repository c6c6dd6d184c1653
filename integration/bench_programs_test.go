package integration

// The programs phase of BenchmarkReport: real programs (tar, git, grep,
// rm) on local disk, on the go-fuse loopback and on two fresh cloudfs
// mounts, one holding its uploads back and one uploading beside the
// program with the default settle delay.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/integration/benchreport"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// heldSettle is the settle delay (--settle-delay) of the mounts whose
// uploads are held back while the programs run: longer than the phase.
const heldSettle = "30m"

// grepString is what grep -r looks for in Go's source tree: a fixed string
// in most of its files, so the output is checked across file systems.
const grepString = "The Go Authors"

// goSource is the tree the tar and git figures copy: a directory of Go's
// source tree (the whole of GOROOT/src unless CLOUDFS_BENCH_TAR_SRC names
// one under it), its size, and the tar made of it.
type goSource struct {
	goroot string // `go env GOROOT`
	rel    string // the tree under GOROOT: "src" or "src/<CLOUDFS_BENCH_TAR_SRC>"
	files  int    // regular files
	dirs   int    // directories, the tree's top one included
	bytes  int64  // bytes of the regular files
	tar    string // the tar of rel, once made (goTar)
}

// label names the tree in figures: "GOROOT/src: 11478 files, 144 MiB".
func (s *goSource) label() string {
	return fmt.Sprintf("GOROOT/%s: %d files, %s", s.rel, s.files, benchreport.FormatBytes(float64(s.bytes)))
}

// loadGoSource finds GOROOT and measures the tree cfg names (untimed; it
// runs before any figure, for the figures' names).
func loadGoSource(tb testing.TB, cfg benchConfig) *goSource {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	s := &goSource{goroot: strings.TrimSpace(string(out)), rel: "src"}
	if cfg.tarSrc != "" {
		s.rel = filepath.Join("src", cfg.tarSrc)
	}
	err = filepath.WalkDir(filepath.Join(s.goroot, s.rel), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			s.dirs++
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			s.files++
			s.bytes += info.Size()
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("Go's source tree (CLOUDFS_BENCH_TAR_SRC): %v", err)
	}
	return s
}

// goTar makes the tar of the Go source tree under the run's local scratch
// directory, once (untimed), and returns its path. Its entries are named
// rel ("src/..."), so it unpacks into DIR/src.
func (r *benchRun) goTar(ctx context.Context) (string, error) {
	if r.gosrc.tar != "" {
		return r.gosrc.tar, nil
	}
	if _, err := exec.LookPath("tar"); err != nil {
		return "", fmt.Errorf("tar is required (.ci/install-deps installs it): %w", err)
	}
	path := filepath.Join(r.base, "src", "go-src.tar")
	if _, err := timed(ctx, nil, nil, "tar", "-cf", path, "-C", r.gosrc.goroot, r.gosrc.rel); err != nil {
		return "", err
	}
	r.gosrc.tar = path
	return path, nil
}

// gitEnv keeps the machine's and the user's git configuration out of the
// benchmark's git runs and names the committer.
var gitEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
	"GIT_AUTHOR_NAME=cloudfs bench", "GIT_AUTHOR_EMAIL=bench@cloudfs.invalid",
	"GIT_COMMITTER_NAME=cloudfs bench", "GIT_COMMITTER_EMAIL=bench@cloudfs.invalid",
}

// makeGitRepo makes the repository the clone figures clone (untimed): a
// copy of GOROOT/src/<CLOUDFS_BENCH_GIT_SRC> with every file in one commit,
// packed by git gc so a clone sends the pack as it is. It returns the
// repository's path and how many files the commit holds.
func (r *benchRun) makeGitRepo(ctx context.Context) (string, int, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return "", 0, fmt.Errorf("git is required (.ci/install-deps installs it): %w", err)
	}
	repo := filepath.Join(r.base, "src", "git-repo")
	if _, err := timed(ctx, nil, nil, "cp", "-r", filepath.Join(r.gosrc.goroot, "src", r.cfg.gitSrc), repo); err != nil {
		return "", 0, err
	}
	for _, args := range [][]string{
		{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "Go's " + r.cfg.gitSrc}, {"gc", "-q"},
	} {
		if _, err := timed(ctx, gitEnv, nil, "git", append([]string{"-C", repo}, args...)...); err != nil {
			return "", 0, err
		}
	}
	files := newLineCounter("")
	if _, err := timed(ctx, gitEnv, files, "git", "-C", repo, "ls-files"); err != nil {
		return "", 0, err
	}
	return repo, files.n, nil
}

// progRows are the two rows of one program: on the cloudfs mount that
// holds its uploads back, and on the one uploading beside the program.
type progRows struct {
	held, live *benchreport.Row
	method     string // how the program runs, the same on every file system
}

// Method texts of the two cloudfs variants.
const (
	heldMethod = "; cloudfs: a fresh mount (own cache dir and volume) with --settle-delay " + heldSettle +
		", so nothing is uploaded while the programs run"
	liveMethod = "; cloudfs: another fresh mount (own cache dir and volume) with the default settle delay (2 s), " +
		"its uploads running beside the program and not waited for; after the program, `cloudfs sync` " +
		"(not in the figure; its time in the note) so the next program starts with nothing queued"
)

// setMethod says how both rows are measured: the program's method, detail
// (what the run found out, e.g. a count) and the cloudfs variant.
func (p progRows) setMethod(detail string) {
	p.held.Method = p.method + detail + heldMethod
	p.live.Method = p.method + detail + liveMethod
}

// programRows are the rows of the programs phase, in table order.
type programRows struct{ untar, clone, grep, rm progRows }

func (p programRows) all() []*benchreport.Row {
	return []*benchreport.Row{p.untar.held, p.untar.live, p.clone.held, p.clone.live,
		p.grep.held, p.grep.live, p.rm.held, p.rm.live}
}

// The two cloudfs variants of the programs phase, as the figures name them.
const (
	heldVariant = "uploads held back (--settle-delay " + heldSettle + ")"
	liveVariant = "uploads running (default settle delay)"
)

// addProgramRows adds the rows of the programs phase: seconds, with local
// disk and loopback as baselines; the goal is a speed of at least 0.6×
// loopback's with uploads held back, 0.4× with them running.
func (r *benchRun) addProgramRows() {
	pair := func(figure, method string) progRows {
		p := progRows{
			held:   r.rep.Add(figure+", "+heldVariant, benchreport.Seconds, benchreport.MinSpeedRatio(0.6, baseLoopback)),
			live:   r.rep.Add(figure+", "+liveVariant, benchreport.Seconds, benchreport.MinSpeedRatio(0.4, baseLoopback)),
			method: method,
		}
		p.setMethod("")
		return p
	}
	src := r.gosrc.label()
	r.row.prog = programRows{
		untar: pair(fmt.Sprintf("tar -xf of Go's source tree (%s)", src),
			"`tar -xf` (as root: owners and modes restored) of an uncompressed tar of that tree, made once and in the page cache, "+
				"into an empty directory; seconds from start to exit"),
		clone: pair(fmt.Sprintf("git clone of a repository of GOROOT/src/%s", r.cfg.gitSrc),
			"`git clone -q file://REPO` of a local repository made once from a copy of that directory (every file in one "+
				"commit, packed by `git gc`, in the page cache): the pack protocol, so the pack is sent, written and indexed "+
				"on the target and the work tree checked out"),
		grep: pair("grep -r of the untarred tree (caches dropped)",
			fmt.Sprintf("`grep -r -F %q` through the tree the tar figure unpacked, after dropping the page, dentry and inode "+
				"caches; its output must have as many lines on every file system", grepString)),
		rm: pair("rm -rf of the untarred tree and the clone (caches dropped)",
			"one `rm -rf` of both trees, after dropping caches"),
	}
}

// progTarget is one file system of the programs phase: where it runs, and
// which row (nil: a baseline of both) its time goes to.
type progTarget struct {
	name string
	dir  string
	live bool // the cloudfs mount with its uploads running: cloudfs sync after each program
	row  func(progRows) *benchreport.Row
}

func (t progTarget) record(rows progRows, d time.Duration) {
	if t.row == nil {
		rows.held.AddBaseline(t.name, d.Seconds())
		rows.live.AddBaseline(t.name, d.Seconds())
		return
	}
	t.row(rows).Set(d.Seconds())
}

// programs times tar -xf, git clone, grep -r and rm -rf on local disk, the
// loopback, and two fresh cloudfs mounts: one holding uploads back, one with
// the default settle delay, `cloudfs sync` after each program there.
func (r *benchRun) programs(ctx context.Context) error {
	if r.dropCachesAvailable != nil {
		return r.dropCachesAvailable
	}
	tarPath, err := r.goTar(ctx)
	if err != nil {
		return err
	}
	repo, repoFiles, err := r.makeGitRepo(ctx)
	if err != nil {
		return err
	}
	p := r.row.prog
	p.clone.setMethod(fmt.Sprintf("; the commit holds %d files", repoFiles))
	// The tar is read from the page cache by every run.
	if _, err := os.ReadFile(tarPath); err != nil {
		return err
	}

	mountProg := func(name string, args []string) (string, *harness.Mount, error) {
		mnt, cache := filepath.Join(r.base, "mnt-"+name), filepath.Join(r.base, "cache-"+name)
		for _, d := range []string{mnt, cache} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", nil, err
			}
		}
		remote := filepath.Join(r.base, "remote-"+name)
		if r.remoteKind == "s3" {
			remote = "s3://" + r.minio.Bucket + "/" + name
		}
		m := harness.StartMount(r.b, harness.MountOptions{Remote: remote, MountPoint: mnt, CacheDir: cache, Args: args, Env: r.env})
		return mnt, m, nil
	}
	heldMnt, held, err := mountProg("programs-held", []string{"--settle-delay", heldSettle})
	if err != nil {
		return err
	}
	defer held.Unmount()
	liveMnt, live, err := mountProg("programs-live", nil)
	if err != nil {
		return err
	}
	defer live.Unmount()

	var targets []progTarget
	for _, t := range []struct{ name, dir string }{{baseLocal, r.local}, {baseLoopback, r.lbDir}, {baseLoopbackDP, r.lbdpDir}} {
		dir := filepath.Join(t.dir, "programs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		targets = append(targets, progTarget{name: t.name, dir: dir})
	}
	targets = append(targets,
		progTarget{name: "cloudfs, " + heldVariant, dir: heldMnt, row: func(p progRows) *benchreport.Row { return p.held }},
		progTarget{name: "cloudfs, " + liveVariant, dir: liveMnt, live: true, row: func(p progRows) *benchreport.Row { return p.live }})

	// run times fn on every target, after dropping caches when cold, and
	// commits the live mount's work after its run (timed apart, in the note).
	run := func(rows progRows, cold bool, fn func(t progTarget) error) error {
		for _, t := range targets {
			if cold {
				if err := r.dropCaches(); err != nil {
					return err
				}
			}
			start := time.Now()
			if err := fn(t); err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.record(rows, time.Since(start))
			if t.live && r.hasSync {
				d, err := r.cloudfsSync(ctx, t.dir)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				rows.live.Note = fmt.Sprintf("then `cloudfs sync` took %.2f s", d.Seconds())
			}
		}
		return nil
	}

	if err := run(p.untar, false, func(t progTarget) error {
		dir := filepath.Join(t.dir, "untar")
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		_, err := timed(ctx, nil, nil, "tar", "-xf", tarPath, "-C", dir)
		return err
	}); err != nil {
		return err
	}
	if err := run(p.clone, false, func(t progTarget) error {
		_, err := timed(ctx, gitEnv, nil, "git", "clone", "-q", "file://"+repo, filepath.Join(t.dir, "clone"))
		return err
	}); err != nil {
		return err
	}
	wantLines := -1
	if err := run(p.grep, true, func(t progTarget) error {
		lines := newLineCounter("")
		if _, err := timed(ctx, nil, lines, "grep", "-r", "-F", grepString, filepath.Join(t.dir, "untar")); err != nil {
			return err
		}
		if wantLines < 0 {
			wantLines = lines.n
		} else if lines.n != wantLines {
			return fmt.Errorf("grep -r printed %d lines, %d on local disk", lines.n, wantLines)
		}
		return nil
	}); err != nil {
		return err
	}
	p.grep.setMethod(fmt.Sprintf(" (%d lines)", wantLines))

	entries, err := countEntries(filepath.Join(targets[0].dir, "untar"), filepath.Join(targets[0].dir, "clone"))
	if err != nil {
		return err
	}
	p.rm.setMethod(fmt.Sprintf(" (%d entries: the two trees' top directories and everything under them, .git included, "+
		"counted on local disk)", entries))
	if err := run(p.rm, true, func(t progTarget) error {
		_, err := timed(ctx, nil, nil, "rm", "-rf", filepath.Join(t.dir, "untar"), filepath.Join(t.dir, "clone"))
		return err
	}); err != nil {
		return err
	}
	for _, t := range targets {
		for _, d := range []string{"untar", "clone"} {
			if _, err := os.Lstat(filepath.Join(t.dir, d)); !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: %s still there after rm -rf (%v)", t.name, d, err)
			}
		}
	}
	return nil
}

// countEntries counts the entries of the trees at dirs, their roots included.
func countEntries(dirs ...string) (int, error) {
	n := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(_ string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			n++
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}
