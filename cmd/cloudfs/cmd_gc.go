package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/cloudfs/cloudfs/index/gc"
)

// cmdGC runs `cloudfs gc REMOTE`: one garbage collection run (package
// index/gc), which sweeps the due marks of earlier runs and marks what is
// unreachable now.
func cmdGC(args []string) error {
	var s3f s3Flags
	fl := pflag.NewFlagSet("gc", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs gc [flags] REMOTE\n\n"+
			"Deletes the objects nothing kept reaches, in two steps at least a grace\n"+
			"period apart: a run marks what is unreachable and older than the grace\n"+
			"period, and a later run deletes what it marked that is still unreachable.\n"+
			"Kept: head, the history --keep-last and --keep-within ask for, each live\n"+
			"device's commit, anything younger than the grace period. Safe while other\n"+
			"machines write; run it from cron or a systemd timer.\n\n%s", fl.FlagUsages())
	}
	dry := fl.Bool("dry-run", false, "report what would be marked and deleted; change nothing")
	maxDelete := fl.Int("max-delete", 0, "delete at most this many objects (0: no limit); the rest wait for the next run")
	keepLast := fl.Int("keep-last", gc.DefaultKeepLast, "keep the newest N commits of the history")
	keepWithin := fl.Duration("keep-within", gc.DefaultKeepWithin, "keep the commits made within this long")
	grace := fl.Duration("grace", gc.DefaultGrace, "never mark an object younger than this, and delete marked objects this long after their mark")
	expiry := fl.Duration("device-expiry", gc.DefaultDeviceExpiry, "a device not seen this long no longer holds its commit")
	asJSON := fl.Bool("json", false, "print the report as JSON")
	addS3Flags(fl, &s3f)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return userError("gc wants REMOTE")
	}
	switch {
	case *keepLast < 1:
		return userError("--keep-last %d: at least 1 (head)", *keepLast)
	case *keepWithin < 0, *expiry <= 0, *maxDelete < 0:
		return userError("--keep-within, --device-expiry and --max-delete cannot be negative")
	case *grace < time.Second:
		return userError("--grace %v: at least 1s", *grace)
	}
	ctx := context.Background()
	store, err := openVolumeRemote(ctx, fl.Arg(0), s3f)
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	stage := ""
	opts := gc.Options{KeepLast: *keepLast, KeepWithin: *keepWithin, Grace: *grace, DeviceExpiry: *expiry,
		DryRun: *dry, MaxDelete: *maxDelete, Host: hostName(),
		Progress: func(s string, n int64) {
			if s != stage {
				if bar != nil {
					_ = bar.Finish()
				}
				stage = s
				bar = spinner(os.Stderr, s, "objects")
			}
			if bar != nil {
				_ = bar.Set64(n)
			}
		}}
	if *keepWithin == 0 {
		opts.KeepWithin = time.Nanosecond // keep by count alone
	}
	rep, err := gc.Run(ctx, store, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		if errors.Is(err, gc.ErrBlind) {
			return &exitError{code: 1, msg: err.Error()}
		}
		return &exitError{code: 1, msg: fmt.Sprintf("gc of %s: %v", store, err)}
	}
	if *asJSON {
		return printJSON(rep)
	}
	return printGC(os.Stdout, store.String(), rep, *grace)
}

// printGC writes rep as a table and what comes next.
func printGC(w io.Writer, remote string, rep *gc.Report, grace time.Duration) error {
	verb := ""
	if rep.DryRun {
		verb = " (dry run: would be)"
	}
	fmt.Fprintf(w, "gc of %s: %d commits kept, %s live\n", remote, rep.KeptCommits, plural(rep.Devices, "device"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tobjects\tbytes\t\n")
	row := func(name string, c gc.Count) {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", name, c.Objects, human(c.Bytes))
	}
	row("scanned", rep.Scanned)
	row("reachable", rep.Reachable)
	row("young", rep.Young)
	row("unreachable", rep.Unreachable)
	row("marked"+verb, rep.Marked)
	row("pending", rep.Pending)
	row("freed"+verb, rep.Freed)
	if rep.Left.Objects > 0 {
		row("left by --max-delete", rep.Left)
	}
	if rep.Rescued.Objects > 0 {
		row("rescued", rep.Rescued)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !rep.NextSweep.IsZero() {
		fmt.Fprintf(w, "marked objects can be deleted by a gc run from %s (grace period %v)\n",
			rep.NextSweep.Local().Format("2006-01-02 15:04:05"), grace)
	}
	for _, d := range rep.ExpiredDevices {
		fmt.Fprintf(w, "device %s has not been seen for longer than --device-expiry: it holds nothing back\n", d)
	}
	for _, d := range rep.MissingDevices {
		fmt.Fprintf(w, "warning: the commit device %s last acknowledged is gone\n", d)
	}
	for _, k := range rep.BadMarks {
		fmt.Fprintf(w, "warning: %s is not a gc mark cloudfs wrote: ignored\n", k)
	}
	return nil
}
