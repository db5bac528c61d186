package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/holiday-ops/holiday/internal/sshx"
)

// closedRetries are the waits before a device is dialed again after it
// closed the connection during the SSH handshake before any credential
// was offered: a device whose VTY lines are all busy (another session, a
// colleague's, the monitoring's) or whose SSH server is restarting
// closes at once, and a moment later lets in (Oxidized retries a failed
// device too). A close after a credential was offered is not retried:
// the device's lockout counter would count every attempt.
var closedRetries = []time.Duration{500 * time.Millisecond, 2 * time.Second}

// errClosedEarly marks a handshake the device closed before any
// credential was offered.
var errClosedEarly = errors.New("the device closed the connection during the SSH handshake")

// dial connects and logs in, with host keys checked like hosts', again
// after a pause when the device closed the connection before any
// credential was offered (closedRetries).
func dial(ctx context.Context, t Target, d *Driver, o Options) (*ssh.Client, error) {
	start := time.Now()
	for i := 0; ; i++ {
		c, err := dialOnce(ctx, t, d, o)
		if err == nil || !errors.Is(err, errClosedEarly) || i == len(closedRetries) {
			switch {
			case err == nil || i == 0:
			case errors.Is(err, errClosedEarly):
				err = fmt.Errorf("%w (%d connections in %s)", err, i+1, time.Since(start).Round(100*time.Millisecond))
			default:
				err = fmt.Errorf("%w (after the device closed %d connections at once)", err, i)
			}
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w; gave up: %w", err, context.Cause(ctx))
		case <-time.After(closedRetries[i]):
		}
	}
}

func dialOnce(ctx context.Context, t Target, d *Driver, o Options) (*ssh.Client, error) {
	port := t.Port
	if port == 0 {
		port = 22
	}
	addr := net.JoinHostPort(t.Address, strconv.Itoa(port))
	hk, err := sshx.NewHostKeys(t.Name, t.Address, port, o.KnownHosts, o.AcceptNew)
	if err != nil {
		return nil, err
	}
	var offered atomic.Bool // a credential was offered
	auth, err := authMethods(t, &offered)
	if err != nil {
		return nil, err
	}
	timeout := orDefault(o.ConnectTimeout, 15*time.Second)
	cfg := &ssh.ClientConfig{
		User:              t.User + d.UserSuffix,
		Auth:              auth,
		HostKeyCallback:   hk.Callback(),
		HostKeyAlgorithms: hk.Algorithms(t.LegacyKex),
		Timeout:           timeout,
	}
	if t.LegacyKex {
		sup, ins := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
		cfg.KeyExchanges = append(sup.KeyExchanges, ins.KeyExchanges...)
		cfg.Ciphers = append(sup.Ciphers, ins.Ciphers...)
		cfg.MACs = append(sup.MACs, ins.MACs...)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var nd net.Dialer
	nc, err := nd.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// connect and handshake together within the timeout; the run's end
	// (an interrupt) ends the handshake too
	dl, _ := dctx.Deadline()
	_ = nc.SetDeadline(dl)
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if !stop() && err == nil {
		sc.Close()
		err = dctx.Err()
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: %w", addr, context.Cause(ctx))
		}
		if r := hk.Refused(); r != nil {
			if r.Kind == sshx.KindHostKeyUnknown {
				// sshx's hint names a Linux host's key files; a device
				// shows its key on its own console
				r.Hint = fmt.Sprintf("confirm that fingerprint on the device's console, then add this line to known_hosts: %s (or rerun with --accept-new-host-keys)", r.Line)
			}
			return nil, r
		}
		return nil, handshakeError(err, addr, timeout, t, offered.Load())
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// noCommon picks the algorithm kind and the peer's list out of
// x/crypto's "no common algorithm" error.
var noCommon = regexp.MustCompile(`no common algorithm for ([^;]+); we offered: \[[^\]]*\], peer offered: \[([^\]]*)\]`)

// handshakeError words a failed SSH handshake for the operator.
func handshakeError(err error, addr string, timeout time.Duration, t Target, offered bool) error {
	msg := err.Error()
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s: connected, but the SSH handshake did not finish within %s (the device accepted TCP and never answered: overloaded, or not an SSH server?)", addr, timeout)
	case strings.Contains(msg, "no common algorithm"):
		what, offered := msg, ""
		if m := noCommon.FindStringSubmatch(msg); m != nil {
			var algs []string
			for _, a := range strings.Fields(strings.ReplaceAll(m[2], `"`, "")) {
				// markers, not algorithms
				if !strings.HasPrefix(a, "kex-strict-") && !strings.HasPrefix(a, "ext-info-") {
					algs = append(algs, a)
				}
			}
			what, offered = m[1], strings.Join(algs, ", ")
		}
		if t.LegacyKex {
			return fmt.Errorf("%s: no SSH %s in common even with legacy_kex (the device offers %s)", addr, what, offered)
		}
		return fmt.Errorf("%s: no SSH %s in common: the device offers only %s; if it cannot be upgraded, set legacy_kex: true for this device", addr, what, offered)
	case strings.Contains(msg, "unable to authenticate"), strings.Contains(msg, errPasswordRefused.Error()):
		what := "its key"
		if t.Password.IsSet() {
			what = "the password from " + secretSource(t.Password)
		}
		return fmt.Errorf("%s: login refused for user %q with %s (one attempt made, to avoid locking the account)", addr, t.User, what)
	case (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && offered:
		return fmt.Errorf("%s: the device closed the connection after the login was offered (not tried again, so as not to count against its lockout)", addr)
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%s: %w (all its VTY lines busy, or its SSH server restarting?)", addr, errClosedEarly)
	}
	return fmt.Errorf("%s: SSH handshake: %w", addr, err)
}

func secretSource(s Secret) string {
	if s.Env != "" {
		return "$" + s.Env
	}
	return s.File
}

// authMethods offers the key (if any), the password, and
// keyboard-interactive with the same password only where the device did
// not take a password attempt already: a wrong password costs one attempt,
// not two, against the device's lockout counter.
func authMethods(t Target, offered *atomic.Bool) ([]ssh.AuthMethod, error) {
	var out []ssh.AuthMethod
	if t.Identity != "" {
		b, err := os.ReadFile(t.Identity)
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w (holiday reads unencrypted keys for devices)", t.Identity, err)
		}
		out = append(out, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			offered.Store(true)
			return []ssh.Signer{signer}, nil
		}))
	}
	tried := new(bool)
	if t.Password.IsSet() {
		pw, err := t.Password.Read()
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		var mu sync.Mutex
		out = append(out,
			ssh.PasswordCallback(func() (string, error) {
				offered.Store(true)
				mu.Lock()
				*tried = true
				mu.Unlock()
				return pw, nil
			}),
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				if len(questions) == 0 {
					// no password asked for: OpenSSH with PAM sends one
					// such request after the Password prompt
					return nil, nil
				}
				mu.Lock()
				defer mu.Unlock()
				if *tried {
					return nil, errPasswordRefused
				}
				offered.Store(true)
				answers := make([]string, len(questions))
				for i := range questions {
					if !echos[i] {
						answers[i] = pw
					}
				}
				*tried = true
				return answers, nil
			}))
	}
	if len(out) == 0 {
		return nil, errors.New("no way to log in: no password and no identity")
	}
	return out, nil
}

var errPasswordRefused = errors.New("the password was already refused")
