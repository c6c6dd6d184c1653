package s3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// kind is what an SDK error means to the Store contract.
type kind int

const (
	transient    kind = iota // 5xx, 429, network: worth retrying
	notFound                 // 404: chunkstore.ErrNotFound
	precondition             // 412, 409 ConditionalRequestConflict: chunkstore.ErrPrecondition
	noBucket                 // 404 NoSuchBucket: permanent, with its own message
	permanent                // other 4xx, invalid parameters: chunkstore.Permanent
)

// S3 error codes that matter to classify. Codes come from smithy.APIError,
// the SDK's typed view of the XML error body (HEAD responses have no body,
// so only the status is known there).
const (
	codeNoSuchBucket        = "NoSuchBucket"
	codeNoSuchKey           = "NoSuchKey"
	codeNotFound            = "NotFound"
	codePreconditionFailed  = "PreconditionFailed"
	codeConditionalConflict = "ConditionalRequestConflict"
	codeRequestTimeout      = "RequestTimeout"
	codeOperationAborted    = "OperationAborted"
	codeTimeTooSkewed       = "RequestTimeTooSkewed"
	codeSlowDown            = "SlowDown"
	codeInvalidAccessKeyID  = "InvalidAccessKeyId"
	codeSignatureMismatch   = "SignatureDoesNotMatch"
	codeAccessDenied        = "AccessDenied"
	codeExpiredToken        = "ExpiredToken"
	codeInvalidToken        = "InvalidToken"
	codeInvalidBucketName   = "InvalidBucketName"
)

// statusAndCode extracts the HTTP status (0 when no response arrived) and the
// S3 error code ("" when the response had no parsable body).
func statusAndCode(err error) (status int, code string) {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	return status, code
}

// classify maps an SDK error to a kind. It never looks at error text.
func classify(err error) kind {
	status, code := statusAndCode(err)
	var invalidParams smithy.InvalidParamsError
	switch {
	case errors.As(err, &invalidParams):
		return permanent
	case code == codeNoSuchBucket:
		return noBucket
	case status == 404 || code == codeNoSuchKey || code == codeNotFound:
		return notFound
	case status == 412 || code == codePreconditionFailed || code == codeConditionalConflict:
		return precondition
	case status == 0, status == 408, status == 429, status >= 500:
		// No response (network, timeout, cancelled), or the server asks
		// to come back later.
		return transient
	case code == codeRequestTimeout, code == codeOperationAborted,
		code == codeTimeTooSkewed, code == codeSlowDown:
		// 4xx codes that S3 documents as retryable; the SDK corrects its
		// clock offset after RequestTimeTooSkewed.
		return transient
	case status >= 400:
		return permanent
	default:
		return transient
	}
}

// wrap turns an SDK error from op on key into a Store error: sentinels for
// missing objects and failed conditions, chunkstore.Permanent for requests
// that cannot succeed, plain wrapping for transient failures, and
// chunkstore.ErrUnreachable for those that got no response while the
// caller's ctx was still live (the endpoint cannot be reached).
func (s *Store) wrap(ctx context.Context, op, key string, err error) error {
	where := s.where(key)
	switch classify(err) {
	case notFound:
		return fmt.Errorf("s3 %s %s: %w", op, where, chunkstore.ErrNotFound)
	case precondition:
		return fmt.Errorf("s3 %s %s: %w", op, where, chunkstore.ErrPrecondition)
	case noBucket:
		return &chunkstore.Permanent{Err: fmt.Errorf("s3 %s %s: bucket %q does not exist: %w", op, where, s.bucket, err)}
	case permanent:
		return &chunkstore.Permanent{Err: fmt.Errorf("s3 %s %s: %w", op, where, err)}
	default:
		if status, _ := statusAndCode(err); status == 0 && ctx.Err() == nil {
			return fmt.Errorf("s3 %s %s: %w: %w", op, where, chunkstore.ErrUnreachable, err)
		}
		return fmt.Errorf("s3 %s %s: %w", op, where, err)
	}
}

// checkBucket is New's HeadBucket, turning failures into one-line messages
// that say what to fix. On 401/403/400 a one-key ListObjectsV2 follows,
// because HEAD responses carry no error code and only the code tells a wrong
// secret from an unknown key id from a missing permission.
func (s *Store) checkBucket(ctx context.Context, ep endpointInfo, timeout time.Duration, keyID, credSrc string) error {
	_, err := s.client.HeadBucket(ctx, &s3sdk.HeadBucketInput{Bucket: &s.bucket})
	if err == nil {
		return nil
	}
	status, code := statusAndCode(err)
	switch {
	case status == 404 || code == codeNoSuchBucket:
		return &chunkstore.Permanent{Err: fmt.Errorf("s3: bucket %q does not exist at %s", s.bucket, ep)}
	case status == 0:
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("s3: endpoint %s did not answer within %s (bucket %q): %w: %w", ep, timeout, s.bucket,
				chunkstore.ErrUnreachable, context.DeadlineExceeded)
		}
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("s3: check bucket %q at %s: %w", s.bucket, ep, context.Canceled)
		}
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return fmt.Errorf("s3: TLS certificate of endpoint %s is not trusted (for a private CA set AWS_CA_BUNDLE or the CA bundle option): %w", ep, cv)
		}
		var op *net.OpError
		if errors.As(err, &op) {
			return fmt.Errorf("s3: cannot reach endpoint %s (bucket %q): %w: %w", ep, s.bucket, chunkstore.ErrUnreachable, op)
		}
		return fmt.Errorf("s3: cannot reach endpoint %s (bucket %q): %w: %w", ep, s.bucket, chunkstore.ErrUnreachable, err)
	case status == 400 || status == 401 || status == 403:
		if c := s.probeCode(ctx); c != "" {
			code = c
		}
		var what string
		switch code {
		case codeInvalidAccessKeyID:
			what = fmt.Sprintf("the server does not know access key %q", keyID)
		case codeSignatureMismatch:
			what = fmt.Sprintf("the secret key does not match access key %q", keyID)
		case codeExpiredToken, codeInvalidToken:
			what = "the session token is expired or invalid"
		case codeAccessDenied:
			what = fmt.Sprintf("access to bucket %q is denied for access key %q", s.bucket, keyID)
		case codeNoSuchBucket:
			return &chunkstore.Permanent{Err: fmt.Errorf("s3: bucket %q does not exist at %s", s.bucket, ep)}
		case codeInvalidBucketName:
			// Not a credentials problem: the name itself is refused.
			return &chunkstore.Permanent{Err: fmt.Errorf("s3: %s refuses the bucket name %q (InvalidBucketName): %s",
				ep, s.bucket, BucketNameRule)}
		default:
			what = fmt.Sprintf("bucket %q: HTTP %d %s for access key %q", s.bucket, status, code, keyID)
		}
		return &chunkstore.Permanent{Err: fmt.Errorf("s3: %s at %s: check the credentials from %s", what, ep, credSrc)}
	case classify(err) == permanent:
		return &chunkstore.Permanent{Err: fmt.Errorf("s3: check bucket %q at %s: %w", s.bucket, ep, err)}
	default:
		return fmt.Errorf("s3: check bucket %q at %s: %w", s.bucket, ep, err)
	}
}

// probeCode returns the S3 error code of a one-key listing of the bucket, or
// "" when it succeeds or has none.
func (s *Store) probeCode(ctx context.Context) string {
	one := int32(1)
	_, err := s.client.ListObjectsV2(ctx, &s3sdk.ListObjectsV2Input{Bucket: &s.bucket, MaxKeys: &one})
	if err == nil {
		return ""
	}
	_, code := statusAndCode(err)
	return code
}
