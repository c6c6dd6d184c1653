package main

import (
	"fmt"
	"os"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
	"gopkg.in/natefinch/lumberjack.v2"
)

// The background daemon's log is cloudfs.log in its cache dir (mode
// 0600): zap's lines and the process's own stderr (a panic's trace, the
// race detector, anything a library prints) in one file, rotated by size
// by lumberjack: past logMaxMB the file is renamed with a time stamp,
// gzipped, and the newest logBackups of those are kept.
const (
	logMaxMB    = 10
	logBackups  = 3
	logFileName = "cloudfs.log"
)

// newLogger builds the process's logger: human-readable lines on stderr,
// or into the rotated log at file when one is given (a background daemon,
// whose stderr then follows the log too).
func newLogger(level, file string) (*zap.Logger, func(), error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, nil, userError("bad --log-level %q (want debug, info, warn or error)", level)
	}
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewConsoleEncoder(cfg)
	out := zapcore.Lock(os.Stderr)
	closeLog := func() {}
	if file != "" {
		l, err := openDaemonLog(file)
		if err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		out, closeLog = l, func() { l.lj.Close() }
	}
	return zap.New(zapcore.NewCore(enc, out, lvl)).Named("cloudfs"), closeLog, nil
}

// daemonLog writes into the rotated log and keeps the process's stderr
// (fd 2) on the log's current file: after a write that rotated it, fd 2
// is moved to the new file.
type daemonLog struct {
	lj   *lumberjack.Logger
	path string
	mu   sync.Mutex
	ino  uint64 // the file fd 2 is on
}

var _ zapcore.WriteSyncer = (*daemonLog)(nil)

func openDaemonLog(path string) (*daemonLog, error) {
	l := &daemonLog{path: path, lj: &lumberjack.Logger{Filename: path, MaxSize: logMaxMB, MaxBackups: logBackups, Compress: true}}
	if err := l.follow(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *daemonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.lj.Write(p)
	if ferr := l.follow(); ferr != nil && err == nil {
		err = ferr
	}
	return n, err
}

func (l *daemonLog) Sync() error { return nil } // lumberjack writes through

// follow points fd 2 at the file now at path, if it is not there yet
// (creating it 0600 at start).
func (l *daemonLog) follow() error {
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err == nil && st.Ino == l.ino {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if err := unix.Dup3(int(f.Fd()), 2, 0); err != nil {
		return err
	}
	l.ino = st.Ino
	return nil
}
