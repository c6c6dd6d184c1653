package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// notifyEnv names the descriptor on which a background daemon reports to
// the process that started it: "ok" once mounted, or "error: <message>".
const notifyEnv = "CLOUDFS_NOTIFY_FD"

// notifier is the daemon's end of that pipe (inactive in the foreground).
type notifier struct{ f *os.File }

func notifierFromEnv() *notifier {
	fd, err := strconv.Atoi(os.Getenv(notifyEnv))
	if err != nil || fd < 3 {
		return &notifier{}
	}
	os.Unsetenv(notifyEnv)
	return &notifier{f: os.NewFile(uintptr(fd), "notify")}
}

func (n *notifier) active() bool { return n.f != nil }

func (n *notifier) ready() { n.send("ok") }

func (n *notifier) fail(err error) { n.send("error: " + strings.ReplaceAll(err.Error(), "\n", " ")) }

func (n *notifier) send(msg string) {
	if n.f == nil {
		return
	}
	fmt.Fprintln(n.f, msg)
	n.f.Close()
	n.f = nil
}

// runBackground starts this command again as a detached daemon (own
// session, no terminal) and waits until it reports the mount live or
// failed.
func runBackground(args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("background: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("background: %w", err)
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("background: %w", err)
	}
	defer devnull.Close()
	cmd := exec.Command(exe, append([]string{"mount"}, args...)...)
	cmd.Env = append(os.Environ(), notifyEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("background: start daemon: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	line = strings.TrimSpace(line)
	switch {
	case line == "ok":
		return cmd.Process.Release()
	case strings.HasPrefix(line, "error: "):
		cmd.Wait()
		return &exitError{code: 1, msg: strings.TrimPrefix(line, "error: ")}
	}
	err = cmd.Wait()
	return &exitError{code: 1, msg: fmt.Sprintf("the daemon exited before the mount was live (%v)", err)}
}
