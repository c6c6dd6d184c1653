package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// cmdStatus runs `cloudfs status MOUNTPOINT`: the state of the mount's
// uploads, as a table or (--json) as the daemon's statusReply.
func cmdStatus(args []string) error {
	fl := pflag.NewFlagSet("status", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs status [--json] MOUNTPOINT\n\n%s", fl.FlagUsages())
	}
	asJSON := fl.Bool("json", false, "print the figures as JSON")
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return userError("status wants MOUNTPOINT")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := callDaemon(ctx, fl.Arg(0), controlRequest{Op: opStatus})
	if err != nil {
		return err
	}
	if rep.Status == nil {
		return &exitError{code: 1, msg: "the daemon sent no status"}
	}
	if *asJSON {
		return printJSON(rep.Status)
	}
	return printStatus(os.Stdout, rep.Status, time.Now())
}

// printStatus writes st as a two-column table.
func printStatus(w io.Writer, st *statusReply, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("mountpoint", "%s", st.Mountpoint)
	row("remote", "%s", st.Remote)
	row("cache dir", "%s", st.CacheDir)
	row("device", "%s (pid %d)", st.Device, st.PID)
	if st.Writeback {
		row("write-back", "on, settle delay %v", st.SettleDelay)
	} else {
		row("write-back", "off: close() waits for the commit")
	}
	if st.Online {
		row("connection", "online")
	} else {
		row("connection", "offline since %s: %s", ago(st.OfflineSince, now), st.OfflineError)
	}
	if st.PollInterval > 0 {
		row("polling", "every %v for other machines' commits", st.PollInterval)
	} else {
		row("polling", "off (pulls on cloudfs sync and before each commit)")
	}
	p := st.Pull
	if p.LastPull.IsZero() {
		row("last pull", "none since mounted")
	} else {
		row("last pull", "%s (generation %d, from %s), %s", short(p.LastPullCommit), p.LastPullGeneration,
			p.LastPullDevice, ago(p.LastPull, now))
	}
	if p.LastError != "" {
		row("pull error", "%s", p.LastError)
	}
	if p.DeviceShared != "" {
		row("device", "WARNING: %s", p.DeviceShared)
	}
	row("conflicts", "%d", p.ConflictCount)
	for i, c := range p.Conflicts {
		if i == maxStatusConflicts {
			row("", "and %d more (cloudfs status --json)", p.ConflictCount-i)
			break
		}
		if c.CopyPath != "" {
			row("", "%s: %s, copy at %s (%s)", c.Kind, c.Path, c.CopyPath, ago(c.Time, now))
		} else {
			row("", "%s: %s (%s)", c.Kind, c.Path, ago(c.Time, now))
		}
	}
	row("not pushed", "%s, %s", plural(st.QueuedFiles, "file"), human(st.QueuedBytes))
	if st.RecoveredFiles > 0 {
		row("recovered", "%s (%s) the index did not account for, in %s: they may hold changes never uploaded; "+
			"look at them, then remove them", plural(st.RecoveredFiles, "staging file"), human(st.RecoveredBytes), st.RecoveryDir)
	}
	if st.Uploading > 0 {
		row("uploading", "%s", plural(st.Uploading, "file"))
	} else {
		row("uploading", "idle")
	}
	row("failed", "%d", len(st.Failed))
	for _, f := range st.Failed {
		p := f.Path
		if p == "" {
			p = fmt.Sprintf("inode %d", f.Ino)
		}
		next := "retried when it changes or on cloudfs sync"
		if !f.Permanent && !f.NextTry.IsZero() {
			next = "next try " + ago(f.NextTry, now)
		}
		row("", "%s: %s (%s, %s)", p, f.Error, plural(f.Attempts, "attempt"), next)
	}
	switch {
	case st.LastCommit != "":
		row("last commit", "%s, %s", short(st.LastCommit), ago(st.LastCommitTime, now))
		if v := st.Volume; v != nil {
			row("volume", "%s, %s, %s in %s", plural(int(v.Files), "file"), plural(int(v.Dirs), "dir"),
				human(int64(v.Bytes)), plural(int(v.Chunks), "chunk ref"))
		}
	case st.BaseCommit != "":
		row("last commit", "none by this mount (base %s)", short(st.BaseCommit))
	default:
		row("last commit", "none")
	}
	if st.LastError != "" {
		row("last error", "%s", st.LastError)
	}
	row("chunks", "%d uploaded (%s; %d as deltas of the chunks they replaced, %d in %s), %d already present (%s)",
		st.ChunksUploaded, human(st.BytesUploaded), st.Cache.Deltas, st.ChunksPacked, plural(st.Packs, "pack"),
		st.ChunksPresent, human(st.BytesPresent))
	c := st.Cache
	row("cache", "%s of %s in %s; %d not yet uploaded (%s); %d pinned", human(c.Used), human(c.Limit),
		plural(c.Chunks, "chunk"), c.DirtyChunks, human(c.DirtyBytes), c.Pins)
	row("reads", "%d from the cache, %d fetched whole, %d by verified range (%s)", c.Hits, c.Misses,
		c.Ranged, human(c.RangedBytes))
	return tw.Flush()
}

// maxStatusConflicts bounds the conflicts the table lists.
const maxStatusConflicts = 5

// printJSON writes v to stdout as indented JSON (the --json of the
// reporting commands).
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// human formats a byte count with a binary unit.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 5 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[u-1])
}

// ago formats t relative to now ("3s ago", "in 2m0s") with its clock time.
func ago(t, now time.Time) string {
	d := now.Sub(t).Round(time.Second)
	clock := t.Local().Format("2006-01-02 15:04:05")
	if d < 0 {
		return fmt.Sprintf("in %v (%s)", -d, clock)
	}
	return fmt.Sprintf("%v ago (%s)", d, clock)
}

// short abbreviates a hex id.
func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
