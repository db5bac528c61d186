// Package exitcode holds the exit codes every holiday command shares
// (DESIGN §3) and an error type that carries one to main.
//
// It imports nothing of holiday's; every layer may use it.
package exitcode

import "errors"

// The exit codes, the same for every command.
const (
	OK          = 0   // all done
	Usage       = 1   // usage or plan error
	HostsFailed = 2   // some hosts failed, the others done
	Reverted    = 3   // aborted and reverted
	Drift       = 4   // drift found
	Compromise  = 5   // compromise indicators found
	Interrupted = 130 // interrupted (Ctrl-C)
)

// Error attaches an exit code and an optional hint to an error. main alone
// turns it into a process exit status and the `holiday: error:` line.
type Error struct {
	Code int
	Err  error
	Hint string // printed on its own line after the error, when set
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// With wraps err so that main exits with code. A nil err stays nil.
func With(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// WithHint is With plus a hint line for the operator.
func WithHint(code int, err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err, Hint: hint}
}

// Of returns the exit code for err: 0 for nil, the code of the outermost
// *Error in its chain, or HostsFailed for any other error (a failure that
// nobody classified is a failure, not a usage error).
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return HostsFailed
}

// HintOf returns the hint attached to err, if any.
func HintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}
