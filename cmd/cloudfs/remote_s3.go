package main

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/s3"
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

// addS3Flags defines the flags of an s3:// remote on fl.
func addS3Flags(fl *pflag.FlagSet, f *s3Flags) {
	fl.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:9000 (default AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's, else AWS)")
	fl.StringVar(&f.region, "region", "", "S3 region (default AWS_REGION, AWS_DEFAULT_REGION, the profile's, else "+s3.DefaultRegion+")")
	fl.StringVar(&f.profile, "profile", "", "AWS shared config profile (default AWS_PROFILE)")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", s3.DefaultConnectTimeout, "bound on connecting to the S3 endpoint and on the bucket check at mount")
}

// openS3 opens an s3://bucket/prefix remote and checks that the bucket is
// there and the credentials work: its errors are one-line messages for the
// user. With offlineOK an endpoint that cannot be reached returns the
// store as well (see openRemote).
func openS3(ctx context.Context, url string, f s3Flags, offlineOK bool, log *zap.Logger) (chunkstore.Store, error) {
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(url, "s3://"), "/")
	s, err := s3.New(ctx, s3.Config{
		Bucket:         bucket,
		Prefix:         prefix,
		Endpoint:       f.endpoint,
		Region:         f.region,
		Profile:        f.profile,
		ConnectTimeout: f.connectTimeout,
		OfflineOK:      offlineOK,
	}, log.Named("s3"))
	if err != nil && s != nil {
		return s, err // unreachable: the caller decides
	}
	if err != nil {
		return nil, userError("%v", err)
	}
	return s, nil
}

// s3Endpoint returns the endpoint an s3:// remote will be reached at (as
// openS3 resolves it from the flags, the environment and the shared
// config, without a request), normalised: scheme and host lower-case, no
// trailing slash. It is "" for AWS itself.
func s3Endpoint(f s3Flags) (string, error) {
	ep, err := s3.Endpoint(context.Background(), s3.Config{Endpoint: f.endpoint, Region: f.region, Profile: f.profile})
	if err != nil {
		return "", userError("%v", err)
	}
	if ep == "" {
		return "", nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", userError("s3: endpoint %q: %v", ep, err) // s3.Endpoint parsed it
	}
	u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}
