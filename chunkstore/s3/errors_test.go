package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
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
