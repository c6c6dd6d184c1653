package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// statsKinds are the kinds of objects `cloudfs stats` counts, by key
// prefix, in the order it prints them; anything else (head, the volume
// settings, keys cloudfs does not write) is "other".
var statsKinds = []struct{ name, prefix string }{
	{"chunks", chunkstore.ChunksPrefix},
	{"packs", chunkstore.PacksPrefix},
	{"trees", chunkstore.TreesPrefix}, // trees and manifests
	{"commits", chunkstore.CommitsPrefix},
	{"devices", chunkstore.DevicesPrefix},
	{"gc marks", chunkstore.GCPrefix},
	{"other", ""},
}

// kindStats counts the objects of one kind.
type kindStats struct {
	Kind    string `json:"kind"`
	Objects int64  `json:"objects"`
	Bytes   int64  `json:"bytes"`
}

// statsReply is what `cloudfs stats --json` prints.
type statsReply struct {
	Remote string      `json:"remote"`
	Kinds  []kindStats `json:"kinds"`
	// Objects and StoredBytes are the totals of Kinds.
	Objects     int64 `json:"objects"`
	StoredBytes int64 `json:"stored_bytes"`
	// Head is the current commit ("" before the first); Files, Dirs and
	// LogicalBytes are what its tree holds (its commit's stats).
	Head         string `json:"head,omitempty"`
	Generation   uint64 `json:"generation,omitempty"`
	Files        uint64 `json:"files"`
	Dirs         uint64 `json:"dirs"`
	LogicalBytes uint64 `json:"logical_bytes"`
}

// cmdStats runs `cloudfs stats REMOTE`: the objects of the volume by kind
// with their bytes, and the bytes its head holds against the bytes stored
// (the saving of deduplication and compression, less what history and
// garbage cost).
func cmdStats(args []string) error {
	var s3f s3Flags
	fl := pflag.NewFlagSet("stats", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs stats [--json] [flags] REMOTE\n\n"+
			"Counts the volume's objects and bytes by kind (one listing of the\n"+
			"remote) and compares the bytes its head holds with the bytes stored.\n\n%s", fl.FlagUsages())
	}
	asJSON := fl.Bool("json", false, "print the figures as JSON")
	addS3Flags(fl, &s3f)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() != 1 {
		fl.Usage()
		return userError("stats wants REMOTE")
	}
	ctx := context.Background()
	store, err := openVolumeRemote(ctx, fl.Arg(0), s3f)
	if err != nil {
		return err
	}
	rep, err := volumeStats(ctx, store, os.Stderr)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(rep)
	}
	return printStats(os.Stdout, rep)
}

// openVolumeRemote opens the remote arg names (s3://…, a directory) for a
// maintenance command, and checks that it holds a volume.
func openVolumeRemote(ctx context.Context, arg string, s3f s3Flags) (chunkstore.Store, error) {
	spec, err := parseRemote(arg)
	if err != nil {
		return nil, err
	}
	store, err := openRemote(ctx, spec, s3f, false, zap.NewNop())
	if err != nil {
		return nil, err
	}
	if _, err := bucket.ReadVolume(ctx, store); err != nil {
		if errors.Is(err, chunkstore.ErrNotFound) {
			return nil, &exitError{code: 1, msg: fmt.Sprintf("%s holds no cloudfs volume (no %s)", store, chunkstore.VolumeKey)}
		}
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	return store, nil
}

// spinner returns a progress spinner on progress when it is a terminal
// (nil otherwise: plain lines are the caller's).
func spinner(progress *os.File, what, unit string) *progressbar.ProgressBar {
	if !term.IsTerminal(int(progress.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(-1, progressbar.OptionSetWriter(progress),
		progressbar.OptionSetDescription(what), progressbar.OptionClearOnFinish(),
		progressbar.OptionShowCount(), progressbar.OptionSetItsString(unit), progressbar.OptionShowIts())
}

// volumeStats lists store once and reads its head commit. A terminal on
// progress shows a spinner with the objects listed so far.
func volumeStats(ctx context.Context, store chunkstore.Store, progress *os.File) (*statsReply, error) {
	rep := &statsReply{Remote: store.String()}
	kinds := make([]kindStats, len(statsKinds))
	for i, k := range statsKinds {
		kinds[i].Kind = k.name
	}
	bar := spinner(progress, "listing", "objects")
	err := store.List(ctx, "", func(info chunkstore.Info) error {
		i := len(statsKinds) - 1
		for j, k := range statsKinds[:i] {
			if strings.HasPrefix(info.Key, k.prefix) {
				i = j
				break
			}
		}
		kinds[i].Objects++
		kinds[i].Bytes += info.Size
		if bar != nil {
			bar.Add(1)
		}
		return nil
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("list %s: %v", store, err)}
	}
	rep.Kinds = kinds
	for _, k := range kinds {
		rep.Objects += k.Objects
		rep.StoredBytes += k.Bytes
	}
	head, _, ok, err := bucket.ReadHead(ctx, store)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("read the head of %s: %v", store, err)}
	}
	if ok {
		c, err := bucket.ReadCommit(ctx, store, head)
		if err != nil {
			return nil, &exitError{code: 1, msg: fmt.Sprintf("read the head commit of %s: %v", store, err)}
		}
		rep.Head, rep.Generation = head.String(), c.Generation
		rep.Files, rep.Dirs, rep.LogicalBytes = c.Stats.Files, c.Stats.Dirs, c.Stats.Bytes
	}
	return rep, nil
}

// printStats writes rep as a table and a summary line.
func printStats(w io.Writer, rep *statsReply) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "kind\tobjects\tbytes\t\n")
	for _, k := range rep.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", k.Kind, k.Objects, human(k.Bytes))
	}
	fmt.Fprintf(tw, "total\t%d\t%s\t\n", rep.Objects, human(rep.StoredBytes))
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Head == "" {
		_, err := fmt.Fprintf(w, "\nno commit yet\n")
		return err
	}
	ratio := "n/a"
	if rep.StoredBytes > 0 {
		ratio = fmt.Sprintf("%.2f×", float64(rep.LogicalBytes)/float64(rep.StoredBytes))
	}
	_, err := fmt.Fprintf(w, "\nhead (generation %d): %s, %s, %s of file content; stored %s: %s\n",
		rep.Generation, plural(int(rep.Files), "file"), plural(int(rep.Dirs), "directory"),
		human(int64(rep.LogicalBytes)), human(rep.StoredBytes), ratio)
	return err
}
