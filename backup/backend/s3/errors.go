package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/holiday-ops/holiday/backup/backend"
)

// Errors an operator can act on. Each error the backend returns for one
// of these situations matches the sentinel with errors.Is and says in
// words what is wrong and where.
var (
	// ErrCredentials: the server does not know the access key, the
	// signature does not match the secret, or no credentials were found.
	ErrCredentials = errors.New("S3 credentials rejected")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("S3 bucket does not exist")
	// ErrAccessDenied: the credentials are valid but may not do this
	// (a read-only key, a bucket policy, Object Lock).
	ErrAccessDenied = errors.New("S3 access denied")
	// ErrFull: the server or the bucket's quota is full.
	ErrFull = errors.New("S3 server is full")
	// ErrUnavailable: the server could not be reached or kept failing
	// after every retry.
	ErrUnavailable = errors.New("S3 server unavailable")
)

var (
	credentialCodes = codes("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"InvalidSecurity", "AuthorizationHeaderMalformed", "TokenRefreshRequired", "InvalidClientTokenId",
		"XAdminUserNotFound") // versitygw's answer (404) to an unknown access key
	deniedCodes   = codes("AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem", "MethodNotAllowed")
	fullCodes     = codes("InsufficientStorage", "QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "StorageFull", "EntityTooLarge")
	notExistCodes = codes("NoSuchKey", "NotFound", "NoSuchVersion")
	existCodes    = codes("PreconditionFailed")
)

func codes(cs ...string) map[string]bool {
	m := map[string]bool{}
	for _, c := range cs {
		m[c] = true
	}
	return m
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isCode(err error, code string) bool { return err != nil && apiCode(err) == code }

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// classify returns the sentinel for err, or nil.
func classify(err error) error {
	code, status := apiCode(err), httpStatus(err)
	switch {
	case code == "NoSuchBucket":
		return ErrNoBucket
	case credentialCodes[code]:
		return ErrCredentials
	case deniedCodes[code] || (code == "" && status == http.StatusForbidden):
		return ErrAccessDenied
	case fullCodes[code] || status == http.StatusInsufficientStorage:
		return ErrFull
	case existCodes[code] || status == http.StatusPreconditionFailed:
		return backend.ErrExist
	case notExistCodes[code] || (code == "" && status == http.StatusNotFound):
		return backend.ErrNotExist
	}
	var ma *retry.MaxAttemptsError
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ma) || status >= 500 || errors.As(err, &oe) || (errors.As(err, &ne) && ne.Timeout()) {
		return ErrUnavailable
	}
	return nil
}

// wrap turns an SDK error into one that names the operation and the
// repository, says what to do when an operator can do something, and
// matches the sentinels above (and backend.ErrNotExist, ErrExist).
func (b *Backend) wrap(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s on %s: %w", op, b.where, err)
	}
	kind := classify(err)
	var why string
	switch kind {
	case ErrCredentials:
		why = "the server rejected the credentials (unknown access key or wrong secret); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the profile or the plan's repository.s3 fields"
	case ErrNoBucket:
		why = fmt.Sprintf("bucket %q does not exist on %s; `holiday repo init` creates it", b.cfg.Bucket, b.cfg.Endpoint)
	case ErrAccessDenied:
		why = "the server refused it for these credentials: a read-only key, a bucket policy or a retention lock"
	case ErrFull:
		why = "the server has no space left (disk or quota full)"
	case ErrUnavailable:
		why = fmt.Sprintf("the S3 server at %s could not be reached or kept failing after every retry", b.cfg.Endpoint)
	case backend.ErrExist:
		return fmt.Errorf("%s: %w", op, backend.ErrExist)
	case backend.ErrNotExist:
		return fmt.Errorf("%s: %w", op, backend.ErrNotExist)
	default:
		return fmt.Errorf("%s on %s: %w", op, b.where, err)
	}
	return &opError{op: op, where: b.where, why: why, kind: kind, err: err}
}

// opError keeps the SDK's error (for errors.As) under an operator-worded
// message.
type opError struct {
	op, where, why string
	kind           error
	err            error
}

func (e *opError) Error() string {
	return fmt.Sprintf("%s on %s: %s (%s)", e.op, e.where, e.why, detail(e.err))
}

// detail is the part of an SDK error an operator can use: the server's
// status, code and message, or the network error, without request IDs.
func detail(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		s := ae.ErrorCode()
		if st := httpStatus(err); st != 0 {
			s = fmt.Sprintf("%d %s", st, s)
		}
		if m := ae.ErrorMessage(); m != "" {
			s += ": " + m
		}
		return s
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Error()
	}
	return err.Error()
}

func (e *opError) Unwrap() []error { return []error{e.kind, e.err} }
