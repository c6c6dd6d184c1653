package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Unmount timing: how often --wait prints a plain line when stderr is not
// a terminal, and how long the daemon may take to exit once the mount is
// gone.
const (
	unmountLines = 2 * time.Second
	daemonExit   = 30 * time.Second
)

// cmdUnmount runs `cloudfs unmount [--wait] MOUNTPOINT`: it unmounts the
// mount and returns once its daemon has exited. With --wait it first
// commits everything closed on the mount (cloudfs sync), showing what is
// left to upload, so that the bucket holds it all before the mount goes.
func cmdUnmount(args []string) error {
	fl := pflag.NewFlagSet("unmount", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs unmount [--wait] MOUNTPOINT\n\n"+
			"Unmounts a cloudfs mount and waits for its daemon to exit. Changes not\n"+
			"uploaded yet stay in the cache dir and are uploaded by the next mount;\n"+
			"with --wait they are committed to the remote first.\n\n%s", fl.FlagUsages())
	}
	wait := fl.Bool("wait", false, "commit everything closed on the mount to the remote before unmounting")
	timeout := fl.Duration("timeout", 0, "with --wait, give up (and stay mounted) after this long (0: wait as long as it takes)")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return userError("unmount wants MOUNTPOINT")
	}
	rt, err := findRuntime(fl.Arg(0))
	if err != nil {
		return err
	}
	if *wait {
		ctx := context.Background()
		if *timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		if err := pushPending(ctx, rt.Mountpoint, os.Stderr); err != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &exitError{code: 1, msg: fmt.Sprintf("%s: not committed within %v; still mounted (cloudfs status shows what is queued)", rt.Mountpoint, *timeout)}
			}
			return err
		}
	}
	if err := unmountFUSE(rt.Mountpoint); err != nil {
		return err
	}
	return waitExit(rt.PID, rt.Mountpoint, daemonExit)
}

// pushPending runs the sync of mnt while it reports the daemon's upload
// queue on w: a progress bar of bytes on a terminal, a line every
// unmountLines otherwise.
func pushPending(ctx context.Context, mnt string, w *os.File) error {
	p := newPushProgress(w, term.IsTerminal(int(w.Fd())))
	_, err := callPolling(ctx, mnt, controlRequest{Op: opSync}, func(st *statusReply) {
		p.update(st.QueuedFiles, st.QueuedBytes, st.BytesCut)
	})
	p.finish(err == nil)
	return err
}

// pushProgress shows what is left to upload: the queue's files, and its
// bytes less those cut into chunks since the first report (the queue
// itself shrinks only when a round commits).
type pushProgress struct {
	w       io.Writer
	bar     *progressbar.ProgressBar // nil when w is not a terminal
	started bool
	cut0    int64     // Status.BytesCut at the first report
	total   int64     // the most bytes seen queued
	last    time.Time // of the last plain line
	shown   string    // the last plain line
}

func newPushProgress(w io.Writer, tty bool) *pushProgress {
	p := &pushProgress{w: w}
	if tty {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetDescription("uploading"),
			progressbar.OptionClearOnFinish())
	}
	return p
}

func (p *pushProgress) update(files int, queued, cut int64) {
	if !p.started {
		p.started, p.cut0 = true, cut
	}
	p.total = max(p.total, queued)
	done := min(cut-p.cut0, p.total)
	left := fmt.Sprintf("%s, %s left to upload", plural(files, "file"), human(max(queued-done, 0)))
	if p.bar != nil {
		p.bar.ChangeMax64(p.total)
		p.bar.Set64(done)
		p.bar.Describe(left) // renders, with the new value
		return
	}
	if left != p.shown && time.Since(p.last) >= unmountLines {
		fmt.Fprintf(p.w, "cloudfs unmount: %s\n", left)
		p.last, p.shown = time.Now(), left
	}
}

func (p *pushProgress) finish(ok bool) {
	if p.bar != nil {
		if ok {
			p.bar.Finish()
		} else {
			p.bar.Exit()
		}
		return
	}
	if ok && p.shown != "" {
		fmt.Fprintln(p.w, "cloudfs unmount: everything is committed")
	}
}

// unmountFUSE unmounts mnt: directly as root, else through fusermount3
// (the mount's owner may unmount it). A busy mount stays mounted and the
// error says so.
func unmountFUSE(mnt string) error {
	if os.Geteuid() == 0 {
		err := unix.Unmount(mnt, 0)
		if errors.Is(err, syscall.EBUSY) {
			return &exitError{code: 1, msg: fmt.Sprintf("%s is busy (a file or directory on it is in use); close it and try again", mnt)}
		}
		if err != nil {
			return &exitError{code: 1, msg: fmt.Sprintf("unmount %s: %v", mnt, err)}
		}
		return nil
	}
	out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return &exitError{code: 1, msg: fmt.Sprintf("unmount %s: %s", mnt, msg)}
	}
	return nil
}

// waitExit waits for the daemon pid of mnt to exit after its mount went.
func waitExit(pid int, mnt string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) || zombie(pid) {
			return nil
		}
		if time.Now().After(deadline) {
			return &exitError{code: 1, msg: fmt.Sprintf("%s is unmounted but its daemon (pid %d) has not exited after %v", mnt, pid, limit)}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombie reports whether process pid has exited and waits for its parent
// to reap it.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
