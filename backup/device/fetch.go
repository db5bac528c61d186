package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/holiday-ops/holiday/internal/sshx"
)

// Target is one device to back up: the plan's device entry with the
// secrets still where the plan points (read when connecting, never
// copied into logs).
type Target struct {
	Name      string
	Address   string
	Port      int // 0 means 22
	Model     string
	User      string
	Password  Secret
	Enable    Secret // the enable (IOS, EOS) or super (Comware) password, if the device asks
	Identity  string // a private key file, beside or instead of the password
	Save      bool   // save running to startup before the backup
	LegacyKex bool   // offer x/crypto's insecure algorithms to this device only
}

// Secret is where a password comes from: an environment variable or a
// file (its trailing newline dropped). Plans never hold one inline.
type Secret struct {
	Env  string
	File string
}

// IsSet reports whether the secret names a source.
func (s Secret) IsSet() bool { return s.Env != "" || s.File != "" }

// Read returns the secret.
func (s Secret) Read() (string, error) {
	switch {
	case s.Env != "":
		v := os.Getenv(s.Env)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is unset or empty", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", errors.New("no password configured")
}

// Options shape how devices are reached. The zero value is usable.
type Options struct {
	Log *slog.Logger // nil: discard
	// KnownHosts are the known_hosts files device keys are checked
	// against (the plan's ssh.known_hosts); empty: ~/.ssh/known_hosts.
	KnownHosts []string
	// AcceptNew adds the key of a device known_hosts has no key for; a
	// changed key is refused regardless.
	AcceptNew bool
	// ConnectTimeout bounds the TCP connect and the SSH handshake
	// (default 15s).
	ConnectTimeout time.Duration
	// Idle bounds every wait: how long the device may send nothing new
	// while holiday waits for a prompt, a page or the end of the config
	// (default 30s).
	Idle time.Duration
	// Timeout bounds one device from connect to last byte (default 5m).
	Timeout time.Duration
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Unsaved says whether running and startup configs differed before any
// save.
type Unsaved int

const (
	UnsavedUnknown Unsaved = iota // the model has no startup config to compare, or it could not be read
	UnsavedNone                   // running equals startup (after normalization), or the model has nothing to save
	UnsavedFound                  // running differs from startup
)

func (u Unsaved) String() string {
	switch u {
	case UnsavedNone:
		return "none"
	case UnsavedFound:
		return "found"
	}
	return "unknown"
}

// Fetched is what one read of a device gives.
type Fetched struct {
	Config  string  // the raw running config, complete (end marker checked)
	Unsaved Unsaved // before any save
	Saved   bool    // a save ran and succeeded
	// SaveSkipped says why a save asked for did not run ("" if it ran or
	// was not asked for).
	SaveSkipped string
	Warnings    []string
}

// Fetch connects to t, optionally saves its running config, and returns
// the running config. It fails, rather than returning a short config,
// when the output lacks the model's end marker.
func Fetch(ctx context.Context, t Target, o Options) (*Fetched, error) {
	d, ok := Drivers[t.Model]
	if !ok {
		return nil, fmt.Errorf("unknown model %q (known: %s)", t.Model, strings.Join(Models(), ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(o.Timeout, 5*time.Minute))
	defer cancel()
	client, err := dial(ctx, t, d, o)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	// closing the client is what unblocks reads when ctx ends
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	var f *Fetched
	if d.Exec {
		f, err = fetchExec(ctx, client, t, d, o)
	} else {
		f, err = fetchCLI(ctx, client, t, d, o)
	}
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%w (whole-device timeout %s)", err, orDefault(o.Timeout, 5*time.Minute))
	}
	return f, err
}

// dial connects and logs in, with host keys checked like hosts'.
func dial(ctx context.Context, t Target, d *Driver, o Options) (*ssh.Client, error) {
	port := t.Port
	if port == 0 {
		port = 22
	}
	addr := net.JoinHostPort(t.Address, strconv.Itoa(port))
	hk, err := sshx.NewHostKeys(t.Name, t.Address, port, o.KnownHosts, o.AcceptNew)
	if err != nil {
		return nil, err
	}
	auth, err := authMethods(t)
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
	_ = nc.SetDeadline(time.Now().Add(timeout))
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		if r := hk.Refused(); r != nil {
			return nil, r
		}
		return nil, handshakeError(err, addr, timeout, t)
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// noCommon picks the algorithm kind and the peer's list out of
// x/crypto's "no common algorithm" error.
var noCommon = regexp.MustCompile(`no common algorithm for ([^;]+); we offered: \[[^\]]*\], peer offered: \[([^\]]*)\]`)

// handshakeError words a failed SSH handshake for the operator.
func handshakeError(err error, addr string, timeout time.Duration, t Target) error {
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
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: the device closed the connection during the SSH handshake", addr)
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
func authMethods(t Target) ([]ssh.AuthMethod, error) {
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
		out = append(out, ssh.PublicKeys(signer))
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
				mu.Lock()
				*tried = true
				mu.Unlock()
				return pw, nil
			}),
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				mu.Lock()
				defer mu.Unlock()
				if *tried {
					return nil, errPasswordRefused
				}
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

// fetchExec reads the config on an exec channel: no pty, no prompt, no
// pager; the exit status tells a finished read from a cut one.
func fetchExec(ctx context.Context, client *ssh.Client, t Target, d *Driver, o Options) (*Fetched, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	idle := orDefault(o.Idle, 30*time.Second)
	var stderr bytes.Buffer
	out := &progressWriter{tick: make(chan struct{}, 1)}
	s.Stdout, s.Stderr = out, &stderr
	if err := s.Start(d.ShowCommand); err != nil {
		return nil, fmt.Errorf("run %q: %w", d.ShowCommand, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				// the channel ended because the client was closed when
				// time ran out, not because the device cut it
				return nil, fmt.Errorf("%q: time ran out after %d bytes", d.ShowCommand, out.Len())
			}
			return execResult(t, d, out.String(), stderr.String(), err)
		case <-out.tick:
			timer.Reset(idle)
		case <-timer.C:
			s.Close()
			return nil, fmt.Errorf("%q: nothing new from the device for %s after %d bytes", d.ShowCommand, idle, out.Len())
		case <-ctx.Done():
			s.Close()
			if ctx.Err() == context.DeadlineExceeded {
				return nil, fmt.Errorf("%q: time ran out after %d bytes", d.ShowCommand, out.Len())
			}
			return nil, fmt.Errorf("%q: %w after %d bytes", d.ShowCommand, ctx.Err(), out.Len())
		}
	}
}

func execResult(t Target, d *Driver, cfg, stderr string, err error) (*Fetched, error) {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%q: the device closed the channel without an exit status after %d bytes: the config is cut off, not stored", d.ShowCommand, len(cfg))
	case errors.As(err, &exitErr):
		return nil, fmt.Errorf("%q exited with status %d: %s", d.ShowCommand, exitErr.ExitStatus(), clipText(Mask(d.Model, strings.TrimSpace(stderr+" "+lastLine(cfg))), 200))
	case err != nil:
		return nil, fmt.Errorf("%q: %w", d.ShowCommand, err)
	}
	// the same text an interactive read gives: lines ending in '\n'
	cfg = strings.ReplaceAll(cfg, "\r\n", "\n")
	if !d.Complete(cfg) {
		return nil, incomplete(d, cfg)
	}
	// Junos runs what was committed; RouterOS saves every change at once
	f := &Fetched{Config: cfg, Unsaved: UnsavedNone}
	if t.Save {
		f.SaveSkipped = "no save needed: " + d.Model + "'s running config is the saved one"
	}
	return f, nil
}

func incomplete(d *Driver, cfg string) error {
	return fmt.Errorf("the config has no end marker (%s) after %d bytes: it is cut off, not stored (last line: %q)", d.EndMarker, len(cfg), clipText(Mask(d.Model, lastLine(cfg)), 80))
}

// progressWriter collects a channel's output and signals tick on every
// write, for idle timeouts. x/crypto's copier may still write after a
// timeout made us give up, hence the lock.
type progressWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	tick chan struct{}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	select {
	case p.tick <- struct{}{}:
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *progressWriter) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Len()
}

func (p *progressWriter) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

// fetchCLI drives the interactive CLI: learn the prompt, escalate, paging
// off, compare running with startup, save, show.
func fetchCLI(ctx context.Context, client *ssh.Client, t Target, d *Driver, o Options) (*Fetched, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	// a realistic terminal height: the pager shows up until paging is off,
	// and is answered if a paging-off command is refused
	if err := s.RequestPty("vt100", 24, 511, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return nil, fmt.Errorf("request a terminal: %w", err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.Shell(); err != nil {
		return nil, fmt.Errorf("start the CLI: %w", err)
	}
	idle := orDefault(o.Idle, 30*time.Second)
	c := newCLI(stdout, stdin, func(s string) string { return Mask(d.Model, s) })
	log := o.log().With("device", t.Name)

	if _, _, err := c.expect(ctx, "the first prompt", idle, d.Prompt); err != nil {
		return nil, err
	}
	if err := learnPrompt(ctx, c, d, idle); err != nil {
		return nil, err
	}
	log.Debug("prompt learned", "prompt", c.prompt.String())
	if e := d.Escalate; e != nil && e.When.MatchString(c.currentLine()) {
		if err := escalate(ctx, c, t, d, idle); err != nil {
			return nil, err
		}
	}
	f := &Fetched{}
	for _, cmd := range d.OnOpen {
		out, err := c.command(ctx, cmd, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return nil, err
		}
		if l := refused(d, out); l != "" {
			// the pager is still answered; the read just gets slower
			f.Warnings = append(f.Warnings, fmt.Sprintf("%q refused: %s", cmd, l))
		}
	}
	show := func() (string, error) {
		out, err := c.command(ctx, d.ShowCommand, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return "", fmt.Errorf("reading the config (%d bytes so far, nothing stored): %w", len(out), err)
		}
		if l := refused(d, out); l != "" {
			return "", fmt.Errorf("%q refused: %s", d.ShowCommand, l)
		}
		if !d.Complete(out) {
			return "", incomplete(d, out)
		}
		return out, nil
	}
	var running string
	if d.StartupCommand != "" {
		if running, err = show(); err != nil {
			return nil, err
		}
		startup, err := c.command(ctx, d.StartupCommand, idle, d.Pager, d.PagerKey, nil)
		switch {
		case err != nil:
			return nil, fmt.Errorf("reading the startup config: %w", err)
		case refused(d, startup) != "" || strings.TrimSpace(startup) == "":
			f.Warnings = append(f.Warnings, "no startup config to compare with (never saved?)")
			f.Unsaved = UnsavedFound
		case sameConfig(d, running, startup):
			f.Unsaved = UnsavedNone
		default:
			f.Unsaved = UnsavedFound
		}
	}
	if t.Save && d.Save == nil {
		f.SaveSkipped = "no save step for " + d.Model
	} else if t.Save {
		skipped, err := save(ctx, c, d, idle)
		if err != nil {
			return nil, err
		}
		if f.SaveSkipped = skipped; skipped == "" {
			f.Saved = true
			running = "" // read again: what is stored is what was saved
		} else if f.Unsaved == UnsavedUnknown && d.Save.Check != "" {
			f.Unsaved = UnsavedNone // the check said the device saves by itself
		}
	}
	if running == "" {
		if running, err = show(); err != nil {
			return nil, err
		}
	}
	f.Config = running
	_ = c.send("exit")
	return f, nil
}

// learnPrompt sends an empty line and takes the line the device answers
// with as its exact prompt. Anchoring on it, not on a generic pattern,
// keeps a config line that looks like a prompt from ending the read.
func learnPrompt(ctx context.Context, c *cli, d *Driver, idle time.Duration) error {
	c.clearLine()
	if err := c.send(""); err != nil {
		return err
	}
	if _, _, err := c.expect(ctx, "the prompt after an empty line", idle, d.Prompt); err != nil {
		return err
	}
	c.prompt = anchor(c.currentLine())
	return nil
}

func escalate(ctx context.Context, c *cli, t Target, d *Driver, idle time.Duration) error {
	e := d.Escalate
	c.clearLine()
	if err := c.send(e.Command); err != nil {
		return err
	}
	i, out, err := c.expect(ctx, fmt.Sprintf("%q to answer", e.Command), idle, d.Prompt, e.PasswordPrompt)
	if err != nil {
		return err
	}
	if l := refused(d, out); l != "" {
		return fmt.Errorf("%q refused: %s", e.Command, l)
	}
	if i == 1 {
		if !t.Enable.IsSet() {
			return fmt.Errorf("%q asks for a password and the plan gives none: set enable_password_env or enable_password_file for this device", e.Command)
		}
		pw, err := t.Enable.Read()
		if err != nil {
			return fmt.Errorf("enable password: %w", err)
		}
		c.clearLine()
		if err := c.send(pw); err != nil {
			return err
		}
		i, out, err = c.expect(ctx, fmt.Sprintf("the prompt after the %q password", e.Command), idle, d.Prompt, e.PasswordPrompt)
		if err != nil {
			return err
		}
		if i == 1 || (e.Refused != nil && e.Refused.MatchString(out)) {
			return fmt.Errorf("%q refused the password from %s", e.Command, secretSource(t.Enable))
		}
	}
	if !e.SamePrompt && e.When.MatchString(c.currentLine()) {
		return fmt.Errorf("%q did not raise privileges (prompt still %q): wrong password from %s?", e.Command, strings.TrimSpace(c.currentLine()), secretSource(t.Enable))
	}
	return learnPrompt(ctx, c, d, idle)
}

// save runs the model's save dialog. It returns why it skipped, or "".
func save(ctx context.Context, c *cli, d *Driver, idle time.Duration) (string, error) {
	sv := d.Save
	if sv.Check != "" {
		out, err := c.command(ctx, sv.Check, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return "", err
		}
		if !sv.Needed.MatchString(out) {
			return "no save needed: the device saves every change by itself", nil
		}
	}
	out, err := c.command(ctx, sv.Command, orDefault(2*idle, time.Minute), d.Pager, d.PagerKey, sv.Questions)
	if err != nil {
		return "", fmt.Errorf("save (%q): %w", sv.Command, err)
	}
	if l := refused(d, out); l != "" {
		return "", fmt.Errorf("save (%q) refused: %s", sv.Command, l)
	}
	if sv.Success != nil && !sv.Success.MatchString(out) {
		return "", fmt.Errorf("save (%q) did not report success: %q", sv.Command, clipText(Mask(d.Model, strings.TrimSpace(out)), 200))
	}
	return "", nil
}

// refused returns the first error line in out, or "".
func refused(d *Driver, out string) string {
	for _, e := range d.Errors {
		if loc := e.FindStringIndex(out); loc != nil {
			line := out[loc[0]:]
			if i := strings.IndexByte(line, '\n'); i >= 0 {
				line = line[:i]
			}
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// sameConfig compares running and startup without the lines that differ
// between the two by nature (headers, timestamps).
func sameConfig(d *Driver, running, startup string) bool {
	// blank lines too: IOS's running config has one after its header
	// that the startup config lacks
	norm := func(s string) string {
		var b strings.Builder
		for l := range strings.Lines(Normalize(d.Model, s)) {
			if strings.TrimSpace(l) != "" {
				b.WriteString(l)
			}
		}
		return b.String()
	}
	return norm(running) == norm(startup)
}
