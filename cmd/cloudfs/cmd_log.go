package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// logEntry is one commit in `cloudfs log --json`.
type logEntry struct {
	Commit     string    `json:"commit"`
	Generation uint64    `json:"generation"`
	Time       time.Time `json:"time"`
	Device     string    `json:"device"`
	Parents    []string  `json:"parents,omitempty"`
	Files      uint64    `json:"files"`
	Bytes      uint64    `json:"bytes"`
	// FilesDelta and BytesDelta are the net change of the volume's totals
	// against the first parent (the whole volume for the first commit).
	FilesDelta int64 `json:"files_delta"`
	BytesDelta int64 `json:"bytes_delta"`
}

// cmdLog runs `cloudfs log REMOTE`: the commits of head's history, newest
// first, as far as garbage collection kept them.
func cmdLog(args []string) error {
	var s3f s3Flags
	fl := pflag.NewFlagSet("log", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs log [-n N] [--json] [flags] REMOTE\n\n"+
			"Lists the commits of the volume's history, newest first: generation,\n"+
			"time, device, the volume's files and bytes, and their net change.\n\n%s", fl.FlagUsages())
	}
	limit := fl.IntP("max-count", "n", 0, "list at most N commits (0: all the bucket holds)")
	asJSON := fl.Bool("json", false, "print the commits as JSON")
	addS3Flags(fl, &s3f)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 || *limit < 0 {
		fl.Usage()
		return userError("log wants REMOTE (and -n at least 0)")
	}
	ctx := context.Background()
	store, err := openVolumeRemote(ctx, fl.Arg(0), s3f)
	if err != nil {
		return err
	}
	entries, err := history(ctx, store, *limit)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("log of %s: %v", store, err)}
	}
	if *asJSON {
		return printJSON(entries)
	}
	if len(entries) == 0 {
		fmt.Println("no commit yet")
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "GEN\tTIME\tDEVICE\tFILES\tBYTES\tCHANGE\tCOMMIT\n")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%+d files, %s\t%s\n", e.Generation, e.Time.Local().Format("2006-01-02 15:04:05"),
			e.Device, e.Files, human(int64(e.Bytes)), e.FilesDelta, signedHuman(e.BytesDelta), e.Commit[:12])
	}
	return tw.Flush()
}

// history returns up to limit (0: all) commits of head's history. The
// net change of each is against its first parent's totals: read in the
// walk, or once more for a parent beyond the limit.
func history(ctx context.Context, s chunkstore.Store, limit int) ([]logEntry, error) {
	head, _, ok, err := bucket.ReadHead(ctx, s)
	if err != nil || !ok {
		return nil, err
	}
	out := []logEntry{}
	var firstParents []chunkstore.ID // of each entry, zero for none
	stats := map[chunkstore.ID]tree.Stats{}
	err = bucket.History(ctx, s, head, func(id chunkstore.ID, c *tree.Commit) (bool, error) {
		if limit > 0 && len(out) >= limit {
			return false, nil
		}
		stats[id] = c.Stats
		e := logEntry{Commit: id.String(), Generation: c.Generation, Time: time.Unix(0, c.TimeNs).UTC(), Device: c.Device,
			Files: c.Stats.Files, Bytes: c.Stats.Bytes}
		var first chunkstore.ID
		for i, p := range c.Parents {
			e.Parents = append(e.Parents, p.String())
			if i == 0 {
				first = p
			}
		}
		out = append(out, e)
		firstParents = append(firstParents, first)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		e, p := &out[i], firstParents[i]
		e.FilesDelta, e.BytesDelta = int64(e.Files), int64(e.Bytes)
		if p.IsZero() {
			continue
		}
		ps, ok := stats[p]
		if !ok {
			pc, err := bucket.ReadCommit(ctx, s, p)
			if err != nil {
				continue // collected: the change is against nothing known
			}
			ps, stats[p] = pc.Stats, pc.Stats
		}
		e.FilesDelta -= int64(ps.Files)
		e.BytesDelta -= int64(ps.Bytes)
	}
	return out, nil
}

func signedHuman(n int64) string {
	if n < 0 {
		return "-" + human(-n)
	}
	return "+" + human(n)
}
