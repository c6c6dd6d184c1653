// Command cloudfs mounts a bucket (or a local directory) as a folder.
//
// This package is wiring only: flags, logging, signals and the order in
// which the layers are opened and closed. See DESIGN.md for the layers.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

const usage = `usage: cloudfs <command> [flags] [args]

commands:
  mount [flags] [REMOTE] MOUNTPOINT   mount REMOTE (s3://bucket/prefix or a directory;
                                      default: the embedded store under $XDG_DATA_HOME/cloudfs)
  sync MOUNTPOINT                     commit everything closed on the mount; exit 0 when done
  status [--json] MOUNTPOINT          queued, uploading and failed files, last commit, cache use
  unmount [--wait] MOUNTPOINT         unmount and wait for the daemon to exit; with --wait,
                                      commit everything closed on the mount first
  warmup PATH...                      fetch the files' bytes (a directory: all under it) into
                                      the mount's chunk cache
  stats [--json] REMOTE               the volume's objects and bytes by kind, and the bytes its
                                      head holds against the bytes stored
  gc [--dry-run] [--max-delete N] REMOTE
                                      delete what nothing kept reaches (marked by one run,
                                      deleted by a run a grace period later)
  log [-n N] [--json] REMOTE          the commits of the volume's history, newest first
  fsck [--read-data] REMOTE           check that everything head and its history reach exists
                                      and parses (--read-data: that every chunk matches its id)
  fsck --cache-dir DIR                check an unmounted cache dir's index, staging files and
                                      chunk cache
  recover --cache-dir DIR DEST        copy the files with changes not uploaded out of an
                                      unmounted cache dir (when its remote cannot be mounted)
  mount-helper REMOTE MOUNTPOINT -o OPTIONS
                                      mount(8) helper (also as mount.cloudfs, mount.fuse.cloudfs)
run "cloudfs <command> --help" for the command's flags
`

// exitError is an error whose message is the whole one-line report to the
// user; main prints it and exits with code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func userError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

func main() {
	run := run
	if helperNames[filepath.Base(os.Args[0])] {
		run = cmdMountHelper
	}
	if err := run(os.Args[1:]); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "cloudfs: %v\n", err)
		} else {
			code = 0
		}
		os.Exit(code)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return &exitError{code: 2, msg: "no command given"}
	}
	switch args[0] {
	case "mount":
		return cmdMount(args[1:])
	case "sync":
		return cmdSync(args[1:])
	case "status":
		return cmdStatus(args[1:])
	case "unmount":
		return cmdUnmount(args[1:])
	case "stats":
		return cmdStats(args[1:])
	case "gc":
		return cmdGC(args[1:])
	case "fsck":
		return cmdFsck(args[1:])
	case "log":
		return cmdLog(args[1:])
	case "warmup":
		return cmdWarmup(args[1:])
	case "recover":
		return cmdRecover(args[1:])
	case "mount-helper":
		return cmdMountHelper(args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	if isHelperCall(args) {
		return cmdMountHelper(args) // mount.fuse3 runs `cloudfs REMOTE MOUNTPOINT -o ...`
	}
	return userError("unknown command %q (try cloudfs --help)", args[0])
}

// parseFlags parses a command's flags: --help is passed on as
// pflag.ErrHelp (main prints nothing more and exits 0), any other problem
// becomes a one-line user error.
func parseFlags(fl *pflag.FlagSet, args []string) error {
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return userError("%v", err)
	}
	return nil
}
