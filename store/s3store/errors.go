package s3store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Sentinels wrapped by this package's errors, for exit codes and tests.
var (
	// ErrUnreachable: no answer from the endpoint (refused, DNS, TLS,
	// timeouts after every retry).
	ErrUnreachable = errors.New("S3 endpoint unreachable")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("no such bucket")
	// ErrDenied: the server refused the credentials or the action.
	ErrDenied = errors.New("access denied")
)

// Error is a failed S3 call, with a hint for the operator. Its message
// never holds a credential: the SDK's errors carry the server's code and
// message, and request IDs only.
type Error struct {
	Op    string // "put", "list", ...
	Where string // s3://bucket/key
	Code  string // the server's error code, when it answered
	Hint  string
	Err   error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Op, e.Where, describe(e.Err))
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// wrap turns an SDK error into an [Error] with a hint, wrapping the
// sentinel that fits (ErrUnreachable, ErrNoBucket, ErrDenied,
// fs.ErrNotExist, fs.ErrExist) and the context's error when it ended the
// call.
func (c *Client) wrap(op, where string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := &Error{Op: op, Where: where, Err: err}
	var api smithy.APIError
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case errors.As(err, &api):
		e.Code = api.ErrorCode()
		const denied = "check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE, the instance's role) and the bucket policy"
		switch e.Code {
		case "NoSuchBucket":
			e.Err, e.Hint = join(ErrNoBucket, err), "create it, or check the bucket name and --s3-endpoint"
		case "NoSuchKey", "NotFound", "NoSuchVersion", "NoSuchUpload":
			e.Err = join(fs.ErrNotExist, err)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "Forbidden",
			"XAdminUserNotFound": // versitygw: an unknown access key, with a 404
			e.Err, e.Hint = join(ErrDenied, err), denied
		case "PreconditionFailed":
			e.Err = join(fs.ErrExist, err)
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout":
			e.Hint = "the server kept failing after retries; try again later"
		default:
			if status == http.StatusForbidden { // any other refusal
				e.Err, e.Hint = join(ErrDenied, err), denied
			}
		}
	case status == http.StatusNotFound:
		e.Err = join(fs.ErrNotExist, err)
	case status == http.StatusForbidden:
		e.Err, e.Hint = join(ErrDenied, err), "check the credentials and the bucket policy"
	case isTLSErr(err):
		e.Err, e.Hint = join(ErrUnreachable, err), "the endpoint's TLS certificate is not trusted: pass its CA with --s3-ca-file"
	case isNetErr(err):
		e.Err, e.Hint = join(ErrUnreachable, err), "check --s3-endpoint (or AWS_ENDPOINT_URL_S3), the network and the server"
	}
	return e
}

func isTLSErr(err error) bool {
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	var hn x509.HostnameError
	return errors.As(err, &ua) || errors.As(err, &cv) || errors.As(err, &hn)
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ne) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF")
}

// join wraps both a sentinel and the original error.
func join(sentinel, err error) error { return &joined{sentinel, err} }

type joined struct{ sentinel, err error }

func (j *joined) Error() string   { return j.err.Error() }
func (j *joined) Unwrap() []error { return []error{j.sentinel, j.err} }

// describe is the short form of an SDK error: the server's code and
// message, or the transport's failure, without the operation's long
// prefix ("operation error S3: PutObject, https response error ...").
func describe(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchKey": // a HEAD's 404 has no body to say more
			return "no such object"
		case "Forbidden": // a HEAD's 403
			return "access denied (HTTP 403)"
		}
		if m := api.ErrorMessage(); m != "" && m != api.ErrorCode() {
			return api.ErrorCode() + ": " + m
		}
		return api.ErrorCode()
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Error()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("HTTP %d", re.HTTPStatusCode())
	}
	s := err.Error()
	if i := strings.LastIndex(s, ", exceeded maximum number of attempts"); i > 0 {
		s = s[:i]
	}
	return s
}
