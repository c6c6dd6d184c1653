package main

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds the process's logger: human-readable lines on stderr,
// or appended to file when one is given (a background daemon).
func newLogger(level, file string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, userError("bad --log-level %q (want debug, info, warn or error)", level)
	}
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewConsoleEncoder(cfg)
	out := zapcore.Lock(os.Stderr)
	if file != "" {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		out = zapcore.Lock(f)
	}
	return zap.New(zapcore.NewCore(enc, out, lvl)).Named("cloudfs"), nil
}
