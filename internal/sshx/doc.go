// Package sshx holds holiday's SSH transport: dialing a host (directly or
// through ProxyJump hops) with known_hosts verification, private-key and
// ssh-agent authentication, ~/.ssh/config host entries, keepalives and
// timeouts, and one shared connection per host whose sessions are kept
// within the server's per-connection limit (OpenSSH's MaxSessions, 10).
//
// Errors are *Error values that name the host and address and say what an
// operator should do ("web1 (10.0.1.10:22): connection refused").
//
// It is a leaf of internal/: it imports nothing of holiday's above
// internal/ (DESIGN §3), and knows nothing about the agent or plans.
package sshx
