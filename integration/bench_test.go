package integration

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/local"
	"github.com/cloudfs/cloudfs/integration/benchreport"
	"github.com/cloudfs/cloudfs/integration/harness"
)

// Names of the baselines, as they appear in the table.
const (
	baseLocal    = "local disk"
	baseLoopback = "loopback"
	// baseLoopbackDP is the loopback with the kernel's permission checks
	// (default_permissions), which cloudfs has and the plain loopback
	// lacks: after each change to a directory the kernel asks the file
	// system for the directory's attributes again before the next check.
	baseLoopbackDP = "loopback with default_permissions"
	baseLibs       = "restic chunker + BLAKE3"
	basePut        = "raw S3 8-stream PUT"
	baseGet        = "raw S3 8-stream GET"
	baseGetObj     = "raw S3 8-stream GET of its chunk objects"
	baseGet4K      = "raw S3 4 KiB GET"
)

// benchConfig holds the sizes of BenchmarkReport, from the environment.
type benchConfig struct {
	fileSize    int64         // CLOUDFS_BENCH_FILE_MB (MiB), the large file
	smallFiles  int           // CLOUDFS_BENCH_SMALL_FILES, 4 KiB files copied in
	treeEntries int           // CLOUDFS_BENCH_TREE_ENTRIES, the ls -lR / stat / rm -rf tree
	remoteFiles int           // CLOUDFS_BENCH_REMOTE_FILES, the generated remote tree
	walkTimeout time.Duration // CLOUDFS_BENCH_WALK_TIMEOUT (seconds), bound of the walk of that tree
	dir         string        // CLOUDFS_BENCH_DIR, where the data goes (default $TMPDIR)
	results     string        // CLOUDFS_BENCH_RESULTS, where the report goes (default bench/results)
	goOutput    string        // CLOUDFS_BENCH_GO_OUTPUT, hot-function benchmark output to append
	tarSrc      string        // CLOUDFS_BENCH_TAR_SRC, the directory under GOROOT/src the tar figures copy ("": all of it)
	gitSrc      string        // CLOUDFS_BENCH_GIT_SRC, the directory under GOROOT/src the cloned repository is made of (default cmd)
	only        []string      // CLOUDFS_BENCH_ONLY, the phases to run (comma-separated names of benchPhases); nil: all
}

// benchPhases are the phases of BenchmarkReport in run order, by the names
// CLOUDFS_BENCH_ONLY takes.
var benchPhases = []string{
	"chunk-hash", "write", "warm-read", "bytes-added", "small-files", "tree", "workload-rss",
	"cold-read", "cold-random", "remote-tree", "two-machines", "programs", "latency",
}

// skippedNote is the Result of a row whose phase CLOUDFS_BENCH_ONLY left out.
const skippedNote = "skipped by CLOUDFS_BENCH_ONLY"

// runs reports whether the phase named name is to run.
func (c benchConfig) runs(name string) bool {
	return c.only == nil || slices.Contains(c.only, name)
}

// parsePhases parses CLOUDFS_BENCH_ONLY: phase names separated by commas
// (spaces around them ignored); "" is nil, every phase.
func parsePhases(s string) ([]string, error) {
	var names []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(benchPhases, f) {
			return nil, fmt.Errorf("unknown phase %q (phases: %s)", f, strings.Join(benchPhases, ","))
		}
		if !slices.Contains(names, f) {
			names = append(names, f)
		}
	}
	return names, nil
}

func loadBenchConfig(b *testing.B) benchConfig {
	num := func(name string, def, lo int) int {
		s := os.Getenv(name)
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < lo {
			b.Fatalf("%s=%q: want an integer >= %d", name, s, lo)
		}
		return n
	}
	c := benchConfig{
		fileSize:    int64(num("CLOUDFS_BENCH_FILE_MB", 512, 8)) << 20,
		smallFiles:  num("CLOUDFS_BENCH_SMALL_FILES", 2000, 1),
		treeEntries: num("CLOUDFS_BENCH_TREE_ENTRIES", 100_000, 2),
		remoteFiles: num("CLOUDFS_BENCH_REMOTE_FILES", 1_000_000, 1),
		walkTimeout: time.Duration(num("CLOUDFS_BENCH_WALK_TIMEOUT", 120, 1)) * time.Second,
		dir:         os.Getenv("CLOUDFS_BENCH_DIR"),
		results:     os.Getenv("CLOUDFS_BENCH_RESULTS"),
		goOutput:    os.Getenv("CLOUDFS_BENCH_GO_OUTPUT"),
		tarSrc:      os.Getenv("CLOUDFS_BENCH_TAR_SRC"),
		gitSrc:      os.Getenv("CLOUDFS_BENCH_GIT_SRC"),
	}
	if c.gitSrc == "" {
		c.gitSrc = "cmd"
	}
	for name, dir := range map[string]string{"CLOUDFS_BENCH_TAR_SRC": c.tarSrc, "CLOUDFS_BENCH_GIT_SRC": c.gitSrc} {
		if dir != "" && !filepath.IsLocal(dir) {
			b.Fatalf("%s=%q: want a directory under GOROOT/src, e.g. net", name, dir)
		}
	}
	if c.results == "" {
		c.results = filepath.Join(harness.RepoRoot(), "bench", "results")
	}
	only, err := parsePhases(os.Getenv("CLOUDFS_BENCH_ONLY"))
	if err != nil {
		b.Fatalf("CLOUDFS_BENCH_ONLY: %v", err)
	}
	c.only = only
	return c
}

// benchRows are the rows of the table, in table order.
type benchRows struct {
	chunkHash, seqWrite, commit, warmRead, coldRead, randP50, randP99 *benchreport.Row
	smallFiles, treeCreate, lsR, stat, rmRF                           *benchreport.Row
	editBytes, resaveBytes, cpBytes                                   *benchreport.Row
	firstLs, walk, rssTree, rssWork                                   *benchreport.Row
	propP50, propP95, idlePoll                                        *benchreport.Row
	prog                                                              programRows
	syncRTT                                                           *benchreport.Row
}

// benchRun is one run of BenchmarkReport: its configuration, what it
// started and what it learned so far.
type benchRun struct {
	b   *testing.B
	cfg benchConfig
	rep *benchreport.Report
	row benchRows

	base        string // every file of the run lives under here
	bin         string // the cloudfs binary
	minio       *harness.MinIO
	s3          *s3.Client
	rawBucket   string           // the raw S3 baselines' bucket
	remote      string           // REMOTE of the workload mounts: s3://bucket/vol or a directory
	remoteKind  string           // "s3" or "dir"
	remoteSize  remoteSize       // bytes the remote holds
	store       chunkstore.Store // the remote, for reading its head
	env         []string         // environment of every cloudfs process
	hasSync     bool             // the binary has `cloudfs sync`
	loopbackBin string           // go-fuse's loopback binary
	gosrc       *goSource        // Go's source tree, for the programs and latency phases

	srcPath             string // the large file on local disk
	local, lbDir, mnt   string // the three file systems under test: local disk, loopback, cloudfs
	lbdpDir             string // the loopback with default_permissions (namespace figures)
	mount               *harness.Mount
	src, content        []byte // the large file as written, and as mnt/big holds it now
	committed           bool   // mnt/big is in the remote's head
	bigPlaced           bool   // placeBig put the large file in place (the write phase was skipped)
	dropCachesAvailable error
}

// fsTarget is one of the file systems a workload runs on.
type fsTarget struct {
	name string // baseLocal, baseLoopback or "cloudfs"
	dir  string
}

func (r *benchRun) targets() []fsTarget {
	return []fsTarget{{baseLocal, r.local}, {baseLoopback, r.lbDir}, {"cloudfs", r.mnt}}
}

// nsTargets are the targets of the namespace figures (many small files and
// directories), where the kernel's permission checks cost a request per
// change: targets with the loopback with default_permissions beside the
// plain one.
func (r *benchRun) nsTargets() []fsTarget {
	return []fsTarget{{baseLocal, r.local}, {baseLoopback, r.lbDir}, {baseLoopbackDP, r.lbdpDir}, {"cloudfs", r.mnt}}
}

// record puts a target's value into row: cloudfs's as the value, the
// others as baselines.
func record(row *benchreport.Row, t fsTarget, v float64) {
	if t.name == "cloudfs" {
		row.Set(v)
	} else {
		row.AddBaseline(t.name, v)
	}
}

// BenchmarkReport is `make bench`: every figure of cloudfs beside its
// baselines measured in the same run (local disk, go-fuse's loopback
// example over the same disk, raw S3 through aws-sdk-go-v2 at the same
// concurrency), with the goals of the issues, as one markdown table printed
// to stdout and kept under bench/results/. Run it with -benchtime 1x: one
// invocation is one report (b.N is not used). Sizes scale with the
// CLOUDFS_BENCH_* variables (see benchConfig); CLOUDFS_BENCH_ONLY runs only
// the phases it names (benchPhases), the others' rows marked skipped. It
// needs root (to drop the
// page cache), FUSE and MinIO. A figure whose cloudfs feature does not
// exist yet is marked n/a instead of failing the run; a measurement that
// breaks fails the benchmark after the report is written.
func BenchmarkReport(b *testing.B) {
	r := &benchRun{b: b, cfg: loadBenchConfig(b)}
	r.newReport()
	b.Cleanup(r.finish) // registered first, so it runs after every other cleanup

	r.phase("chunk-hash", r.chunkHash, r.row.chunkHash)
	r.setup()
	r.phase("write", r.sequentialWrite, r.row.seqWrite, r.row.commit)
	if !r.cfg.runs("write") {
		// The phases that read the large file find it where the write
		// phase leaves it, written and committed (untimed here).
		var readers []*benchreport.Row
		for _, p := range []struct {
			name string
			rows []*benchreport.Row
		}{
			{"warm-read", []*benchreport.Row{r.row.warmRead}},
			{"bytes-added", []*benchreport.Row{r.row.editBytes, r.row.resaveBytes, r.row.cpBytes}},
			{"cold-read", []*benchreport.Row{r.row.coldRead}},
			{"cold-random", []*benchreport.Row{r.row.randP50, r.row.randP99}},
		} {
			if r.cfg.runs(p.name) {
				readers = append(readers, p.rows...)
			}
		}
		if len(readers) > 0 {
			r.step("place the large file (untimed: the write phase is skipped)", r.placeBig, readers...)
		}
	}
	r.phase("warm-read", r.warmRead, r.row.warmRead)
	r.phase("bytes-added", r.bytesAdded, r.row.editBytes, r.row.resaveBytes, r.row.cpBytes)
	r.phase("small-files", r.smallFiles, r.row.smallFiles)
	r.phase("tree", r.tree, r.row.treeCreate, r.row.lsR, r.row.stat, r.row.rmRF)
	r.phase("workload-rss", r.workRSS, r.row.rssWork)
	r.mount.Unmount()
	r.phase("cold-read", r.coldRead, r.row.coldRead)
	r.phase("cold-random", r.coldRandom, r.row.randP50, r.row.randP99)
	r.phase("remote-tree", r.remoteTree, r.row.firstLs, r.row.walk, r.row.rssTree)
	r.phase("two-machines", r.propagation, r.row.propP50, r.row.propP95, r.row.idlePoll)
	r.phase("programs", r.programs, r.row.prog.all()...)
	r.phase("latency", r.syncOverLatency, r.row.syncRTT)
}

func (r *benchRun) newReport() {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	r.rep = &benchreport.Report{Title: "cloudfs benchmark (make bench)", Time: time.Now(), Host: host}
	mib := r.cfg.fileSize >> 20
	r.gosrc = loadGoSource(r.b, r.cfg)
	add := r.rep.Add
	r.row = benchRows{
		chunkHash: add("chunk+hash, one core (64 MiB)", benchreport.MiBPerSec, benchreport.Min(450)),
		seqWrite:  add(fmt.Sprintf("sequential write %d MiB (cp + fsync)", mib), benchreport.MiBPerSec, benchreport.MinRatio(0.5, baseLocal)),
		commit:    add(fmt.Sprintf("write + commit %d MiB (cp + fsync + cloudfs sync)", mib), benchreport.MiBPerSec, benchreport.MinRatio(0.7, basePut)),
		warmRead:  add(fmt.Sprintf("warm re-read %d MiB (dd bs=1M)", mib), benchreport.MiBPerSec, benchreport.MinRatio(0.8, baseLoopback)),
		coldRead: add(fmt.Sprintf("cold sequential read %d MiB (fresh cache dir, page cache dropped)", mib),
			benchreport.MiBPerSec, benchreport.MinRatio(0.6, baseGet)),
		randP50:    add("cold random 4 KiB read, p50", benchreport.Millis, benchreport.MaxRatio(1.1, baseGet4K)),
		randP99:    add("cold random 4 KiB read, p99", benchreport.Millis, benchreport.MaxRatio(1.5, baseGet4K)),
		smallFiles: add(fmt.Sprintf("%d × 4 KiB files copied in (cp -r + sync -f)", r.cfg.smallFiles), benchreport.FilesPerSec, benchreport.MinRatio(0.7, baseLoopback)),
		treeCreate: add(fmt.Sprintf("create %d-entry tree (cp -r + sync -f)", r.cfg.treeEntries), benchreport.EntriesPerSec, benchreport.MinRatio(0.7, baseLoopback)),
		lsR:        add(fmt.Sprintf("ls -lR of the %d-entry tree (caches dropped)", r.cfg.treeEntries), benchreport.EntriesPerSec, benchreport.Min(50_000)),
		stat:       add(fmt.Sprintf("stat of each of the %d entries (caches dropped)", r.cfg.treeEntries), benchreport.EntriesPerSec, benchreport.MinRatio(0.7, baseLoopback)),
		rmRF:       add(fmt.Sprintf("rm -rf of the %d-entry tree", r.cfg.treeEntries), benchreport.EntriesPerSec, benchreport.MinRatio(0.7, baseLoopback)),
		editBytes:  add(fmt.Sprintf("remote bytes added by a 1 MiB in-place edit of the %d MiB file", mib), benchreport.Bytes, benchreport.Max(2<<20)),
		resaveBytes: add("remote bytes added by an editor-style resave (temp + rename), 1 MiB changed",
			benchreport.Bytes, benchreport.Max(8<<20)),
		cpBytes: add(fmt.Sprintf("remote bytes added by cp of the %d MiB file (goal ≈ 0: trees and commit only)", mib),
			benchreport.Bytes, benchreport.Max(256<<10)),
		firstLs: add(fmt.Sprintf("first ls of a %d-file remote tree, fresh cache dir", r.cfg.remoteFiles), benchreport.Seconds, benchreport.Under(1)),
		walk:    add(fmt.Sprintf("ls -lR of that %d-file remote tree (first walk)", r.cfg.remoteFiles), benchreport.EntriesPerSec, benchreport.Goal{}),
		rssTree: add(fmt.Sprintf("daemon peak RSS with the %d-file tree walked (inodes in the index)", r.cfg.remoteFiles),
			benchreport.Bytes, benchreport.Max(150<<20)),
		rssWork: add("daemon peak RSS of the workload mount (write, edits, small files, tree)", benchreport.Bytes, benchreport.Goal{}),
		propP50: add(fmt.Sprintf("propagation, close on one machine to visible on another, p50 (settle %v, poll %v)", propSettle, propPoll),
			benchreport.Millis, benchreport.Max(float64((propSettle+propPoll+time.Second)/time.Millisecond))),
		propP95:  add("propagation, p95", benchreport.Millis, benchreport.Max(float64((propSettle+propPoll+time.Second)/time.Millisecond))),
		idlePoll: add("store requests per poll of a mount with nothing new", benchreport.Requests, benchreport.Max(1)),
	}
	r.methods()
	r.addProgramRows()
	r.addLatencyRow()
	r.rep.Setup = append(r.rep.Setup, fmt.Sprintf("sizes: large file %d MiB, %d small files, tree of %d entries, remote tree of %d files"+
		" (CLOUDFS_BENCH_FILE_MB, _SMALL_FILES, _TREE_ENTRIES, _REMOTE_FILES); tar of GOROOT/%s, git repository of GOROOT/src/%s"+
		" (CLOUDFS_BENCH_TAR_SRC, _GIT_SRC: directories under GOROOT/src)",
		mib, r.cfg.smallFiles, r.cfg.treeEntries, r.cfg.remoteFiles, r.gosrc.rel, r.cfg.gitSrc))
	if r.cfg.only != nil {
		r.rep.Setup = append(r.rep.Setup, fmt.Sprintf("phases: only %s (CLOUDFS_BENCH_ONLY; the other phases' rows are marked skipped)",
			strings.Join(r.cfg.only, ", ")))
	}
}

// methods says how each figure is measured, below the table.
func (r *benchRun) methods() {
	w := r.row
	const bytesAdded = "ListObjectsV2 sizes under the volume's prefix (file sizes, for a directory remote) before the edit and after " +
		"`cloudfs sync` returned, which must have moved head; "
	w.chunkHash.Method = "in the benchmark process, GOMAXPROCS=1, best of 5 passes over 64 MiB of random bytes, volume defaults " +
		"(512 KiB min, 1 MiB average, 8 MiB max); baseline: restic/chunker with the same bounds + zeebo/blake3, no cloudfs code"
	w.seqWrite.Method = "`cp` of a file in the page cache, then `sync FILE` (fsync) on each file system, so local disk's figure is as " +
		"durable as cloudfs's close()"
	w.commit.Method = "from the start of cp until `cloudfs sync` returns (the remote must have grown by the file's size); " +
		"baseline: the same bytes as one multipart upload, 8 MiB parts on 8 streams"
	w.warmRead.Method = fmt.Sprintf("the fastest of %d passes of `dd if=FILE of=/dev/null bs=1M` over the file just written, nothing dropped", warmReadPasses)
	w.coldRead.Method = "unmount, mount with an empty cache dir, drop caches, `dd bs=1M`; bytes verified afterwards (untimed); " +
		"baseline: 8-stream ranged GETs of 8 MiB of the same bytes, caches dropped; and 8-stream GETs of the volume's chunk " +
		"objects of 512 KiB or more (the large file's chunks and the edits'), whole, as cloudfs reads them, caches dropped"
	n := randomReads(r.cfg.fileSize)
	w.randP50.Method = fmt.Sprintf("%d reads of 4 KiB, one at a time, each in its own %s stripe of the large file, POSIX_FADV_RANDOM, "+
		"on a mount with another empty cache dir, caches dropped; loopback: its copy, caches dropped; raw S3: ranged GETs at the same offsets",
		n, benchreport.FormatBytes(float64(r.cfg.fileSize/int64(n))))
	w.randP99.Method = "the same reads"
	w.smallFiles.Method = "`cp -r` of a directory of distinct 4 KiB files in the page cache, then `sync -f` (syncfs) of the target"
	w.treeCreate.Method = "`cp -r` of directories of up to 1,000 empty files, then `sync -f`"
	w.lsR.Method = "`ls -lR` after dropping the page, dentry and inode caches; its output must list every entry"
	w.stat.Method = "lstat(2) of every path from Go, caches dropped"
	w.rmRF.Method = "`rm -rf`, caches dropped"
	w.editBytes.Method = bytesAdded + "`dd bs=1M count=1 conv=notrunc,fsync` into the middle of the file"
	w.resaveBytes.Method = "as above; the whole file written to a temporary file beside it with plain writes, 1 MiB replaced, " +
		"fsync, rename over the original"
	w.cpBytes.Method = "as above; `cp big big.copy` on the mount, then `sync big.copy`"
	w.firstLs.Method = "a volume written straight into a new remote with index/tree + chunkstore (settings, one tree per directory, " +
		"root, commit, head), mounted with an empty cache dir, caches dropped, `ls MNT` timed"
	w.walk.Method = "`ls -lR MNT` right after the first ls, bounded by CLOUDFS_BENCH_WALK_TIMEOUT (default 120 s)"
	w.rssTree.Method = "VmHWM (/proc/PID/status) of that daemon after the walk"
	w.rssWork.Method = "VmHWM of the daemon that ran the write, re-read, edits, small-file and tree figures"
	w.propP50.Method = fmt.Sprintf("two mounts of a new volume (--settle-delay %v --poll-interval %v); %d times a new 4 KiB file "+
		"is written and closed on the first, timed until the second reads its content (stat and read every 10 ms)",
		propSettle, propPoll, propTrials)
	w.propP95.Method = "the same trials"
	w.idlePoll.Method = fmt.Sprintf("HTTP requests from the second mount to MinIO (through a counting proxy) over %d poll intervals "+
		"with nothing new, divided by the polls, 12 s after the last change (the device record is rewritten at most every 10 s "+
		"after the base moved)", idlePolls)
}

// randomReads is how many cold random reads of a file of size bytes the
// benchmark makes: one per 2 MiB, between 16 and 256.
func randomReads(size int64) int { return int(min(256, max(16, size/(2<<20)))) }

// phase runs the phase named name (one of benchPhases) with step, or when
// CLOUDFS_BENCH_ONLY leaves it out marks its rows skipped.
func (r *benchRun) phase(name string, fn func(context.Context) error, rows ...*benchreport.Row) {
	if !slices.Contains(benchPhases, name) {
		panic("phase " + name + " is not in benchPhases")
	}
	if !r.cfg.runs(name) {
		for _, row := range rows {
			row.Skip(skippedNote)
		}
		progress("%s: %s", name, skippedNote)
		return
	}
	r.step(name, fn, rows...)
}

// step runs one step of the run. If it fails, the rows it was to fill
// and has not are marked broken with its error; the run goes on.
func (r *benchRun) step(name string, fn func(context.Context) error, rows ...*benchreport.Row) {
	start := time.Now()
	err := fn(r.b.Context())
	progress("%s: %s (%v)", name, errOr(err, "done"), time.Since(start).Round(time.Millisecond))
	if err == nil {
		return
	}
	for _, row := range rows {
		if row.Pending() {
			row.Broken(fmt.Errorf("%s: %w", name, err))
		}
	}
}

// progress tells the person waiting for `make bench` where it is (on
// stderr, at once; the test log of a benchmark is cut short and comes at
// the end).
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func errOr(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

// finish prints the report, writes it under bench/results and fails the
// benchmark if a measurement broke.
func (r *benchRun) finish() {
	if r.cfg.goOutput != "" {
		out, err := os.ReadFile(r.cfg.goOutput)
		if err != nil {
			r.b.Errorf("CLOUDFS_BENCH_GO_OUTPUT: %v", err)
		} else {
			r.rep.AppendixTitle = "Hot-function Go benchmarks (same make bench run)"
			r.rep.Appendix = string(out)
		}
	}
	fmt.Println()
	fmt.Println(r.rep.Markdown())
	path, err := r.rep.Write(r.cfg.results)
	if err != nil {
		r.b.Errorf("write the report: %v", err)
	} else {
		fmt.Printf("report written to %s (and latest.md)\n\n", path)
	}
	if n := r.rep.Counts()[benchreport.Failed]; n > 0 {
		r.b.Errorf("%d figures could not be measured (marked broken in the report)", n)
	}
}

// setup starts everything the workloads use: the directories, the cloudfs
// binary (built without -race unless CLOUDFS_BINARY names one), MinIO, the
// remote (S3 when the binary can mount it, else a directory), the loopback
// mount, the large file, and the first cloudfs mount.
func (r *benchRun) setup() {
	b := r.b
	ctx := b.Context()
	start := time.Now()
	if r.cfg.dir != "" {
		dir, err := os.MkdirTemp(r.cfg.dir, "cloudfs-bench-")
		if err != nil {
			b.Fatalf("CLOUDFS_BENCH_DIR: %v", err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		r.base = dir
	} else {
		r.base = b.TempDir()
	}
	for _, d := range []string{"bin", "src", "local", "lb-orig", "lb-mnt", "lbdp-orig", "lbdp-mnt", "mnt", "remote"} {
		if err := os.MkdirAll(filepath.Join(r.base, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	r.local, r.lbDir, r.mnt = filepath.Join(r.base, "local"), filepath.Join(r.base, "lb-mnt"), filepath.Join(r.base, "mnt")
	r.lbdpDir = filepath.Join(r.base, "lbdp-mnt")
	r.dropCachesAvailable = r.dropCaches()

	if os.Getenv("CLOUDFS_BINARY") == "" {
		bin := filepath.Join(r.base, "bin", "cloudfs")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/cloudfs")
		cmd.Dir = harness.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build cloudfs: %v\n%s", err, out)
		}
		b.Setenv("CLOUDFS_BINARY", bin)
	}
	r.bin = harness.Binary(b)
	r.hasSync = hasCommand(r.bin, "sync")

	r.minio = harness.StartMinIO(b)
	r.s3 = r.minio.Client()
	r.rawBucket = r.minio.Bucket + "-raw"
	if _, err := r.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(r.rawBucket)}); err != nil {
		b.Fatalf("create bucket %s: %v", r.rawBucket, err)
	}
	r.env = r.minio.Env()
	s3Remote := "s3://" + r.minio.Bucket + "/vol"
	if ok, why := probeMount(r.bin, "s3://"+r.minio.Bucket+"/probe", filepath.Join(r.base, "probe"), r.env); ok {
		r.remote, r.remoteKind = s3Remote, "s3"
		r.remoteSize = s3PrefixSize(r.s3, r.minio.Bucket, "vol/")
		r.store = openS3(b, r.minio, "vol")
		r.rep.Setup = append(r.rep.Setup, fmt.Sprintf("remote: %s on MinIO (%s, this machine)", s3Remote, r.minio.Endpoint))
	} else {
		r.remote, r.remoteKind = filepath.Join(r.base, "remote"), "dir"
		r.remoteSize = dirSize(r.remote)
		s, err := local.Open(r.remote)
		if err != nil {
			b.Fatal(err)
		}
		r.store = s
		r.rep.Setup = append(r.rep.Setup, fmt.Sprintf("remote: **a local directory** on the same disk, because this cloudfs "+
			"cannot mount s3:// yet (%s); the raw S3 baselines still run against MinIO", why))
	}

	var err error
	if r.loopbackBin, err = buildLoopback(filepath.Join(r.base, "bin")); err != nil {
		b.Fatal(err)
	}
	if _, err := startLoopback(b, r.loopbackBin, filepath.Join(r.base, "lb-orig"), r.lbDir, false); err != nil {
		b.Fatal(err)
	}
	if _, err := startLoopback(b, r.loopbackBin, filepath.Join(r.base, "lbdp-orig"), r.lbdpDir, true); err != nil {
		b.Fatal(err)
	}

	r.src = benchBytes(1, int(r.cfg.fileSize))
	r.content = append([]byte(nil), r.src...)
	r.srcPath = filepath.Join(r.base, "src", "big")
	if err := writeFileSync(r.srcPath, r.src); err != nil {
		b.Fatal(err)
	}
	r.mount = r.startCloudfs("cache-work", r.mnt, r.remote)

	commands := "`cloudfs sync`: no (figures that need a commit are n/a)"
	if r.hasSync {
		commands = "`cloudfs sync`: yes"
	}
	r.rep.Setup = append(r.rep.Setup,
		fmt.Sprintf("cloudfs: %s (%s); %s", r.bin, gitDescribe(), commands),
		fmt.Sprintf("local disk: %s file system under %s (also the cache dirs' and MinIO's)", fsType(r.base), r.base),
		"loopback: go-fuse "+goFuseVersion()+" example/loopback (its defaults: 1 s entry/attr timeouts) over a directory of that disk",
		"loopback with default_permissions: the same with -allow-other, which adds default_permissions (the kernel checks permissions, as on cloudfs); in the namespace figures only",
		fmt.Sprintf("raw S3: aws-sdk-go-v2 straight to the same MinIO, %d streams, %d MiB parts/ranges (as `aws s3 cp`)", rawStreams, rawPartSize>>20),
		fmt.Sprintf("machine: %d CPUs (shared), %s, %s; page cache dropped with /proc/sys/vm/drop_caches where a figure says so",
			runtime.NumCPU(), kernel(), runtime.Version()),
	)
	if r.dropCachesAvailable != nil {
		r.rep.Setup = append(r.rep.Setup, fmt.Sprintf("**cannot drop caches**: %v (cold figures are broken)", r.dropCachesAvailable))
	}
	progress("setup: remote %s, loopback and cloudfs mounted (%v)", r.remote, time.Since(start).Round(time.Millisecond))
}

// dropCaches syncs the benchmark's disk and drops the kernel's caches.
func (r *benchRun) dropCaches() error { return dropCaches(r.base) }

// startCloudfs mounts remote at mnt with a fresh cache dir named cache.
func (r *benchRun) startCloudfs(cache, mnt, remote string) *harness.Mount {
	dir := filepath.Join(r.base, cache)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.b.Fatal(err)
	}
	return harness.StartMount(r.b, harness.MountOptions{Remote: remote, MountPoint: mnt, CacheDir: dir, Env: r.env})
}

// cloudfsSync runs `cloudfs sync MNT`: it returns once everything closed
// before it is committed.
func (r *benchRun) cloudfsSync(ctx context.Context, mnt string) (time.Duration, error) {
	return timed(ctx, r.env, nil, r.bin, "sync", mnt)
}

// head returns the content of the remote's head (the current commit id),
// "" when there is none yet.
func (r *benchRun) head(ctx context.Context) (string, error) {
	data, _, err := r.store.Get(ctx, chunkstore.HeadKey)
	if errors.Is(err, chunkstore.ErrNotFound) {
		return "", nil
	}
	return strings.TrimSpace(string(data)), err
}

func (r *benchRun) chunkHash(context.Context) error {
	data := benchBytes(2, 64<<20)
	prev := runtime.GOMAXPROCS(1)
	ours, libs, err := chunkHashPasses(data, 5)
	runtime.GOMAXPROCS(prev)
	if err != nil {
		return err
	}
	r.row.chunkHash.AddBaseline(baseLibs, mibps(int64(len(data)), libs))
	r.row.chunkHash.Set(mibps(int64(len(data)), ours))
	if v, ok := goBenchMBps(r.cfg.goOutput, "BenchmarkChunkAndHash"); ok {
		r.row.chunkHash.Note = fmt.Sprintf("BenchmarkChunkAndHash -cpu 1 in the same make bench: %.0f MiB/s", v*1e6/(1<<20))
	}
	return nil
}

// goBenchMBps returns the MB/s (10^6 bytes) figure of the benchmark named
// name in the `go test -bench` output file path.
func goBenchMBps(path, name string) (float64, bool) {
	if path == "" {
		return 0, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || (f[0] != name && !strings.HasPrefix(f[0], name+"-")) {
			continue
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "MB/s" {
				v, err := strconv.ParseFloat(f[i-1], 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}

func (r *benchRun) sequentialWrite(ctx context.Context) error {
	size := r.cfg.fileSize
	for _, t := range r.targets() {
		cpSync, err := r.writeBig(ctx, t)
		if err != nil {
			return err
		}
		record(r.row.seqWrite, t, mibps(size, cpSync))
		if t.name != "cloudfs" {
			continue
		}
		if !r.hasSync {
			r.row.commit.NA("`cloudfs sync`")
			continue
		}
		before, err := r.remoteSize(ctx)
		if err != nil {
			return err
		}
		commit, err := r.cloudfsSync(ctx, r.mnt)
		if err != nil {
			r.row.commit.Broken(err)
			continue
		}
		after, err := r.remoteSize(ctx)
		if err != nil {
			return err
		}
		// Random bytes neither deduplicate nor compress: a commit of the
		// file adds at least its size.
		if after-before < size {
			r.row.commit.Broken(fmt.Errorf("cloudfs sync returned, but the remote grew by %s for a %d MiB file of random bytes",
				benchreport.FormatBytes(float64(after-before)), size>>20))
			continue
		}
		r.committed = true
		r.row.commit.Set(mibps(size, cpSync+commit))
		r.row.commit.Note = fmt.Sprintf("cp + fsync %.2f s, then cloudfs sync %.2f s", cpSync.Seconds(), commit.Seconds())
	}
	put, err := rawPut(ctx, r.s3, r.rawBucket, "big", r.src)
	if err != nil {
		return err
	}
	r.row.commit.AddBaseline(basePut, mibps(size, put))
	return nil
}

// writeBig copies the large file from the page cache into t as big and
// fsyncs it (`cp`, then `sync FILE`), and returns how long both took.
func (r *benchRun) writeBig(ctx context.Context, t fsTarget) (time.Duration, error) {
	dst := filepath.Join(t.dir, "big")
	cp, err := timed(ctx, nil, nil, "cp", r.srcPath, dst)
	if err != nil {
		return 0, err
	}
	fsync, err := timed(ctx, nil, nil, "sync", dst)
	if err != nil {
		return 0, err
	}
	return cp + fsync, nil
}

// placeBig writes the large file into each file system, commits it and
// puts the raw S3 baselines' copy, as the write phase does but untimed, for
// the phases that read it when CLOUDFS_BENCH_ONLY skips that phase.
func (r *benchRun) placeBig(ctx context.Context) error {
	r.bigPlaced = true
	if _, err := rawPut(ctx, r.s3, r.rawBucket, "big", r.src); err != nil {
		return err
	}
	for _, t := range r.targets() {
		if _, err := r.writeBig(ctx, t); err != nil {
			return err
		}
	}
	if !r.hasSync {
		return nil
	}
	if _, err := r.cloudfsSync(ctx, r.mnt); err != nil {
		return err
	}
	r.committed = true
	return nil
}

// warmReadPasses is how many times warmRead reads each file: one pass from
// the page cache takes about 40 ms, so a single one mostly measures what
// else the machine did in those milliseconds.
const warmReadPasses = 5

func (r *benchRun) warmRead(ctx context.Context) error {
	for _, t := range r.targets() {
		var best time.Duration
		for range warmReadPasses {
			d, err := timed(ctx, nil, nil, "dd", "if="+filepath.Join(t.dir, "big"), "of=/dev/null", "bs=1M", "status=none")
			if err != nil {
				return err
			}
			if best == 0 || d < best {
				best = d
			}
		}
		record(r.row.warmRead, t, mibps(r.cfg.fileSize, best))
	}
	return nil
}

// bytesAdded measures what three edits of mnt/big add to the remote, each
// committed with `cloudfs sync`: 1 MiB overwritten in place (dd), 1 MiB
// changed by an editor-style save (new file + rename), and a cp of it.
func (r *benchRun) bytesAdded(ctx context.Context) error {
	rows := []*benchreport.Row{r.row.editBytes, r.row.resaveBytes, r.row.cpBytes}
	if !r.hasSync {
		for _, row := range rows {
			row.NA("`cloudfs sync`")
		}
		return nil
	}
	if !r.committed {
		return errors.New("the large file was not committed")
	}
	big := filepath.Join(r.mnt, "big")
	mib := r.cfg.fileSize >> 20
	patch1, patch2 := benchBytes(3, 1<<20), benchBytes(4, 1<<20)
	patchPath := filepath.Join(r.base, "src", "patch")
	if err := writeFileSync(patchPath, patch1); err != nil {
		return err
	}
	edits := []struct {
		row  *benchreport.Row
		edit func() error
	}{
		{r.row.editBytes, func() error {
			_, err := timed(ctx, nil, nil, "dd", "if="+patchPath, "of="+big, "bs=1M", "count=1",
				fmt.Sprintf("seek=%d", mib/2), "conv=notrunc,fsync", "status=none")
			copy(r.content[(mib/2)<<20:], patch1)
			return err
		}},
		{r.row.resaveBytes, func() error {
			off := (mib / 4) << 20
			copy(r.content[off:], patch2)
			return editorSave(big, off, patch2)
		}},
		{r.row.cpBytes, func() error {
			if _, err := timed(ctx, nil, nil, "cp", big, big+".copy"); err != nil {
				return err
			}
			_, err := timed(ctx, nil, nil, "sync", big+".copy")
			return err
		}},
	}
	for _, e := range edits {
		before, err := r.remoteSize(ctx)
		if err != nil {
			return err
		}
		headBefore, err := r.head(ctx)
		if err != nil {
			return err
		}
		if err := e.edit(); err != nil {
			return err
		}
		if _, err := r.cloudfsSync(ctx, r.mnt); err != nil {
			return err
		}
		after, err := r.remoteSize(ctx)
		if err != nil {
			return err
		}
		headAfter, err := r.head(ctx)
		if err != nil {
			return err
		}
		if headAfter == headBefore {
			e.row.Broken(fmt.Errorf("cloudfs sync returned, but head is still %q: the edit was not committed", headBefore))
			continue
		}
		e.row.Set(float64(after - before))
	}
	return verifyFile(big, r.content)
}

func (r *benchRun) smallFiles(ctx context.Context) error {
	src := filepath.Join(r.base, "src", "small")
	if err := makeSmallFiles(src, r.cfg.smallFiles); err != nil {
		return err
	}
	if err := r.copyIn(ctx, src, "small", r.row.smallFiles, r.cfg.smallFiles); err != nil {
		return err
	}
	return r.settle(ctx)
}

// copyIn copies the directory src into each target as name with `cp -r`
// followed by `sync -f` (so every target pays for durability) and records
// n entries per second of both into row.
func (r *benchRun) copyIn(ctx context.Context, src, name string, row *benchreport.Row, n int) error {
	for _, t := range r.nsTargets() {
		dst := filepath.Join(t.dir, name)
		cp, err := timed(ctx, nil, nil, "cp", "-r", src, dst)
		if err != nil {
			return err
		}
		sync, err := timed(ctx, nil, nil, "sync", "-f", dst)
		if err != nil {
			return err
		}
		record(row, t, perSec(n, cp+sync))
	}
	return nil
}

// settle commits what the mount has queued (untimed), so that uploads do
// not run under the next figures.
func (r *benchRun) settle(ctx context.Context) error {
	if !r.hasSync {
		return nil
	}
	_, err := r.cloudfsSync(ctx, r.mnt)
	return err
}

func (r *benchRun) tree(ctx context.Context) error {
	src := filepath.Join(r.base, "src", "tree")
	paths, err := makeTree(src, r.cfg.treeEntries)
	if err != nil {
		return err
	}
	n := len(paths)
	if err := r.copyIn(ctx, src, "tree", r.row.treeCreate, n); err != nil {
		return err
	}
	if err := r.settle(ctx); err != nil {
		return err
	}
	if r.dropCachesAvailable != nil {
		return r.dropCachesAvailable
	}
	for _, t := range r.nsTargets() {
		if err := r.dropCaches(); err != nil {
			return err
		}
		lines := newLineCounter("-d")
		d, err := timed(ctx, nil, lines, "ls", "-lR", filepath.Join(t.dir, "tree"))
		if err != nil {
			return err
		}
		if lines.n != n {
			return fmt.Errorf("ls -lR on %s listed %d entries, want %d", t.name, lines.n, n)
		}
		record(r.row.lsR, t, perSec(n, d))
	}
	for _, t := range r.nsTargets() {
		if err := r.dropCaches(); err != nil {
			return err
		}
		d, err := statAll(filepath.Join(t.dir, "tree"), paths)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		record(r.row.stat, t, perSec(n, d))
	}
	for _, t := range r.nsTargets() {
		if err := r.dropCaches(); err != nil {
			return err
		}
		d, err := timed(ctx, nil, nil, "rm", "-rf", filepath.Join(t.dir, "tree"))
		if err != nil {
			return err
		}
		record(r.row.rmRF, t, perSec(n, d))
	}
	return nil
}

func (r *benchRun) workRSS(context.Context) error {
	pid, err := daemonPID(r.bin, r.mnt)
	if err != nil {
		return err
	}
	rss, err := peakRSS(pid)
	if err != nil {
		return err
	}
	r.row.rssWork.Set(float64(rss))
	var skipped []string
	for _, p := range []string{"write", "warm-read", "bytes-added", "small-files", "tree"} {
		if !r.cfg.runs(p) {
			skipped = append(skipped, p)
		}
	}
	if len(skipped) > 0 {
		r.row.rssWork.Note = "with the phases " + strings.Join(skipped, ", ") + " skipped by CLOUDFS_BENCH_ONLY"
		if r.bigPlaced {
			r.row.rssWork.Note += " (the large file written and committed untimed)"
		}
	}
	return nil
}

// lazyNA is why the figures that read a committed volume through a fresh
// cache dir are n/a when the mount does not show it.
const lazyNA = "lazy mount of the remote tree: a mount with a fresh cache dir does not show the committed files"

func (r *benchRun) coldRead(ctx context.Context) error {
	if !r.hasSync {
		r.row.coldRead.NA("`cloudfs sync`: nothing is committed for a fresh cache dir to read")
		return nil
	}
	if !r.committed {
		return errors.New("the large file was not committed")
	}
	if r.dropCachesAvailable != nil {
		return r.dropCachesAvailable
	}
	if err := r.dropCaches(); err != nil {
		return err
	}
	get, err := rawGet(ctx, r.s3, r.rawBucket, "big", r.src)
	if err != nil {
		return err
	}
	r.row.coldRead.AddBaseline(baseGet, mibps(r.cfg.fileSize, get))
	if r.remoteKind == "s3" {
		// The same bytes as the objects cloudfs reads: one per chunk.
		if err := r.dropCaches(); err != nil {
			return err
		}
		n, d, err := rawGetObjects(ctx, r.s3, r.minio.Bucket, "vol/"+chunkstore.ChunksPrefix, chunkstore.DefaultMinSize)
		if err != nil {
			return err
		}
		r.row.coldRead.AddBaseline(baseGetObj, mibps(n, d))
	}

	m := r.startCloudfs("cache-cold", r.mnt, r.remote)
	defer m.Unmount()
	big := filepath.Join(r.mnt, "big")
	if err := r.dropCaches(); err != nil {
		return err
	}
	if _, err := os.Stat(big); errors.Is(err, fs.ErrNotExist) {
		r.row.coldRead.NA(lazyNA)
		return nil
	} else if err != nil {
		return err
	}
	d, err := timed(ctx, nil, nil, "dd", "if="+big, "of=/dev/null", "bs=1M", "status=none")
	if err != nil {
		return err
	}
	if err := verifyFile(big, r.content); err != nil {
		return err
	}
	r.row.coldRead.Set(mibps(r.cfg.fileSize, d))
	if r.remoteKind == "dir" {
		r.row.coldRead.Note = "read from the local-directory remote, not S3"
	}
	return nil
}

func (r *benchRun) coldRandom(ctx context.Context) error {
	if r.dropCachesAvailable != nil {
		return r.dropCachesAvailable
	}
	offsets := randomOffsets(r.cfg.fileSize, randomReads(r.cfg.fileSize), 5)
	rows := []*benchreport.Row{r.row.randP50, r.row.randP99}
	if err := r.dropCaches(); err != nil {
		return err
	}
	lat, err := preadAll(filepath.Join(r.lbDir, "big"), offsets, r.src)
	if err != nil {
		return err
	}
	r.row.randP50.AddBaseline(baseLoopback, percentile(lat, 50))
	r.row.randP99.AddBaseline(baseLoopback, percentile(lat, 99))
	if err := r.dropCaches(); err != nil {
		return err
	}
	if lat, err = rawRandom(ctx, r.s3, r.rawBucket, "big", offsets, r.src); err != nil {
		return err
	}
	r.row.randP50.AddBaseline(baseGet4K, percentile(lat, 50))
	r.row.randP99.AddBaseline(baseGet4K, percentile(lat, 99))

	if !r.hasSync {
		for _, row := range rows {
			row.NA("`cloudfs sync`: nothing is committed for a fresh cache dir to read")
		}
		return nil
	}
	if !r.committed {
		return errors.New("the large file was not committed")
	}
	m := r.startCloudfs("cache-random", r.mnt, r.remote)
	defer m.Unmount()
	big := filepath.Join(r.mnt, "big")
	if err := r.dropCaches(); err != nil {
		return err
	}
	if _, err := os.Stat(big); errors.Is(err, fs.ErrNotExist) {
		for _, row := range rows {
			row.NA(lazyNA)
		}
		return nil
	} else if err != nil {
		return err
	}
	if lat, err = preadAll(big, offsets, r.content); err != nil {
		return err
	}
	r.row.randP50.Set(percentile(lat, 50))
	r.row.randP99.Set(percentile(lat, 99))
	return nil
}

// remoteTree writes a volume of remoteFiles files straight into a new
// remote, mounts it with a fresh cache dir and times the first ls of its
// root, then walks all of it (ls -lR) and reads the daemon's peak RSS.
func (r *benchRun) remoteTree(ctx context.Context) error {
	shape := newRemoteTreeShape(r.cfg.remoteFiles)
	var store chunkstore.Store
	var remote string
	if r.remoteKind == "s3" {
		store, remote = openS3(r.b, r.minio, "tree"), "s3://"+r.minio.Bucket+"/tree"
	} else {
		remote = filepath.Join(r.base, "remote-tree")
		s, err := local.Open(remote)
		if err != nil {
			return err
		}
		store = s
	}
	start := time.Now()
	if err := writeRemoteTree(ctx, store, shape); err != nil {
		return fmt.Errorf("write the remote tree: %w", err)
	}
	built := time.Since(start)
	progress("wrote a %d-file remote tree (%d directories) in %v", shape.files, shape.dirs, built.Round(time.Millisecond))

	mnt := filepath.Join(r.base, "mnt-tree")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	m := r.startCloudfs("cache-tree", mnt, remote)
	defer m.Unmount()
	pid, err := daemonPID(r.bin, mnt)
	if err != nil {
		return err
	}
	if r.dropCachesAvailable != nil {
		return r.dropCachesAvailable
	}
	if err := r.dropCaches(); err != nil {
		return err
	}
	names := newLineCounter("d")
	d, err := timed(ctx, nil, names, "ls", mnt)
	if err != nil {
		return err
	}
	if names.n == 0 {
		for _, row := range []*benchreport.Row{r.row.firstLs, r.row.walk, r.row.rssTree} {
			row.NA(lazyNA)
		}
		return nil
	}
	if names.n != shape.dirs {
		return fmt.Errorf("ls of the root listed %d directories, want %d", names.n, shape.dirs)
	}
	r.row.firstLs.Set(d.Seconds())
	r.row.firstLs.Note = fmt.Sprintf("root of %d directories × up to %d files (written in %.1f s); %s remote",
		shape.dirs, remoteDirFiles, built.Seconds(), r.remoteKind)

	ctx, cancel := context.WithTimeout(ctx, r.cfg.walkTimeout)
	defer cancel()
	lines := newLineCounter("-d")
	d, walkErr := timed(ctx, nil, lines, "ls", "-lR", mnt)
	rss, err := peakRSS(pid)
	if err != nil {
		return err
	}
	switch {
	case ctx.Err() != nil:
		err := fmt.Errorf("ls -lR did not finish within %v (CLOUDFS_BENCH_WALK_TIMEOUT); %d of %d entries listed, VmHWM then %s",
			r.cfg.walkTimeout, lines.n, shape.entries(), benchreport.FormatBytes(float64(rss)))
		r.row.walk.Broken(err)
		r.row.rssTree.Broken(err)
		return nil
	case walkErr != nil:
		return walkErr
	case lines.n != shape.entries():
		return fmt.Errorf("ls -lR listed %d entries, want %d", lines.n, shape.entries())
	}
	r.row.walk.Set(perSec(shape.entries(), d))
	r.row.rssTree.Set(float64(rss))
	r.row.rssTree.Note = fmt.Sprintf("all %d entries looked up", shape.entries())
	return nil
}

// gitDescribe names the checkout the binary was built from.
func gitDescribe() string {
	cmd := exec.Command("git", "describe", "--always", "--dirty")
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "unknown commit"
	}
	return "commit " + strings.TrimSpace(string(out))
}

func goFuseVersion() string {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/hanwen/go-fuse/v2")
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "(version unknown)"
	}
	return strings.TrimSpace(string(out))
}

func kernel() string {
	out, err := exec.Command("uname", "-r").Output()
	if err != nil {
		return "unknown kernel"
	}
	return "Linux " + strings.TrimSpace(string(out))
}

// TestParsePhases checks CLOUDFS_BENCH_ONLY's parsing: empty is every
// phase, names are trimmed and deduplicated, an unknown name is refused.
func TestParsePhases(t *testing.T) {
	if got, err := parsePhases(""); got != nil || err != nil {
		t.Errorf(`parsePhases("") = %q, %v; want nil`, got, err)
	}
	got, err := parsePhases(" cold-read,programs,,cold-read ")
	if err != nil || strings.Join(got, ",") != "cold-read,programs" {
		t.Errorf("parsePhases = %q, %v; want [cold-read programs]", got, err)
	}
	if _, err := parsePhases("cold-read,cold read"); err == nil || !strings.Contains(err.Error(), "latency") {
		t.Errorf("an unknown phase gave %v, want an error naming the phases", err)
	}
	c := benchConfig{only: got}
	if !c.runs("programs") || c.runs("write") || !(benchConfig{}).runs("write") {
		t.Errorf("runs disagrees with only = %q", got)
	}
}
