package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/cache"
	"github.com/cloudfs/cloudfs/chunkstore/health"
	"github.com/cloudfs/cloudfs/chunkstore/retry"
	"github.com/cloudfs/cloudfs/fs"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/uploader"
	"github.com/cloudfs/cloudfs/uploader/pull"
)

type mountFlags struct {
	cacheDir    string
	cacheSize   string
	options     []string
	logLevel    string
	debugFuse   bool
	background  bool
	settleDelay time.Duration
	pollEvery   time.Duration
	writeback   bool
	s3          s3Flags
}

func cmdMount(args []string) error {
	var f mountFlags
	fl := pflag.NewFlagSet("mount", pflag.ContinueOnError)
	fl.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: cloudfs mount [flags] [REMOTE] MOUNTPOINT\n\n%s", fl.FlagUsages())
	}
	fl.StringVar(&f.cacheDir, "cache-dir", "", "index, staging and chunk cache (default $XDG_CACHE_HOME/cloudfs/<volume>, else ~/.cache/cloudfs/<volume>; root: /var/cache/cloudfs/<volume>)")
	fl.StringVar(&f.cacheSize, "cache-size", "10G", "bound of the chunk cache (clean chunks)")
	fl.StringArrayVarP(&f.options, "options", "o", nil, "mount options, comma-separated: allow_other, ro, nonempty, sync_close, nopassthrough, uid=N, gid=N, fsname=NAME, nodev, nosuid, noexec")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.debugFuse, "debug-fuse", false, "log every FUSE request")
	fl.BoolVar(&f.background, "background", false, "detach once the mount is live")
	fl.DurationVar(&f.settleDelay, "settle-delay", uploader.DefaultSettleDelay, "how long a closed file must stay unchanged before it is uploaded (0: at once)")
	fl.DurationVar(&f.pollEvery, "poll-interval", 5*time.Second, "how often to look for other machines' commits (one request when there are none; 0: only on cloudfs sync and before a commit)")
	fl.BoolVar(&f.writeback, "writeback", true, "upload in the background; with --writeback=false close() and fsync() return once the file is committed to the remote")
	addS3Flags(fl, &f.s3)
	if err := parseFlags(fl, args); err != nil {
		return err
	}
	if f.settleDelay < 0 {
		return userError("--settle-delay must not be negative")
	}
	if f.pollEvery < 0 {
		return userError("--poll-interval must not be negative")
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
	setMemoryLimit()
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
	cacheDir, cacheNote := f.cacheDir, ""
	if cacheDir == "" {
		if cacheDir, cacheNote, err = defaultCacheDir(spec, f.s3); err != nil {
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
		logFile = filepath.Join(cacheDir, logFileName)
	}
	log, closeLog, err := newLogger(f.logLevel, logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	defer log.Sync()
	if cacheNote != "" {
		log.Warn(cacheNote)
	}

	ctx := context.Background()
	indexPath := filepath.Join(cacheDir, "index.db")
	_, statErr := os.Stat(indexPath)
	// A cache dir that holds an index of this remote can start offline.
	raw, offline := openRemote(ctx, spec, f.s3, statErr == nil, log.Named("store"))
	if raw == nil {
		return offline
	}
	// The daemon's store calls retry transient failures; the S3 store
	// itself makes one attempt. A local directory has nothing to retry.
	// health bounds the retrying while the remote is unreachable.
	store := raw
	var reach *health.Store
	if spec.isS3() {
		reach = health.New(raw, max(f.s3.connectTimeout, time.Second), nil)
		store = retry.New(reach, retry.DefaultConfig, log.Named("retry"))
	}
	var vol chunkstore.Volume
	if offline == nil {
		vol, err = checkRemote(ctx, store)
		switch {
		case errors.Is(err, chunkstore.ErrUnreachable) && statErr == nil:
			offline = err
		case (errors.Is(err, chunkstore.ErrVolumeFormat) || errors.Is(err, chunkstore.ErrTooLarge)) && statErr == nil:
			return &exitError{code: 1, msg: fmt.Sprintf("%v: not mounted; %s", err, recoverHint(ctx, nil, cacheDir))}
		case err != nil:
			return err
		}
	}
	ballastSize, err := fs.BallastSize(cacheDir)
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	ballast, err := fs.NewBallast(filepath.Join(cacheDir, "ballast"), ballastSize)
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	idx, err := index.Open(ctx, indexPath,
		index.Options{RootUID: uint32(os.Getuid()), RootGID: uint32(os.Getgid()), OnFull: ballast.Release}, log.Named("index"))
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
	if offline != nil {
		if vol, err = cachedVolume(ctx, idx); err != nil {
			return userError("remote %s is unreachable and cache dir %s has no copy of its settings: %v", spec.url, cacheDir, offline)
		}
		log.Warn("the remote is unreachable: starting offline from the cache dir (cached files read, writes are queued)",
			zap.String("remote", spec.url), zap.Error(offline))
	} else if err := keepVolume(ctx, idx, vol, spec.url, cacheDir); err != nil {
		return err
	}
	device, err := deviceID(ctx, idx, log.Named("device"))
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	var claimStore chunkstore.Store
	if offline == nil {
		claimStore = store
	}
	claim, err := claimDevice(ctx, idx, claimStore, device, log.Named("device"))
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	device = claim.device
	idx.SetDevice(hostName())
	if offline == nil {
		if err := loadRemoteHead(ctx, idx, store, log.Named("remote")); err != nil {
			return err
		}
	}
	load := bucket.NewLoader(store)
	chunks, err := cache.Open(filepath.Join(cacheDir, "chunks"), cacheSize, store, log.Named("cache"),
		cache.WithPrefetchConcurrency(8), cache.WithMemoryLimit(chunkMemory), cache.WithLocator(idx.ChunkLoc))
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	stagingDir := filepath.Join(cacheDir, "staging")
	recoveryDir := filepath.Join(cacheDir, "recovered")
	settle := f.settleDelay
	if settle == 0 {
		settle = time.Nanosecond // the uploader reads a zero as "the default"
	}
	// The puller tells the file system what it changed; the file system
	// needs the uploader (Committer), which needs the puller.
	kernel := &kernelNotifier{}
	fault := faultPauses(log)
	puller, err := pull.New(idx, store, load, pull.Options{Device: device, Host: hostName(), Machine: machineID(),
		Instance: claim.instance, DeviceETag: claim.etag, Notifier: kernel,
		PauseApply: fault.pullApply, PauseFetch: fault.pullFetch}, log.Named("pull"))
	if err != nil {
		return err
	}
	up, err := uploader.New(idx, store, chunks, vol, uploader.Options{
		StagingDir:   stagingDir,
		Device:       device,
		SettleDelay:  settle,
		Puller:       puller,
		PullInterval: f.pollEvery,
		Loader:       load,
		AfterSwap:    fault.afterSwap,
	}, log.Named("uploader"))
	if err != nil {
		return err
	}
	cfg := fs.Config{
		Index:       idx,
		Chunks:      newChunkReader(chunks, log.Named("readahead")),
		StagingDir:  stagingDir,
		RecoveryDir: recoveryDir,
		Log:         log.Named("fs"),
		Loader:      dirLoader{idx: idx, load: load},
		// Off by default: close(2) survives kill -9 of the daemon
		// without it; -o sync_close also survives power loss.
		SyncOnClose: opts.syncClose,
		// The kernel serves reads and writes of files in a passthrough
		// session itself (root only); -o nopassthrough turns it off.
		NoPassthrough: opts.noPassthru,
		Ballast:       ballast,
		Readahead:     readahead,
		UID:           opts.uid,
		GID:           opts.gid,
	}
	if !f.writeback {
		cfg.Committer = up
	}
	fsys, err := fs.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	defer fsys.Close()
	kernel.set(fsys)

	// The uploader runs on the daemon's lifetime, not on any request's.
	// Stopping it interrupts a round in progress; its files stay queued
	// (durably, in the index) for the next mount.
	upCtx, stopUploader := context.WithCancel(context.Background())
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		if err := up.Run(upCtx); err != nil {
			log.Error("uploader stopped", zap.Error(err))
		}
	}()
	defer func() {
		stopUploader()
		<-upDone
		log.Info("uploader stopped")
	}()

	ctl, err := startControl(cacheDir, &controlTarget{
		info: statusReply{Mountpoint: mp, Remote: spec.url, CacheDir: cacheDir, Device: device,
			PID: os.Getpid(), RecoveryDir: recoveryDir, Writeback: f.writeback, SettleDelay: f.settleDelay, PollInterval: f.pollEvery},
		up: up, puller: puller, reach: reach, idx: idx, probe: raw, probeTimeout: max(f.s3.connectTimeout, time.Second),
		warm: &warmer{idx: idx, cache: chunks, loadDir: dirLoader{idx: idx, load: load}.LoadDir},
	}, log.Named("control"))
	if err != nil {
		return fmt.Errorf("cache dir %s: %w", cacheDir, err)
	}
	defer ctl.Close()

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
		if _, still, merr := mountType(mp); merr == nil && still {
			return deadMount(mp, log) // the connection ended as it came up
		}
		return userError("%v", err)
	}
	rtFile, err := writeRuntime(runtimeInfo{Mountpoint: mp, CacheDir: cacheDir, Socket: ctl.path, Remote: spec.url, PID: os.Getpid()})
	if err != nil {
		// The mount works; only sync and status cannot find it.
		log.Error("cloudfs sync and status will not find this mount", zap.Error(err))
	} else {
		defer os.Remove(rtFile)
	}
	log.Info("mounted", zap.String("remote", spec.url), zap.String("mountpoint", mp), zap.String("cache_dir", cacheDir),
		zap.String("device", device), zap.Bool("writeback", f.writeback), zap.Duration("settle_delay", f.settleDelay),
		zap.Duration("poll_interval", f.pollEvery), zap.Bool("offline", offline != nil))
	n.ready()

	go unmountOnSignal(sigs, m, log)
	m.Wait()
	if _, still, err := mountType(mp); err == nil && still {
		return deadMount(mp, log)
	}
	log.Info("unmounted", zap.String("mountpoint", mp))
	return nil
}

// deadMount reports a mount whose FUSE connection the kernel ended
// (ENODEV) while the mount stays: an abort (/sys/fs/fuse/connections), or
// the device closed.
func deadMount(mp string, log *zap.Logger) error {
	log.Error("the FUSE connection ended but the mount is still there; run fusermount3 -u to remove it",
		zap.String("mountpoint", mp))
	return fmt.Errorf("the FUSE connection of %s ended while it was still mounted", mp)
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

// kernelNotifier passes the puller's notifications to the file system once
// it exists (the uploader, and so the puller, are made before it).
type kernelNotifier struct {
	mu   sync.Mutex
	fsys *fs.FS
}

func (k *kernelNotifier) set(f *fs.FS) {
	k.mu.Lock()
	k.fsys = f
	k.mu.Unlock()
}

func (k *kernelNotifier) get() *fs.FS {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fsys
}

func (k *kernelNotifier) Invalidate(vs []index.Invalidation) {
	if f := k.get(); f != nil {
		f.Invalidate(vs)
	}
}

func (k *kernelNotifier) Orphaned(inos []uint64) {
	if f := k.get(); f != nil {
		f.Orphaned(inos)
	}
}

// faultEnv names the points where a test wants the daemon to stop for a
// while, so it can kill it or stop the remote there (comma-separated,
// each name[:duration], default a minute): pause-pull-apply (inside a
// pull's index transaction), pause-pull-fetch (after a pull's first
// fetch) and pause-after-swap (after a commit's head swap, before the
// index records it). Fault injection only.
const faultEnv = "CLOUDFS_FAULT"

// faults are the pauses faultEnv asks for (nil: none).
type faults struct{ pullApply, pullFetch, afterSwap func() }

func faultPauses(log *zap.Logger) faults {
	var f faults
	for _, p := range strings.Split(os.Getenv(faultEnv), ",") {
		if p == "" {
			continue
		}
		name, dur, _ := strings.Cut(p, ":")
		d, err := time.ParseDuration(dur)
		if err != nil {
			d = time.Minute
		}
		pause := func() {
			log.Warn("fault injection: pausing", zap.String("point", name), zap.Duration("for", d))
			time.Sleep(d)
		}
		switch name {
		case "pause-pull-apply":
			f.pullApply = pause
		case "pause-pull-fetch":
			f.pullFetch = pause
		case "pause-after-swap":
			f.afterSwap = pause
		default:
			log.Warn("unknown fault injection point", zap.String("point", name))
		}
	}
	return f
}

// metaVolume is the meta key of the volume settings as last read from the
// remote: an offline start chunks with them.
const metaVolume = "volume_settings"

// keepVolume records the volume settings in the index. Settings that
// differ from the ones recorded are refused: the settings object was
// replaced (or deleted and made anew), so the index's chunks and trees do
// not belong to the volume the bucket now describes. The cache dir's
// queued changes are then copied out with cloudfs recover.
func keepVolume(ctx context.Context, idx *index.DB, v chunkstore.Volume, remote, cacheDir string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if old, err := idx.Meta(ctx, metaVolume); err == nil {
		var was chunkstore.Volume
		if json.Unmarshal(old, &was) == nil && was == v {
			return nil
		}
		return &exitError{code: 1, msg: fmt.Sprintf("remote %s: its volume settings are not the ones cache dir %s was made with "+
			"(the settings object was replaced): not mounted; %s", remote, cacheDir, recoverHint(ctx, idx, cacheDir))}
	} else if !errors.Is(err, index.ErrNotFound) {
		return err
	}
	return idx.SetMeta(ctx, metaVolume, b)
}

// recoverHint says how to get the changes queued in cacheDir out when its
// remote cannot be mounted.
func recoverHint(ctx context.Context, idx *index.DB, cacheDir string) string {
	what := "its queued changes"
	if idx != nil {
		if q, err := idx.ListDirty(ctx); err == nil {
			what = "its " + plural(len(q), "queued change")
		}
	}
	return fmt.Sprintf("copy %s out with: cloudfs recover --cache-dir %s DEST", what, cacheDir)
}

// cachedVolume returns the volume settings keepVolume recorded.
func cachedVolume(ctx context.Context, idx *index.DB) (chunkstore.Volume, error) {
	var v chunkstore.Volume
	b, err := idx.Meta(ctx, metaVolume)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, err
	}
	return v, v.Validate()
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
