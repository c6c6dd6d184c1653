package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/fs"
	"github.com/cloudfs/cloudfs/index"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
)

type mountFlags struct {
	cacheDir   string
	cacheSize  string
	options    []string
	logLevel   string
	debugFuse  bool
	background bool
}

func cmdMount(args []string) error {
	var f mountFlags
	fl := pflag.NewFlagSet("mount", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs mount [flags] [REMOTE] MOUNTPOINT\n\n%s", fl.FlagUsages())
	}
	fl.StringVar(&f.cacheDir, "cache-dir", "", "index, staging and chunk cache (default $XDG_CACHE_HOME/cloudfs/<volume>)")
	fl.StringVar(&f.cacheSize, "cache-size", "10G", "bound of the chunk cache (clean chunks)")
	fl.StringArrayVarP(&f.options, "options", "o", nil, "mount options, comma-separated: allow_other, ro, nonempty, fsname=NAME, nodev, nosuid, noexec")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.debugFuse, "debug-fuse", false, "log every FUSE request")
	fl.BoolVar(&f.background, "background", false, "detach once the mount is live")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return userError("%v", err)
	}
	var remote, mnt string
	switch fl.NArg() {
	case 1:
		mnt = fl.Arg(0)
	case 2:
		remote, mnt = fl.Arg(0), fl.Arg(1)
	default:
		fl.Usage()
		return userError("mount wants [REMOTE] MOUNTPOINT")
	}
	if f.background && os.Getenv(notifyEnv) == "" {
		return runBackground(args)
	}
	n := notifierFromEnv()
	err := mountAndServe(f, remote, mnt, n)
	if err != nil {
		n.fail(err)
	}
	return err
}

func mountAndServe(f mountFlags, remote, mnt string, n *notifier) error {
	opts, err := parseOptions(f.options)
	if err != nil {
		return err
	}
	cacheSize, err := parseSize(f.cacheSize)
	if err != nil {
		return userError("--cache-size: %v", err)
	}
	mp, err := checkMountpoint(mnt, opts.nonempty)
	if err != nil {
		return err
	}
	spec, err := parseRemote(remote)
	if err != nil {
		return err
	}
	cacheDir := f.cacheDir
	if cacheDir == "" {
		if cacheDir, err = defaultCacheDir(spec.name); err != nil {
			return err
		}
	}
	if cacheDir, err = filepath.Abs(cacheDir); err != nil {
		return userError("--cache-dir: %v", err)
	}
	lock, err := prepareCacheDir(cacheDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	logFile := ""
	if n.active() {
		logFile = filepath.Join(cacheDir, "cloudfs.log")
	}
	log, err := newLogger(f.logLevel, logFile)
	if err != nil {
		return err
	}
	defer log.Sync()

	ctx := context.Background()
	store, err := openRemote(ctx, spec, log.Named("store"))
	if err != nil {
		return err
	}
	vol, err := checkRemote(ctx, store)
	if err != nil {
		return err
	}
	log.Debug("volume", zap.String("store", store.String()), zap.Any("settings", vol))

	idx, err := index.Open(ctx, filepath.Join(cacheDir, "index.db"),
		index.Options{RootUID: uint32(os.Getuid()), RootGID: uint32(os.Getgid())}, log.Named("index"))
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	defer func() {
		if err := idx.Close(); err != nil {
			log.Error("close index", zap.Error(err))
		}
	}()
	if err := claimIndex(ctx, idx, spec, cacheDir); err != nil {
		return err
	}
	chunks, err := cache.Open(filepath.Join(cacheDir, "chunks"), cacheSize, store, log.Named("cache"))
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	fsys, err := fs.New(ctx, fs.Config{
		Index:      idx,
		Chunks:     newChunkReader(chunks, log.Named("readahead")),
		StagingDir: filepath.Join(cacheDir, "staging"),
		Log:        log.Named("fs"),
	})
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	fsName := opts.fsName
	if fsName == "" {
		fsName = "cloudfs:" + spec.url
	}
	// Catch signals before the mount exists, so one arriving while it
	// comes up unmounts it instead of killing the daemon under it.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	m, err := fsys.Mount(mp, fs.MountOptions{
		AllowOther: opts.allowOther,
		ReadOnly:   opts.readOnly,
		Debug:      f.debugFuse,
		FsName:     fsName,
		Extra:      opts.kernel,
	})
	if err != nil {
		return userError("%v", err)
	}
	log.Info("mounted", zap.String("remote", spec.url), zap.String("mountpoint", mp), zap.String("cache_dir", cacheDir))
	n.ready()

	go unmountOnSignal(sigs, m, log)
	m.Wait()
	log.Info("unmounted", zap.String("mountpoint", mp))
	return nil
}

// claimIndex ties a cache dir to one remote: a cache dir used for another
// remote is refused rather than mixed.
func claimIndex(ctx context.Context, idx *index.DB, spec remoteSpec, cacheDir string) error {
	v, err := idx.Meta(ctx, index.MetaVolumeID)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return idx.SetMeta(ctx, index.MetaVolumeID, []byte(spec.url))
	case err != nil:
		return err
	case string(v) != spec.url:
		return userError("cache dir %s belongs to remote %s, not %s (use another --cache-dir)", cacheDir, v, spec.url)
	}
	return nil
}

// unmountOnSignal unmounts at SIGINT or SIGTERM; while the mount is busy it
// detaches it lazily (the kernel finishes when the last file closes, and
// Wait returns then).
func unmountOnSignal(sigs <-chan os.Signal, m *fs.Mount, log *zap.Logger) {
	for sig := range sigs {
		log.Info("unmounting", zap.Stringer("signal", sig))
		var err error
		for i := 0; i < 10; i++ {
			if err = m.Unmount(false); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err == nil {
			continue
		}
		log.Warn("mount busy; detaching it lazily", zap.Error(err))
		if err := m.Unmount(true); err != nil {
			log.Error("lazy unmount", zap.Error(err))
		}
	}
}
