package main

import (
	"context"
	"fmt"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// fsckReply is what `cloudfs fsck --json` prints.
type fsckReply struct {
	Remote   string   `json:"remote,omitempty"`
	CacheDir string   `json:"cache_dir,omitempty"`
	ReadData bool     `json:"read_data"`
	Commits  int      `json:"commits"`
	Trees    int      `json:"trees"`
	Chunks   int      `json:"chunks"`
	Packs    int      `json:"packs"`
	Problems []string `json:"problems"`
	// HistoryEnd is the generation of the oldest commit still in the
	// store when older ones were collected.
	HistoryEnd uint64   `json:"history_end,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// cmdFsck runs `cloudfs fsck REMOTE [--read-data]` (every object reachable
// from head and its history exists and parses; with --read-data, every
// chunk's bytes match its id) or `cloudfs fsck --cache-dir DIR` (a cache
// dir's index against its staging files and chunk cache).
func cmdFsck(args []string) error {
	var s3f s3Flags
	fl := pflag.NewFlagSet("fsck", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs fsck [--read-data] [flags] REMOTE\n"+
			"       cloudfs fsck --cache-dir DIR\n\n"+
			"Checks that every object head and its history reach exists and parses\n"+
			"(with --read-data: that every chunk's bytes match its id), and reports\n"+
			"each problem with the paths it affects; exit 1 when there is one.\n"+
			"With --cache-dir, checks an unmounted cache dir instead.\n\n%s", fl.FlagUsages())
	}
	readData := fl.Bool("read-data", false, "read every chunk and check its bytes against its id")
	cacheDir := fl.String("cache-dir", "", "check this cache dir (unmounted) rather than a remote")
	asJSON := fl.Bool("json", false, "print the report as JSON")
	addS3Flags(fl, &s3f)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	var rep *fsckReply
	var err error
	switch {
	case *cacheDir != "" && fl.NArg() == 0:
		rep, err = fsckCacheDir(*cacheDir)
	case *cacheDir == "" && fl.NArg() == 1:
		rep, err = fsckRemote(fl.Arg(0), s3f, *readData)
	default:
		fl.Usage()
		return userError("fsck wants REMOTE, or --cache-dir DIR alone")
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Println(p)
		}
		for _, w := range rep.Warnings {
			fmt.Println("warning:", w)
		}
		what := rep.Remote
		if what == "" {
			what = "cache dir " + rep.CacheDir
		}
		if rep.Remote != "" {
			fmt.Printf("%s: %s, %d trees and manifests, %d chunk objects, %s checked",
				what, plural(rep.Commits, "commit"), rep.Trees, rep.Chunks, plural(rep.Packs, "pack"))
			if rep.ReadData {
				fmt.Print(" (all bytes read)")
			}
			fmt.Println()
			if rep.HistoryEnd > 0 {
				fmt.Printf("history starts at generation %d (older commits were collected)\n", rep.HistoryEnd)
			}
		}
		fmt.Printf("%s: %s\n", what, plural(len(rep.Problems), "problem"))
	}
	if len(rep.Problems) > 0 {
		return &exitError{code: 1, msg: "fsck found " + plural(len(rep.Problems), "problem")}
	}
	return nil
}

func fsckRemote(arg string, s3f s3Flags, readData bool) (*fsckReply, error) {
	ctx := context.Background()
	store, err := openVolumeRemote(ctx, arg, s3f)
	if err != nil {
		return nil, err
	}
	bar := spinner(os.Stderr, "checking", "objects")
	opts := bucket.CheckOptions{ReadData: readData}
	if bar != nil {
		opts.Progress = func(n int64) {
			if n%100 == 0 {
				_ = bar.Set64(n)
			}
		}
	}
	res, err := bucket.Check(ctx, store, opts)
	finishBar(bar)
	if err != nil {
		return nil, &exitError{code: 1, msg: fmt.Sprintf("fsck of %s: %v", store, err)}
	}
	rep := &fsckReply{Remote: store.String(), ReadData: readData, Commits: res.Commits, HistoryEnd: res.HistoryEnd,
		Problems: []string{}}
	if res.Reach != nil {
		rep.Trees, rep.Chunks, rep.Packs = len(res.Reach.Trees), len(res.Reach.Chunks), len(res.Reach.Packs)
	}
	for _, p := range res.Problems {
		rep.Problems = append(rep.Problems, p.Error())
	}
	_, bad, err := bucket.ListMarks(ctx, store)
	if err != nil {
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	for _, k := range bad {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s is not a gc mark cloudfs wrote (gc ignores it)", k))
	}
	_, badDevs, err := bucket.ListDevices(ctx, store)
	if err != nil {
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	for _, e := range badDevs {
		rep.Warnings = append(rep.Warnings, e.Error())
	}
	if res.Reach == nil { // Check found no head
		rep.Warnings = append(rep.Warnings, "no commit yet ("+chunkstore.HeadKey+" is missing)")
	}
	return rep, nil
}

func finishBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}
