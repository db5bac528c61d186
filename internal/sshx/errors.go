package sshx

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
)

// Kind classifies why a connection failed, so callers (holiday plan, the
// runner) can print one clear line per host and choose an exit code.
type Kind int

const (
	KindUnknown        Kind = iota
	KindConfig              // bad options, ssh config or key files; nothing was dialed
	KindUnreachable         // TCP connect failed: refused, timed out, no route, no such host
	KindTimeout             // connected, but the SSH handshake did not finish in time
	KindHostKeyUnknown      // known_hosts has no key for the host
	KindHostKeyChanged      // known_hosts has a different key for the host
	KindHostKeyRevoked      // the host's key is marked @revoked
	KindAuth                // the server refused every key we offered
	KindHandshake           // any other SSH protocol failure
	KindClosed              // the connection is closed (keepalive lost, Close called)
	KindSession             // a session could not be opened on a live connection
)

func (k Kind) String() string {
	switch k {
	case KindConfig:
		return "config"
	case KindUnreachable:
		return "unreachable"
	case KindTimeout:
		return "timeout"
	case KindHostKeyUnknown:
		return "host-key-unknown"
	case KindHostKeyChanged:
		return "host-key-changed"
	case KindHostKeyRevoked:
		return "host-key-revoked"
	case KindAuth:
		return "auth"
	case KindHandshake:
		return "handshake"
	case KindClosed:
		return "closed"
	case KindSession:
		return "session"
	}
	return "unknown"
}

// Error is what every failing sshx call returns. Its message is written
// for a tired operator: host label, address, what happened.
type Error struct {
	Host string // the target's label (inventory name or ssh alias)
	Addr string // host:port that was dialed
	Via  string // the jump hop(s) it was dialed through, if any
	Kind Kind
	Err  error
	// Hint says what to do about it, one line; empty if nothing useful.
	Hint string

	// For host key errors: the key the server offered, as
	// "ED25519 SHA256:…", and the known_hosts line that would accept it
	// (KindHostKeyUnknown only).
	Offered string
	Line    string
	// For KindHostKeyChanged: the keys known_hosts holds, as
	// "file:line: ED25519 SHA256:…".
	Known []string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Host)
	if e.Addr != "" && e.Addr != e.Host {
		fmt.Fprintf(&b, " (%s)", e.Addr)
	}
	if e.Via != "" {
		fmt.Fprintf(&b, " via %s", e.Via)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or
// KindUnknown.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindUnknown
}

// HintOf returns the hint of the first *Error in err's chain.
func HintOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

// dialError turns a TCP dial failure into words.
func dialError(err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Errorf("no such host %q", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, syscall.EHOSTUNREACH):
		return errors.New("no route to host")
	case errors.Is(err, syscall.ENETUNREACH):
		return errors.New("network is unreachable")
	case errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return errors.New("connection timed out")
	}
	// ssh's direct-tcpip refusal from a jump host.
	var oce interface{ Error() string }
	if errors.As(err, &oce) && strings.Contains(err.Error(), "ssh: rejected: connect failed") {
		return fmt.Errorf("the jump host could not connect: %s", strings.TrimPrefix(err.Error(), "ssh: rejected: connect failed "))
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// tildePath shows a path under $HOME as ~/…, as operators write it.
func tildePath(p string) string {
	home, err := os.UserHomeDir()
	if err == nil && home != "" && home != "/" {
		if rest, ok := strings.CutPrefix(p, home+"/"); ok {
			return "~/" + rest
		}
	}
	return p
}
