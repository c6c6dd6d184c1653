package main

import (
	"context"
	"strings"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/s3"
	"go.uber.org/zap"
)

// s3Flags are the mount flags that say how to reach an s3:// remote; every
// one is optional and falls back to the standard AWS sources (environment,
// shared config and credentials files, profiles).
type s3Flags struct {
	endpoint       string
	region         string
	profile        string
	connectTimeout time.Duration
}

// openS3 opens an s3://bucket/prefix remote and checks that the bucket is
// there and the credentials work: its errors are one-line messages for the
// user.
func openS3(ctx context.Context, url string, f s3Flags, log *zap.Logger) (chunkstore.Store, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	s, err := s3.New(ctx, s3.Config{
		Bucket:         bucket,
		Prefix:         prefix,
		Endpoint:       f.endpoint,
		Region:         f.region,
		Profile:        f.profile,
		ConnectTimeout: f.connectTimeout,
	}, log.Named("s3"))
	if err != nil {
		return nil, userError("%v", err)
	}
	return s, nil
}
