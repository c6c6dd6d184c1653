package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// DefaultRegion is the region used when neither Config.Region, AWS_REGION,
// AWS_DEFAULT_REGION nor the shared config names one.
const DefaultRegion = "us-east-1"

// DefaultConnectTimeout bounds connecting to the endpoint and the bucket check
// in New when Config.ConnectTimeout is zero.
const DefaultConnectTimeout = 10 * time.Second

// Environment variables read by New besides the SDK's own.
const (
	envCABundle      = "AWS_CA_BUNDLE"
	envEndpoint      = "AWS_ENDPOINT_URL"
	envEndpointS3    = "AWS_ENDPOINT_URL_S3"
	envAccessKeyID   = "AWS_ACCESS_KEY_ID"
	envProfile       = "AWS_PROFILE"
	envSharedCredsFl = "AWS_SHARED_CREDENTIALS_FILE"
)

// Config says where the bucket is and how to reach it. Every field is
// optional except Bucket; unset fields come from the standard AWS sources
// (environment, shared config and credentials files, profiles) exactly as the
// AWS CLI would find them.
type Config struct {
	// Bucket is the bucket name. Required.
	Bucket string
	// Prefix is prepended (with a "/") to every key, so one bucket can hold
	// several volumes. Leading and trailing slashes are ignored.
	Prefix string

	// Endpoint is the S3 endpoint URL including its scheme
	// ("http://127.0.0.1:9000", "https://s3.example.com"). Empty means
	// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the profile's endpoint_url,
	// and AWS itself when none is set.
	Endpoint string
	// Region is the signing region. Empty means AWS_REGION,
	// AWS_DEFAULT_REGION or the profile's region, else DefaultRegion.
	Region string
	// Profile selects a shared config profile (like AWS_PROFILE). A named
	// profile that does not exist is an error.
	Profile string

	// AccessKey, SecretKey and SessionToken, when AccessKey is set, are used
	// instead of the credential chain ("static credentials").
	AccessKey    string
	SecretKey    string
	SessionToken string

	// PathStyle selects path-style addressing (endpoint/bucket/key) rather
	// than virtual-hosted style (bucket.endpoint/key). Nil means automatic:
	// path style for a custom endpoint (MinIO and most S3 clones need it),
	// virtual-hosted style for AWS.
	PathStyle *bool

	// CABundle is a PEM file of certificate authorities trusted for an https
	// endpoint instead of the system roots. Empty means AWS_CA_BUNDLE, else
	// the profile's ca_bundle. S3
	// traffic to a plain-http endpoint ignores the bundle, so a globally set
	// AWS_CA_BUNDLE does not break a loopback MinIO. The bundle must still be
	// a readable PEM file: the SDK's credential providers (SSO, STS) use it
	// for their own https calls.
	CABundle string

	// OfflineOK makes New return the store even when the endpoint cannot
	// be reached, together with an error wrapping
	// chunkstore.ErrUnreachable (a mount that can start offline from its
	// cache). Wrong credentials, a missing bucket and bad settings still
	// fail New with no store.
	OfflineOK bool

	// ConnectTimeout bounds establishing a connection (TCP and TLS) and the
	// whole bucket check in New; zero means DefaultConnectTimeout. It does
	// not bound transfers: pass a context with a deadline for that.
	ConnectTimeout time.Duration

	// MaxConnsPerHost caps concurrent connections to the endpoint; zero
	// means no cap. Idle connections kept for reuse are at least 64 (or
	// MaxConnsPerHost when larger), so 8 to 64 concurrent transfers never
	// reconnect.
	MaxConnsPerHost int
}

// endpointInfo is the endpoint that New resolved, and where it came from.
type endpointInfo struct {
	url    string // "" for AWS itself
	source string // "config", "AWS_ENDPOINT_URL_S3", ...
	https  bool
}

func (e endpointInfo) String() string {
	if e.url == "" {
		return "AWS S3"
	}
	return e.url
}

// New connects to the bucket described by cfg and checks that it exists
// and that the credentials are accepted (HeadBucket), so configuration
// mistakes surface here rather than at the first upload.
//
// Errors are one line and name what to fix: credentials that the server
// rejects name their source (environment variables, profile and file, static
// keys) and are chunkstore.Permanent; a missing bucket is
// `bucket "X" does not exist` and Permanent; an endpoint that cannot be
// reached fails within cfg.ConnectTimeout and names the endpoint (not
// Permanent: it may come back).
//
// The SDK's own retryer is set to a single attempt: the store is meant to be
// wrapped by the retry decorator (chunkstore/retry), and two layers of retries
// would multiply. Payload checksums are computed only where S3 requires them
// (the SDK's default is a CRC32 of every upload, sent on https as an
// aws-chunked trailer, and a checksum request on every download): on plain
// http SigV4 still signs the payload's SHA-256, on https TLS protects it,
// and chunk contents are verified against their BLAKE3 ID on every read.
// Objects written without a checksum would also make the SDK log a warning
// on every GET if response validation stayed on.
func New(ctx context.Context, cfg Config, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.Bucket == "" {
		return nil, &chunkstore.Permanent{Err: errors.New("s3: no bucket given")}
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Endpoint != "" {
		if err := checkEndpointURL(cfg.Endpoint); err != nil {
			return nil, &chunkstore.Permanent{Err: err}
		}
	}

	// The SDK loader gets no HTTP client and no CA bundle from us: its
	// client is only used by credential providers (SSO, STS, IMDS), which
	// talk to AWS over https and honour AWS_CA_BUNDLE themselves. S3 traffic
	// goes through the transport built below, which loads the bundle only
	// for an https endpoint. Handing the loader a plain *http.Client while
	// AWS_CA_BUNDLE is set makes it fail ("unable to add custom RootCAs
	// HTTPClient"), which is why the two are kept apart.
	sdkLog := log.Named("sdk")
	sdkLogger := logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		if c == logging.Warn {
			sdkLog.Warn(fmt.Sprintf(format, v...))
		} else {
			sdkLog.Debug(fmt.Sprintf(format, v...))
		}
	})
	awsCfg, err := loadAWSConfig(ctx, cfg, sdkLogger)
	if err != nil {
		return nil, err
	}

	ep, err := resolveEndpoint(cfg, awsCfg)
	if err != nil {
		return nil, &chunkstore.Permanent{Err: err}
	}
	pathStyle := ep.url != ""
	if cfg.PathStyle != nil {
		pathStyle = *cfg.PathStyle
	}

	tr, err := newTransport(cfg, awsCfg, ep, log)
	if err != nil {
		return nil, &chunkstore.Permanent{Err: err}
	}
	httpClient := &http.Client{Transport: tr}

	client := s3sdk.NewFromConfig(awsCfg, func(o *s3sdk.Options) {
		if ep.url != "" {
			o.BaseEndpoint = aws.String(ep.url)
		}
		o.UsePathStyle = pathStyle
		o.HTTPClient = httpClient
		// One attempt: chunkstore/retry does the retrying.
		o.Retryer = aws.NopRetryer{}
		o.RetryMaxAttempts = 0
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.Logger = sdkLogger
	})

	s := &Store{
		client: client,
		tr:     tr,
		bucket: cfg.Bucket,
		prefix: normPrefix(cfg.Prefix),
		log:    log,
	}

	checkCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if awsCfg.Credentials == nil {
		return nil, &chunkstore.Permanent{Err: errors.New("s3: no AWS credential provider configured")}
	}
	creds, err := awsCfg.Credentials.Retrieve(checkCtx)
	if err != nil {
		return nil, &chunkstore.Permanent{Err: fmt.Errorf(
			"s3: no usable AWS credentials%s (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, or static keys): %w",
			profileNote(cfg), err)}
	}
	credSrc := describeCredentials(cfg, creds)
	if err := s.checkBucket(checkCtx, ep, cfg.ConnectTimeout, creds.AccessKeyID, credSrc); err != nil {
		if cfg.OfflineOK && errors.Is(err, chunkstore.ErrUnreachable) {
			log.Warn("s3 endpoint unreachable; the store is used offline", zap.String("store", s.String()), zap.Error(err))
			return s, err
		}
		return nil, err
	}
	log.Info("s3 store ready",
		zap.String("store", s.String()),
		zap.String("endpoint", ep.String()),
		zap.String("endpoint_source", ep.source),
		zap.String("region", awsCfg.Region),
		zap.Bool("path_style", pathStyle),
		zap.String("credentials", credSrc),
		zap.String("access_key", creds.AccessKeyID))
	return s, nil
}

// loadAWSConfig loads the SDK configuration for cfg (region, profile,
// static keys, CA bundle, and the environment and shared config files for
// what cfg leaves unset). Its errors are one line and Permanent.
func loadAWSConfig(ctx context.Context, cfg Config, sdkLogger logging.Logger) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithLogger(sdkLogger)}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)))
	}
	if path, source := caBundlePath(cfg); path != "" {
		// Checked here so that a bad bundle gets a message naming where it
		// was configured rather than the SDK loader's.
		if _, err := loadCABundle(path); err != nil {
			return aws.Config{}, &chunkstore.Permanent{Err: fmt.Errorf("s3: CA bundle from %s: %w", source, err)}
		}
		if cfg.CABundle != "" {
			// An explicit bundle also applies to the credential providers,
			// as AWS_CA_BUNDLE does through the loader.
			pem, err := os.ReadFile(path)
			if err != nil {
				return aws.Config{}, &chunkstore.Permanent{Err: fmt.Errorf("s3: CA bundle from %s: %w", source, err)}
			}
			opts = append(opts, config.WithCustomCABundle(bytes.NewReader(pem)))
		}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, &chunkstore.Permanent{Err: fmt.Errorf("s3: load AWS configuration%s: %w", profileNote(cfg), err)}
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	return awsCfg, nil
}

// Endpoint returns the endpoint URL that New would use for cfg ("" for AWS
// itself) without sending a request: cfg.Endpoint, else the environment and
// shared config as New resolves them. Its errors are those New would return
// for the same settings.
func Endpoint(ctx context.Context, cfg Config) (string, error) {
	if cfg.Endpoint != "" {
		if err := checkEndpointURL(cfg.Endpoint); err != nil {
			return "", &chunkstore.Permanent{Err: err}
		}
		return cfg.Endpoint, nil
	}
	awsCfg, err := loadAWSConfig(ctx, cfg, logging.Nop{})
	if err != nil {
		return "", err
	}
	ep, err := resolveEndpoint(cfg, awsCfg)
	if err != nil {
		return "", &chunkstore.Permanent{Err: err}
	}
	return ep.url, nil
}

// BucketNameRule is the S3 bucket naming rule that CheckBucketName
// enforces (that of AWS general purpose buckets, which MinIO and most S3
// clones follow too), worded for messages.
const BucketNameRule = "a bucket name is 3 to 63 lowercase letters, digits, dots and hyphens, " +
	"starts and ends with a letter or digit, has no \"..\" and is not an IP address"

// ipv4Like is a name formatted as an IPv4 address, which S3 refuses as a
// bucket name.
var ipv4Like = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)

// CheckBucketName reports whether name follows BucketNameRule, so that a
// name S3 would refuse is caught before any request (whose failure would
// read like a credentials problem). S3 has further rules for AWS (reserved
// prefixes and suffixes); those the server enforces, and its
// InvalidBucketName answer is reported as such.
func CheckBucketName(name string) error {
	ok := len(name) >= 3 && len(name) <= 63 && !strings.Contains(name, "..") && !ipv4Like.MatchString(name)
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		ok = alnum || (c == '.' || c == '-') && i > 0 && i < len(name)-1
	}
	if !ok {
		return fmt.Errorf("%q is not a valid bucket name: %s", name, BucketNameRule)
	}
	return nil
}

// checkEndpointURL rejects endpoints that the SDK would misread: a missing
// scheme ("localhost:9000" parses as scheme "localhost") or host.
func checkEndpointURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("s3: endpoint %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("s3: endpoint %q must be a URL starting with http:// or https://", raw)
	}
	return nil
}

// resolveEndpoint finds the endpoint the S3 client will use, mirroring the
// SDK's order: Config.Endpoint, AWS_ENDPOINT_URL_S3 (or the profile's s3
// endpoint_url), AWS_ENDPOINT_URL (or the profile's endpoint_url), else AWS.
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is honoured through the SDK's probe.
func resolveEndpoint(cfg Config, awsCfg aws.Config) (endpointInfo, error) {
	var ep endpointInfo
	switch {
	case cfg.Endpoint != "":
		ep = endpointInfo{url: cfg.Endpoint, source: "config"}
	default:
		// Let the SDK resolve service-specific and global endpoint settings,
		// then read back what it chose.
		probe := s3sdk.NewFromConfig(awsCfg).Options()
		if probe.BaseEndpoint != nil && *probe.BaseEndpoint != "" {
			ep.url = *probe.BaseEndpoint
			switch {
			case os.Getenv(envEndpointS3) == ep.url:
				ep.source = envEndpointS3
			case os.Getenv(envEndpoint) == ep.url:
				ep.source = envEndpoint
			default:
				ep.source = "shared config endpoint_url"
			}
			if err := checkEndpointURL(ep.url); err != nil {
				return ep, fmt.Errorf("%w (from %s)", err, ep.source)
			}
		} else {
			ep.source = "AWS default"
		}
	}
	ep.https = ep.url == "" || strings.HasPrefix(strings.ToLower(ep.url), "https://")
	return ep, nil
}

// newTransport builds the HTTP transport for S3 traffic: enough idle
// connections per host for the uploader's and prefetcher's concurrency, a
// bounded dial and TLS handshake, HTTP/2 where the server offers it, and the
// CA bundle for https endpoints only.
func newTransport(cfg Config, awsCfg aws.Config, ep endpointInfo, log *zap.Logger) (*http.Transport, error) {
	idle := 64
	if cfg.MaxConnsPerHost > idle {
		idle = cfg.MaxConnsPerHost
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          2 * idle,
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}

	path, source := caBundlePath(cfg)
	if path == "" {
		// The profile's ca_bundle, which the loader read for itself.
		for _, src := range awsCfg.ConfigSources {
			if sc, ok := src.(config.SharedConfig); ok && sc.CustomCABundle != "" {
				path, source = sc.CustomCABundle, fmt.Sprintf("ca_bundle of profile %q", sc.Profile)
				break
			}
		}
	}
	if path == "" {
		return tr, nil
	}
	if !ep.https {
		log.Debug("CA bundle ignored for plain-http endpoint",
			zap.String("bundle", path), zap.String("from", source), zap.String("endpoint", ep.url))
		return tr, nil
	}
	pool, err := loadCABundle(path)
	if err != nil {
		return nil, fmt.Errorf("s3: CA bundle from %s: %w", source, err)
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}

// caBundlePath returns the CA bundle file to use and where it was set.
func caBundlePath(cfg Config) (path, source string) {
	if cfg.CABundle != "" {
		return cfg.CABundle, "Config.CABundle"
	}
	if p := os.Getenv(envCABundle); p != "" {
		return p, envCABundle
	}
	return "", ""
}

// loadCABundle reads a PEM file of CA certificates. Like the SDK, the bundle
// replaces the system roots rather than adding to them.
func loadCABundle(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificates found", path)
	}
	return pool, nil
}

// describeCredentials names where the credentials came from, for messages
// that tell the user what to fix. It reads aws.Credentials.Source, whose
// values are constants documented by the SDK's providers.
func describeCredentials(cfg Config, creds aws.Credentials) string {
	switch {
	case cfg.AccessKey != "":
		return "static keys in the cloudfs configuration"
	case creds.Source == config.CredentialsSourceName:
		return "environment variables " + envAccessKeyID + "/AWS_SECRET_ACCESS_KEY"
	case strings.HasPrefix(creds.Source, "SharedConfigCredentials"):
		file := strings.TrimSpace(strings.TrimPrefix(creds.Source, "SharedConfigCredentials:"))
		if file == "" {
			file = os.Getenv(envSharedCredsFl)
		}
		return fmt.Sprintf("profile %q in %s", profileName(cfg), file)
	case creds.Source != "":
		return fmt.Sprintf("%s (profile %q)", creds.Source, profileName(cfg))
	default:
		return "the AWS credential chain"
	}
}

// profileName is the shared-config profile the SDK loader used.
func profileName(cfg Config) string {
	if cfg.Profile != "" {
		return cfg.Profile
	}
	if p := os.Getenv(envProfile); p != "" {
		return p
	}
	return "default"
}

// profileNote is " (profile "x")" when a profile was chosen explicitly.
func profileNote(cfg Config) string {
	if cfg.Profile == "" && os.Getenv(envProfile) == "" {
		return ""
	}
	return fmt.Sprintf(" (profile %q)", profileName(cfg))
}

// normPrefix trims slashes and appends one, so keys join as prefix+key.
func normPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}
