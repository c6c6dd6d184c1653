package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/local"
	"github.com/cloudfs/cloudfs/chunkstore/s3"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// remoteSpec is a parsed REMOTE argument.
type remoteSpec struct {
	raw  string // as given; "" for the embedded default store
	url  string // canonical form ("s3://bucket/prefix" or an absolute path)
	name string // volume name: a file-name-safe label for the cache dir
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// parseRemote resolves the REMOTE argument.
func parseRemote(remote string) (remoteSpec, error) {
	switch {
	case remote == "":
		dir, err := defaultDataDir()
		if err != nil {
			return remoteSpec{}, err
		}
		return remoteSpec{raw: "", url: dir, name: "default"}, nil
	case strings.HasPrefix(remote, "s3://"):
		rest := strings.Trim(strings.TrimPrefix(remote, "s3://"), "/")
		if rest == "" {
			return remoteSpec{}, userError("remote %q: no bucket named", remote)
		}
		bucket, _, _ := strings.Cut(rest, "/")
		if err := s3.CheckBucketName(bucket); err != nil {
			return remoteSpec{}, userError("remote %s: %v", remote, err)
		}
		return remoteSpec{raw: remote, url: "s3://" + rest, name: "s3-" + unsafeName.ReplaceAllString(rest, "-")}, nil
	case strings.Contains(remote, "://"):
		return remoteSpec{}, userError("remote %q: unknown scheme (use s3://bucket/prefix or a directory)", remote)
	}
	abs, err := filepath.Abs(remote)
	if err != nil {
		return remoteSpec{}, userError("remote %q: %v", remote, err)
	}
	sum := sha256.Sum256([]byte(abs))
	base := unsafeName.ReplaceAllString(filepath.Base(abs), "-")
	return remoteSpec{raw: remote, url: abs, name: base + "-" + hex.EncodeToString(sum[:4])}, nil
}

// defaultDataDir is the embedded store: $XDG_DATA_HOME/cloudfs/default,
// else under the home directory (homeDir: $HOME or the password database's).
func defaultDataDir() (string, error) {
	base := os.Getenv("XDG_DATA_HOME")
	if base == "" {
		home, err := homeDir(os.Geteuid())
		if err != nil {
			return "", userError("cannot find the data directory: %v; set XDG_DATA_HOME or HOME", err)
		}
		base = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(base, "cloudfs", "default"), nil
}

// isS3 reports whether the remote is an S3 bucket.
func (r remoteSpec) isS3() bool { return strings.HasPrefix(r.url, "s3://") }

// openRemote opens the store a remote names. This is the one place that
// knows the kinds of remotes. The store is not wrapped in retries. With
// offlineOK, a remote that cannot be reached returns the store and an
// error wrapping chunkstore.ErrUnreachable (the mount may start offline).
func openRemote(ctx context.Context, spec remoteSpec, s3f s3Flags, offlineOK bool, log *zap.Logger) (chunkstore.Store, error) {
	if spec.isS3() {
		return openS3(ctx, spec.url, s3f, offlineOK, log)
	}
	if fi, err := os.Stat(spec.url); err == nil && !fi.IsDir() {
		return nil, userError("remote %s is not a directory", spec.url)
	}
	s, err := local.Open(spec.url)
	if err != nil {
		return nil, userError("cannot open the store: %v", err)
	}
	log.Debug("opened local store", zap.String("dir", spec.url))
	return s, nil
}

// checkRemote verifies the store is usable and reads (or creates) its
// volume settings.
func checkRemote(ctx context.Context, s chunkstore.Store) (chunkstore.Volume, error) {
	v, err := bucket.LoadOrInitVolume(ctx, s, chunkstore.Params{})
	if err != nil {
		return v, fmt.Errorf("store %s: %w", s, err)
	}
	return v, nil
}
