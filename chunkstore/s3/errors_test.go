package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.uber.org/zap/zaptest"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// sdkErr builds the error shape the SDK returns for an HTTP error response:
// an OperationError around an awshttp.ResponseError around the API error.
func sdkErr(status int, code string) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: "test"}
	if code == "" {
		inner = errors.New("no body")
	}
	return &smithy.OperationError{
		ServiceID:     "S3",
		OperationName: "GetObject",
		Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      inner,
			},
		},
	}
}

func TestClassify(t *testing.T) {
	netErr := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
		Err: &smithyhttp.RequestSendError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}}
	invalid := &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
		Err: func() error { var e smithy.InvalidParamsError; e.Add(smithy.NewErrParamRequired("Bucket")); return e }()}
	tests := []struct {
		name string
		err  error
		want kind
	}{
		{"404 NoSuchKey", sdkErr(404, "NoSuchKey"), notFound},
		{"404 HEAD without body", sdkErr(404, ""), notFound},
		{"404 NoSuchBucket", sdkErr(404, "NoSuchBucket"), noBucket},
		{"412", sdkErr(412, "PreconditionFailed"), precondition},
		{"412 HEAD without body", sdkErr(412, ""), precondition},
		{"409 ConditionalRequestConflict", sdkErr(409, "ConditionalRequestConflict"), precondition},
		{"409 BucketNotEmpty", sdkErr(409, "BucketNotEmpty"), permanent},
		{"409 OperationAborted", sdkErr(409, "OperationAborted"), transient},
		{"400 InvalidArgument", sdkErr(400, "InvalidArgument"), permanent},
		{"400 RequestTimeout", sdkErr(400, "RequestTimeout"), transient},
		{"403 AccessDenied", sdkErr(403, "AccessDenied"), permanent},
		{"403 SignatureDoesNotMatch", sdkErr(403, "SignatureDoesNotMatch"), permanent},
		{"403 RequestTimeTooSkewed", sdkErr(403, "RequestTimeTooSkewed"), transient},
		{"405", sdkErr(405, "MethodNotAllowed"), permanent},
		{"408", sdkErr(408, ""), transient},
		{"416", sdkErr(416, "InvalidRange"), permanent},
		{"429", sdkErr(429, "SlowDown"), transient},
		{"500", sdkErr(500, "InternalError"), transient},
		{"503 SlowDown", sdkErr(503, "SlowDown"), transient},
		{"network", netErr, transient},
		{"cancelled", fmt.Errorf("op: %w", context.Canceled), transient},
		{"invalid params", invalid, permanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Errorf("classify(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"head", "chunks/ab/abcdef", "cloudfs.json", "a.b/c..d"} {
		if err := checkKey(k); err != nil {
			t.Errorf("checkKey(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range []string{"", "/abs", "a//b", "a/", "./a", "a/../b", "..", "."} {
		if err := checkKey(k); err == nil {
			t.Errorf("checkKey(%q) = nil, want an error", k)
		}
	}
}

func TestNormPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "vol": "vol/", "/a/b/": "a/b/", "a/b": "a/b/"} {
		if got := normPrefix(in); got != want {
			t.Errorf("normPrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckBucketName(t *testing.T) {
	for _, ok := range []string{"bkt", "my-bucket", "a.b.c", "0abc9", "logs.2024-01", strings.Repeat("a", 63), "1.2.3.x"} {
		if err := CheckBucketName(ok); err != nil {
			t.Errorf("CheckBucketName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "md", strings.Repeat("a", 64), "My-Bucket", "under_score", "-abc", "abc-", ".abc", "abc.",
		"a..b", "192.168.5.4", "has space", "b/k"} {
		err := CheckBucketName(bad)
		if err == nil {
			t.Errorf("CheckBucketName(%q) = nil, want an error", bad)
		} else if !strings.Contains(err.Error(), BucketNameRule) || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("CheckBucketName(%q) = %q, want the name and the rule", bad, err)
		}
	}
}

// TestNewInvalidBucketName checks that a server refusing the bucket name
// (HEAD 400 without a body, then InvalidBucketName from the listing) is
// reported as a bad name with the naming rule, not as a credentials
// problem.
func TestNewInvalidBucketName(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	f.set("HEAD /"+testBucket, reply{status: 400})
	f.set("GET /"+testBucket, reply{status: 400, code: "InvalidBucketName"})
	_, err := New(context.Background(), f.config(), zaptest.NewLogger(t))
	if err == nil {
		t.Fatal("New succeeded for a refused bucket name")
	}
	msg := err.Error()
	if !chunkstore.IsPermanent(err) || !strings.Contains(msg, `"`+testBucket+`"`) || !strings.Contains(msg, BucketNameRule) ||
		strings.Contains(msg, "credentials") || strings.Contains(msg, "\n") {
		t.Errorf("error = %q (permanent %v), want one permanent line naming the bucket and the naming rule, not the credentials",
			msg, chunkstore.IsPermanent(err))
	}
}
