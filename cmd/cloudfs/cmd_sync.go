package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
)

// cmdSync runs `cloudfs sync MOUNTPOINT`: it returns once everything
// closed on the mount before the call is committed to the remote and the
// mount has the remote's latest head.
func cmdSync(args []string) error {
	fl := pflag.NewFlagSet("sync", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs sync [flags] MOUNTPOINT\n\n"+
			"Commits everything closed on the mount before the call and exits 0,\n"+
			"or exits non-zero with the reason.\n\n%s", fl.FlagUsages())
	}
	timeout := fl.Duration("timeout", 0, "give up after this long (0: wait as long as it takes)")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return userError("sync wants MOUNTPOINT")
	}
	ctx := context.Background()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	_, err := callDaemon(ctx, fl.Arg(0), controlRequest{Op: opSync})
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &exitError{code: 1, msg: fmt.Sprintf("%s: not committed within %v (cloudfs status shows what is queued)", fl.Arg(0), *timeout)}
	}
	return err
}
