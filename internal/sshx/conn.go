package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Conn is one SSH connection to a host (possibly through jump hosts),
// shared by all the sessions opened on it. It is safe for concurrent use.
type Conn struct {
	label, addr, user string
	via               string
	client            *ssh.Client
	hops              []*ssh.Client // jump connections, outermost first
	sem               chan struct{}
	log               *slog.Logger
	connectTime       time.Duration

	closeOnce sync.Once
	done      chan struct{}
	mu        sync.Mutex
	closeErr  error // why the connection ended
}

// Dial connects to t: resolves it through ~/.ssh/config, dials each jump
// hop in turn (verifying every hop's host key), authenticates, and starts
// keepalives. ctx bounds the whole dial; Options.ConnectTimeout bounds
// each hop. Errors are *Error.
func Dial(ctx context.Context, t Target, opts Options) (*Conn, error) {
	log := opts.logger().With("host", t.Label())
	start := time.Now()
	r, err := resolve(t, opts)
	if err != nil {
		return nil, &Error{Host: t.Label(), Addr: t.Host, Kind: KindConfig, Err: err}
	}
	var (
		via  *ssh.Client
		hops []*ssh.Client
		path []string
	)
	closeHops := func() {
		for i := len(hops) - 1; i >= 0; i-- {
			hops[i].Close()
		}
	}
	for _, j := range r.jumps {
		c, err := dialHop(ctx, via, j, strings.Join(path, " → "), opts, log)
		if err != nil {
			closeHops()
			var e *Error
			if errors.As(err, &e) {
				// Say it is the jump that failed, on behalf of the target.
				e.Err = fmt.Errorf("jump host %s: %w", j.label, e.Err)
				e.Host, e.Addr = r.target.label, r.target.addr()
				if e.Via == "" {
					e.Via = j.describe()
				}
			}
			return nil, err
		}
		hops = append(hops, c)
		via = c
		path = append(path, j.describe())
	}
	client, err := dialHop(ctx, via, r.target, strings.Join(path, " → "), opts, log)
	if err != nil {
		closeHops()
		return nil, err
	}
	c := &Conn{
		label: r.target.label, addr: r.target.addr(), user: r.target.user,
		via:    strings.Join(path, " → "),
		client: client, hops: hops,
		sem:         make(chan struct{}, opts.maxSessions()),
		log:         log,
		connectTime: time.Since(start),
		done:        make(chan struct{}),
	}
	go func() {
		err := client.Wait()
		c.shutdown(err)
	}()
	if iv := opts.KeepaliveInterval; iv >= 0 {
		if iv == 0 {
			iv = 15 * time.Second
		}
		max := opts.KeepaliveMax
		if max <= 0 {
			max = 3
		}
		go c.keepalive(iv, max)
	}
	log.Debug("connected", "addr", c.addr, "user", c.user, "via", c.via, "took", c.connectTime)
	return c, nil
}

// handshakeRetries are the waits before a hop is dialed again after its
// server closed the connection during the SSH handshake. sshd drops new
// connections beyond MaxStartups (by default at random from 10
// unauthenticated ones on: parallel runs and scanners reach it), and
// one that is starting or restarting does the same; a second attempt
// moments later gets through (OpenSSH's ConnectionAttempts, Ansible's
// reconnection retries). Only a close before any key was offered is
// retried (one after may be a limit on failed logins, which a retry
// would feed); nothing else is: a refusal, a timeout or a key problem is
// not a moment's crowding. Each wait is varied by up to half (jitter), so
// that the hosts of one run dialed through one bastion do not come back
// all at once.
var handshakeRetries = []time.Duration{250 * time.Millisecond, time.Second, 2 * time.Second}

// errServerClosed marks a handshake the server closed.
var errServerClosed = errors.New("the server closed the connection during the SSH handshake")

// dialHop dials a hop, again after a pause when its server closed the
// connection during the handshake (handshakeRetries).
func dialHop(ctx context.Context, via *ssh.Client, h hop, viaLabel string, opts Options, log *slog.Logger) (*ssh.Client, error) {
	start := time.Now()
	for i := 0; ; i++ {
		c, err := dialHopOnce(ctx, via, h, viaLabel, opts, log)
		if err == nil || !errors.Is(err, errServerClosed) {
			return c, err
		}
		if i == len(handshakeRetries) {
			var e *Error
			if errors.As(err, &e) {
				e.Err = fmt.Errorf("%w, %d times in %s", e.Err, i+1, time.Since(start).Round(100*time.Millisecond))
			}
			return nil, err
		}
		if via != nil {
			// a jump host that went away looks like the target closing
			if _, _, verr := via.SendRequest("keepalive@openssh.com", true, nil); verr != nil {
				return nil, &Error{Host: h.label, Addr: h.addr(), Via: viaLabel, Kind: KindUnreachable,
					Err: fmt.Errorf("the connection to the jump host broke during the SSH handshake: %w", verr)}
			}
		}
		pause := handshakeRetries[i]/2 + rand.N(handshakeRetries[i])
		log.Info("the server closed the connection during the SSH handshake; dialing again", "hop", h.label, "attempt", i+2, "after", pause)
		select {
		case <-ctx.Done():
			var e *Error
			if errors.As(err, &e) {
				e.Err = fmt.Errorf("%w; gave up: %w", e.Err, context.Cause(ctx))
			}
			return nil, err
		case <-time.After(pause):
		}
	}
}

// dialHopOnce opens a TCP connection (directly, or as a direct-tcpip
// channel through via) and runs the SSH handshake over it.
func dialHopOnce(ctx context.Context, via *ssh.Client, h hop, viaLabel string, opts Options, log *slog.Logger) (*ssh.Client, error) {
	fail := func(kind Kind, err error, hint string) *Error {
		return &Error{Host: h.label, Addr: h.addr(), Via: viaLabel, Kind: kind, Err: err, Hint: hint}
	}
	timeout := opts.connectTimeout()
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var nc net.Conn
	var err error
	if via == nil {
		var d net.Dialer
		nc, err = d.DialContext(hctx, "tcp", h.addr())
	} else {
		nc, err = via.DialContext(hctx, "tcp", h.addr())
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail(KindUnreachable, fmt.Errorf("connecting: %w", ctx.Err()), "")
		}
		if hctx.Err() != nil {
			return nil, fail(KindUnreachable, fmt.Errorf("connection timed out after %s", timeout), "")
		}
		if via != nil && errors.Is(err, io.EOF) {
			return nil, fail(KindUnreachable, fmt.Errorf("the connection to the jump host broke: %w", err), "")
		}
		return nil, fail(KindUnreachable, dialError(err), "")
	}

	v, err := newVerifier(h, opts)
	if err != nil {
		nc.Close()
		return nil, fail(KindConfig, err, "")
	}
	v.onAccept = func(line string) {
		log.Warn("accepted new host key", "hop", h.label, "file", v.knownHostsFile(), "line", line)
	}
	au, err := newAuth(hctx, h, opts, log)
	if err != nil {
		nc.Close()
		var e *Error
		if errors.As(err, &e) {
			e.Host, e.Addr, e.Via = h.label, h.addr(), viaLabel
			return nil, e
		}
		return nil, fail(KindConfig, err, "")
	}
	defer au.close()

	var authTried atomic.Bool
	cfg := &ssh.ClientConfig{
		User: h.user,
		// authTried: a server that closes once a key was offered is not
		// dialed again (fail2ban counts attempts)
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			authTried.Store(true)
			return au.signers, nil
		})},
		HostKeyCallback:   v.check,
		HostKeyAlgorithms: v.algorithms(),
		Timeout:           timeout,
	}
	// The handshake has no context of its own: close the socket when ctx
	// ends, which makes it return.
	stop := context.AfterFunc(hctx, func() { nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, h.addr(), cfg)
	stopped := stop()
	if err != nil {
		nc.Close()
		switch {
		case v.refused != nil:
			e := v.refused
			e.Host, e.Addr, e.Via = h.label, h.addr(), viaLabel
			return nil, e
		case !stopped && ctx.Err() != nil:
			return nil, fail(KindTimeout, fmt.Errorf("SSH handshake: %w", ctx.Err()), "")
		case !stopped:
			return nil, fail(KindTimeout, fmt.Errorf("SSH handshake did not finish within %s", timeout), "")
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fail(KindAuth, errors.New(au.describe(h.user)), au.hint())
		case strings.Contains(err.Error(), "no common algorithm for host key"):
			return nil, fail(KindHostKeyChanged,
				fmt.Errorf("the host offers none of the host key types known_hosts holds for it (%s); its keys may have changed", strings.Join(cfg.HostKeyAlgorithms, ", ")),
				"confirm the host's key on its console; holiday never replaces a known key itself")
		case (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && authTried.Load():
			return nil, fail(KindHandshake, errors.New("the server closed the connection after keys were offered"),
				"see the host's sshd log (MaxAuthTries, an authentication module); holiday does not try again, so as not to add failed logins")
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			return nil, fail(KindHandshake, errServerClosed,
				"see the host's sshd log: sshd drops connections beyond its MaxStartups, and OpenSSH 9.8 and later for a while from an address its PerSourcePenalties penalized (\"penalty\" in the log); a TCP wrapper (hosts.deny) or a server that is not sshd closes them too")
		}
		return nil, fail(KindHandshake, err, "")
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// keepalive sends keepalive@openssh.com every iv and closes the
// connection after max consecutive requests went unanswered. Any reply,
// even a refusal, proves the peer alive.
func (c *Conn) keepalive(iv time.Duration, max int) {
	t := time.NewTicker(iv)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-reply:
			if err != nil {
				c.shutdown(fmt.Errorf("keepalive: %w", err))
				return
			}
			missed = 0
		case <-time.After(iv):
			missed++
			c.log.Warn("keepalive unanswered", "missed", missed, "max", max)
			if missed >= max {
				c.shutdown(fmt.Errorf("no answer to %d keepalives in %s; connection dropped", missed, time.Duration(missed)*iv))
				return
			}
		}
	}
}

func (c *Conn) shutdown(why error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if why == nil {
			why = errors.New("connection closed")
		}
		c.closeErr = why
		c.mu.Unlock()
		close(c.done)
		c.client.Close()
		for i := len(c.hops) - 1; i >= 0; i-- {
			c.hops[i].Close()
		}
	})
}

// Close closes the connection and its jump hops; open sessions end.
func (c *Conn) Close() error {
	c.shutdown(errors.New("connection closed"))
	return nil
}

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Label, Addr and User describe the far end as resolved.
func (c *Conn) Label() string { return c.label }
func (c *Conn) Addr() string  { return c.addr }
func (c *Conn) User() string  { return c.user }

// ConnectTime is how long Dial took, all hops included.
func (c *Conn) ConnectTime() time.Duration { return c.connectTime }

// Client exposes the underlying *ssh.Client for uses sshx does not wrap
// (port forwarding). Sessions opened on it directly bypass the limit.
func (c *Conn) Client() *ssh.Client { return c.client }

func (c *Conn) errorf(kind Kind, err error) *Error {
	return &Error{Host: c.label, Addr: c.addr, Via: c.via, Kind: kind, Err: err}
}

// Session is an SSH session that holds one of its connection's session
// slots until Close.
type Session struct {
	*ssh.Session
	release func()
}

// Close closes the session and frees its slot. Safe to call twice.
func (s *Session) Close() error {
	err := s.Session.Close()
	s.release()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return err
}

// NewSession opens a session, waiting (as long as ctx allows) for a free
// slot when MaxSessions are already open.
func (c *Conn) NewSession(ctx context.Context) (*Session, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, c.errorf(KindSession, fmt.Errorf("waiting for a free session slot: %w", ctx.Err()))
	case <-c.done:
		return nil, c.errorf(KindClosed, c.Err())
	}
	var once sync.Once
	release := func() { once.Do(func() { <-c.sem }) }
	// sshd frees a session slot only after it has processed our channel
	// close, a moment after our slot was released: a refusal right at the
	// limit is that race, so it is retried briefly.
	var s *ssh.Session
	var err error
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s, err = c.client.NewSession()
		var oce *ssh.OpenChannelError
		if err == nil || !errors.As(err, &oce) || attempt >= 12 {
			break
		}
		c.log.Debug("session refused, retrying", "err", err, "attempt", attempt+1)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			release()
			return nil, c.errorf(KindSession, fmt.Errorf("opening a session: %w (%w)", err, ctx.Err()))
		case <-c.done:
			release()
			return nil, c.errorf(KindClosed, c.Err())
		}
		backoff = min(2*backoff, 250*time.Millisecond)
	}
	if err != nil {
		release()
		if c.Err() != nil {
			return nil, c.errorf(KindClosed, c.Err())
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			e := c.errorf(KindSession, fmt.Errorf("the server refused a new session: %w", err))
			e.Hint = fmt.Sprintf("the server's MaxSessions may be lower than holiday's limit of %d; lower it (ssh.max_sessions)", cap(c.sem))
			return nil, e
		}
		return nil, c.errorf(KindSession, fmt.Errorf("opening a session: %w", err))
	}
	return &Session{Session: s, release: release}, nil
}

// Run runs cmd in a new session (no pty) with the given stdin, stdout and
// stderr (any may be nil) and waits for it. When ctx ends, the remote
// command is sent SIGKILL and the session closed.
func (c *Conn) Run(ctx context.Context, cmd string, stdin io.Reader, stdout, stderr io.Writer) error {
	s, err := c.NewSession(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	stop := context.AfterFunc(ctx, func() {
		s.Signal(ssh.SIGKILL)
		s.Session.Close()
	})
	defer stop()
	err = s.Run(cmd)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Output runs cmd and returns its stdout; a failure includes the tail of
// its stderr.
func (c *Conn) Output(ctx context.Context, cmd string) ([]byte, error) {
	var out, errb bytes.Buffer
	err := c.Run(ctx, cmd, nil, &out, &limitedBuffer{buf: &errb, max: 4096})
	if err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
	}
	return out.Bytes(), err
}

type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
