package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// cmdWarmup runs `cloudfs warmup PATH...`: the mount's daemon fetches the
// chunks of the files at the paths (a directory: every file under it) into
// its chunk cache, so that they read at local speed, and offline while
// they stay cached.
func cmdWarmup(args []string) error {
	fl := pflag.NewFlagSet("warmup", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs warmup PATH...\n\n"+
			"Fetches the bytes of the files at the paths (a directory: every file\n"+
			"under it) into the mount's chunk cache. They stay there while the\n"+
			"cache has room (--cache-size of the mount).\n\n%s", fl.FlagUsages())
	}
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		fl.Usage()
		return userError("warmup wants PATH...")
	}
	mnt, rels, err := mountPaths(fl.Args())
	if err != nil {
		return err
	}
	var bar *progressbar.ProgressBar
	if term.IsTerminal(int(os.Stderr.Fd())) {
		bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("warming up"),
			progressbar.OptionClearOnFinish())
	}
	rep, err := callPolling(context.Background(), mnt, controlRequest{Op: opWarmup, Paths: rels}, func(st *statusReply) {
		if bar != nil && st.Warmup != nil {
			bar.ChangeMax64(st.Warmup.Bytes)
			bar.Set64(st.Warmup.Done)
		}
	})
	if bar != nil {
		bar.Exit()
	}
	if err != nil {
		return err
	}
	res := rep.Warmup
	if res == nil {
		return &exitError{code: 1, msg: "the daemon sent no result"}
	}
	fmt.Printf("%s, %s in %s: %s fetched, the rest cached already\n",
		plural(res.Files, "file"), human(res.Bytes), plural(res.Chunks, "chunk"), plural(int(res.Fetched), "chunk"))
	return nil
}

// mountPaths finds the cloudfs mount that holds every path (the nearest
// mount point above the first) and returns it with the paths relative to
// its root.
func mountPaths(paths []string) (string, []string, error) {
	var mnt string
	rels := make([]string, len(paths))
	for i, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", nil, userError("%s: %v", p, err)
		}
		if r, err := filepath.EvalSymlinks(abs); err == nil {
			abs = r
		} else {
			return "", nil, userError("%s: %v", p, unwrapOp(err))
		}
		if mnt == "" {
			if mnt, err = mountOf(abs); err != nil {
				return "", nil, err
			}
		}
		rel, err := filepath.Rel(mnt, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", nil, userError("%s is not on the cloudfs mount %s (one mount per call)", p, mnt)
		}
		rels[i] = rel
	}
	return mnt, rels, nil
}

// mountOf returns the nearest cloudfs mount point at or above abs.
func mountOf(abs string) (string, error) {
	for dir := abs; ; dir = filepath.Dir(dir) {
		typ, mounted, err := mountType(dir)
		if err != nil {
			return "", err
		}
		if mounted && typ == fuseType {
			return dir, nil
		}
		if mounted || dir == "/" {
			return "", userError("%s is not on a cloudfs mount", abs)
		}
	}
}
