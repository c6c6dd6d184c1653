package integration

// System helpers of BenchmarkReport: timed runs of real programs, dropping
// the page cache, the loopback baseline mount, probing the cloudfs binary,
// and the daemon's peak RSS.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// benchCmdTimeout bounds one program run by the benchmark, so a wedged
// mount fails the figure instead of hanging the run.
const benchCmdTimeout = 10 * time.Minute

// timed runs a program with stdout to out (nil: discarded) and returns its
// wall time. A failure carries the program's last lines of stderr.
func timed(ctx context.Context, env []string, out io.Writer, name string, args ...string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, benchCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stdout = out
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(stderr.String(), 3))
	}
	return d, nil
}

// lastLines returns the last n non-empty lines of s, joined by " / ".
func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}

// dropCaches writes back the dirty pages of the file system dir is on
// (syncfs: only the benchmark's disk, so a hung mount elsewhere on the
// machine cannot block it) and drops the clean page, dentry and inode caches
// (root only), so the next access of a file reads its disk or its FUSE
// daemon.
func dropCaches(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	err = unix.Syncfs(fd)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("drop caches: syncfs %s: %w", dir, err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
		return fmt.Errorf("drop the page cache (run as root): %w", err)
	}
	return nil
}

// lineCounter counts the lines written to it that start with one of the
// prefixes (ls -l lines of files and directories), or every line when
// prefixes is empty.
type lineCounter struct {
	prefixes string // first bytes that count
	n        int
	atStart  bool
}

func newLineCounter(prefixes string) *lineCounter {
	return &lineCounter{prefixes: prefixes, atStart: true}
}

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, ch := range p {
		if c.atStart && (c.prefixes == "" || strings.IndexByte(c.prefixes, ch) >= 0) {
			c.n++
		}
		c.atStart = ch == '\n'
	}
	return len(p), nil
}

// loopback is go-fuse's example/loopback mounting a directory of the
// benchmark's disk: the baseline of a FUSE file system that does no work of
// its own.
type loopback struct {
	dir  string // the mount point
	orig string // the directory it serves
	cmd  *exec.Cmd
	done chan struct{}
}

// buildLoopback builds go-fuse's loopback example (the version in go.mod)
// into dir.
func buildLoopback(dir string) (string, error) {
	bin := filepath.Join(dir, "loopback")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/hanwen/go-fuse/v2/example/loopback")
	cmd.Dir = harness.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build go-fuse loopback: %v: %s", err, bytes.TrimSpace(out))
	}
	return bin, nil
}

// startLoopback mounts orig at dir with the loopback binary and registers
// its unmount (fusermount3 -u, then kill and reap) with tb.Cleanup. With
// perms the mount has -allow-other, which in go-fuse's example also means
// default_permissions: the kernel checks permissions, as on cloudfs.
func startLoopback(tb testing.TB, bin, orig, dir string, perms bool) (*loopback, error) {
	args := []string{"-q", dir, orig}
	if perms {
		args = append([]string{"-allow-other"}, args...)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start loopback: %w", err)
	}
	l := &loopback{dir: dir, orig: orig, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(l.done)
	}()
	tb.Cleanup(l.stop)
	deadline := time.Now().Add(harness.MountTimeout)
	for !harness.Mounted(dir) {
		select {
		case <-l.done:
			return nil, fmt.Errorf("loopback exited before mounting %s: %s", dir, lastLines(stderr.String(), 3))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("loopback: %s not mounted after %v", dir, harness.MountTimeout)
		}
	}
	return l, nil
}

// stop unmounts the loopback and reaps its process: a clean unmount first
// (retried while busy), then SIGKILL and a lazy unmount if it hangs.
func (l *loopback) stop() {
	for i := 0; i < 50 && harness.Mounted(l.dir); i++ {
		if exec.Command("fusermount3", "-u", l.dir).Run() == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-l.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-l.cmd.Process.Pid, syscall.SIGKILL)
		<-l.done
	}
	if harness.Mounted(l.dir) {
		exec.Command("fusermount3", "-u", "-z", l.dir).Run()
	}
}

// hasCommand reports whether the cloudfs binary has the subcommand name:
// `cloudfs NAME --help` exits 0 for a command it knows.
func hasCommand(bin, name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, name, "--help")
	return cmd.Run() == nil
}

// probeMount runs `cloudfs mount` of remote on a scratch mount point and
// cache dir and reports whether it mounts; when it does not, the reason is
// the daemon's last words. A successful probe is unmounted again.
func probeMount(bin, remote, scratch string, env []string) (bool, string) {
	mnt, cache := filepath.Join(scratch, "mnt"), filepath.Join(scratch, "cache")
	for _, d := range []string{mnt, cache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return false, err.Error()
		}
	}
	cmd := exec.Command(bin, "mount", "--cache-dir", cache, remote, mnt)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return false, err.Error()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(harness.MountTimeout)
	for {
		if harness.Mounted(mnt) {
			exec.Command("fusermount3", "-u", mnt).Run()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			if harness.Mounted(mnt) {
				exec.Command("fusermount3", "-u", "-z", mnt).Run()
			}
			return true, ""
		}
		select {
		case err := <-done:
			return false, fmt.Sprintf("%v: %s", err, lastLines(out.String(), 1))
		case <-deadline:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return false, fmt.Sprintf("not mounted after %v", harness.MountTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// daemonPID finds the `cloudfs mount` process serving mountpoint (bin
// names it in messages; the match is on the arguments, so a wrapper that
// execs another build is found too).
func daemonPID(bin, mountpoint string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if len(args) >= 3 && args[1] == "mount" && args[len(args)-1] == mountpoint {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process %s mount ... %s", bin, mountpoint)
}

// peakRSS returns VmHWM, the process's peak resident set size, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// fsType names the file system dir is on ("ext2/ext3", "xfs", "tmpfs").
func fsType(dir string) string {
	out, err := exec.Command("stat", "-f", "-c", "%T", dir).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
