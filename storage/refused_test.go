package storage

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// s3Error is an error as the AWS SDK returns it for an S3 answer with an
// HTTP status and an error code ("" for a HEAD answer, which has no body).
func s3Error(status int, code string) error {
	var inner error = fmt.Errorf("http response error StatusCode: %d", status)
	if code != "" {
		inner = &smithy.GenericAPIError{Code: code, Message: "from the store"}
	}
	return fmt.Errorf("operation error S3: PutObject: %w", &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner},
		RequestID:     "test",
	})
}

// TestRefused: S3's answers that a retry cannot change are refusals; those
// for throttling, timeouts, uploads cut short, missing objects and server
// errors are not.
func TestRefused(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{s3Error(404, "NoSuchBucket"), true},
		{s3Error(403, "AccessDenied"), true},
		{s3Error(403, "SignatureDoesNotMatch"), true},
		{s3Error(403, "InvalidAccessKeyId"), true},
		{s3Error(400, "AuthorizationHeaderMalformed"), true},
		{s3Error(400, "InvalidBucketName"), true},
		{s3Error(301, "PermanentRedirect"), true},
		{s3Error(403, ""), true}, // a HEAD refused
		{s3Error(403, "SomeNewDenial"), true},
		{s3Error(503, "SlowDown"), false},
		{s3Error(500, "InternalError"), false},
		{s3Error(400, "RequestTimeout"), false},
		{s3Error(400, "IncompleteBody"), false},
		{s3Error(400, "ExpiredToken"), false},
		{s3Error(400, "SomeNew400"), false},
		{s3Error(403, "RequestTimeTooSkewed"), false},
		{s3Error(404, "NoSuchKey"), false},
		{s3Error(412, "PreconditionFailed"), false},
		{context.Canceled, false},
		{nil, false},
	} {
		if got := Refused(c.err); got != c.want {
			t.Errorf("Refused(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
