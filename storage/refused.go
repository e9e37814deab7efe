package storage

import (
	"errors"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	"gocloud.dev/gcerrors"
)

// Refused reports whether a storage error is the store refusing a request
// for a reason that trying again cannot fix: the bucket does not exist,
// the credentials are wrong or not allowed, the request is malformed for
// this store (a bad bucket name, the wrong region). A missing object is
// not a refusal (callers decide what that means), nor are throttling,
// timeouts, expired temporary credentials (they are refreshed) or server
// errors, which pass.
func Refused(err error) bool {
	if err == nil {
		return false
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if _, passes := s3Passing[api.ErrorCode()]; passes {
			return false
		}
		if _, refused := s3Refusals[api.ErrorCode()]; refused {
			return true
		}
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		switch resp.HTTPStatusCode() {
		// Not 400 by itself: S3 answers 400 to an upload cut short
		// (IncompleteBody) or damaged on the way (BadDigest), which pass.
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed,
			http.StatusMovedPermanently, http.StatusLengthRequired:
			return true
		}
		return false
	}
	return gcerrors.Code(err) == gcerrors.PermissionDenied
}

// s3Refusals are S3's error codes for requests it will refuse again.
var s3Refusals = map[string]struct{}{
	"NoSuchBucket": {}, "InvalidBucketName": {}, "AccessDenied": {}, "Forbidden": {},
	"InvalidAccessKeyId": {}, "SignatureDoesNotMatch": {}, "AuthorizationHeaderMalformed": {},
	"AllAccessDisabled": {}, "AccountProblem": {}, "PermanentRedirect": {}, "InvalidArgument": {},
	"InvalidRequest": {}, "InvalidToken": {}, "MissingSecurityHeader": {}, "NotImplemented": {},
}

// s3Passing are S3's error codes, some with 4xx statuses, for conditions
// that pass: the SDK retries most of them itself.
var s3Passing = map[string]struct{}{
	"RequestTimeout": {}, "RequestTimeoutException": {}, "ExpiredToken": {}, "ExpiredTokenException": {},
	"TokenRefreshRequired": {}, "RequestTimeTooSkewed": {}, "SlowDown": {}, "Throttling": {},
	"ThrottlingException": {}, "RequestThrottled": {}, "TooManyRequestsException": {},
	"RequestLimitExceeded": {}, "BandwidthLimitExceeded": {}, "InternalError": {}, "ServiceUnavailable": {},
	"OperationAborted": {}, "PreconditionFailed": {}, "NoSuchKey": {}, "NotFound": {},
	"IncompleteBody": {}, "BadDigest": {}, "XAmzContentSHA256Mismatch": {}, "InvalidDigest": {},
}
