// Package devicesim runs simulated network devices for tests: one SSH
// server per vendor dialect on loopback, speaking that vendor's CLI as the
// vendors document it and as Oxidized's recorded sessions show it —
// banners, exact prompts (Comware's NUL and BEL, ANSI colours on RouterOS
// without "+ct"), echo, CRLF, the pager and the way each vendor erases
// it, enable/super, the save dialogs — with configs holding a canary
// secret in every syntax and volatile lines that change on every read.
//
// Faults make the bad days: output split mid-line and mid-prompt, a
// device that accepts TCP and never sends its SSH banner, one that hangs
// mid-config, one that cuts the connection mid-output, one that speaks
// only legacy algorithms (diffie-hellman-group1-sha1, aes128-cbc,
// ssh-rsa).
//
// It is test support: it imports nothing of holiday's.
package devicesim

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

//go:embed configs/*.cfg
var configs embed.FS

// Faults are the misbehaviours a device can show.
type Faults struct {
	// NoBanner accepts TCP connections and never speaks SSH.
	NoBanner bool
	// Busy closes that many connections first, as soon as it accepts
	// them, before any SSH: every VTY line taken.
	Busy int
	// Split writes everything in pieces of a few bytes, cutting lines,
	// escapes and the prompt.
	Split bool
	// HangAfter stops the config after that many bytes and keeps the
	// connection open, silent (0: never).
	HangAfter int
	// CutAfter closes the connection after that many bytes of the config
	// (0: never).
	CutAfter int
	// LegacyOnly offers only diffie-hellman-group1-sha1, aes128-cbc,
	// hmac-sha1 and an ssh-rsa (SHA-1) host key.
	LegacyOnly bool
	// Unsaved starts the device with a running config that differs from
	// its startup config.
	Unsaved bool
	// SaveIgnored answers the save dialog with success and saves nothing
	// (a full flash, a read-only startup).
	SaveIgnored bool
	// RefusePagingOff answers the paging-off command with an error, so
	// the pager stays on.
	RefusePagingOff bool
	// KeyboardOnly offers keyboard-interactive login alone, as an
	// OpenSSH with PAM does (Linux-based network OSes): the Password
	// prompt, then, once it is right, one more request with no question.
	KeyboardOnly bool
}

// Device is one simulated device. Set the exported fields, then Start.
type Device struct {
	Model          string // a plan model: cisco-ios, junos, …
	Hostname       string
	User           string
	Password       string
	EnablePassword string // IOS/EOS enable, Comware super; "" starts privileged
	Faults         Faults
	// Listen is the address to listen on (default 127.0.0.1:0); any
	// 127.x.y.z works on Linux, giving each device its own address.
	Listen string

	Addr    string        // host:port, set by Start
	HostKey ssh.PublicKey // set by Start

	ln      net.Listener
	dialect *dialect

	mu           sync.Mutex
	template     string // the running config with its placeholders
	startup      string // the saved config as rendered at the last save
	reads        int
	authAttempts int
	saves        int
	conns        []net.Conn
	accepted     int // connections
	closed       chan struct{}
}

// Start listens on 127.0.0.1 and serves until Close.
func (d *Device) Start() error {
	dl, ok := dialects[d.Model]
	if !ok {
		return fmt.Errorf("devicesim: unknown model %q", d.Model)
	}
	d.dialect = dl
	b, err := configs.ReadFile("configs/" + d.Model + ".cfg")
	if err != nil {
		return err
	}
	d.template = string(b)
	d.closed = make(chan struct{})
	if d.Hostname == "" {
		d.Hostname = "sim-" + d.Model
	}
	d.startup = d.render(d.template, 0)
	if d.Faults.Unsaved {
		d.template = dl.change(d.template, "unsaved-change")
	}
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			d.mu.Lock()
			d.authAttempts++
			d.mu.Unlock()
			if d.login(c.User()) && string(pw) == d.Password {
				return &ssh.Permissions{Extensions: map[string]string{"user": c.User()}}, nil
			}
			return nil, fmt.Errorf("wrong password")
		},
		KeyboardInteractiveCallback: func(c ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := ch("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			d.mu.Lock()
			d.authAttempts++
			d.mu.Unlock()
			if len(ans) == 1 && d.login(c.User()) && ans[0] == d.Password {
				if d.Faults.KeyboardOnly {
					if _, err := ch("", "", nil, nil); err != nil {
						return nil, err
					}
				}
				return &ssh.Permissions{Extensions: map[string]string{"user": c.User()}}, nil
			}
			return nil, fmt.Errorf("wrong password")
		},
		ServerVersion: dl.version,
	}
	if d.Faults.KeyboardOnly {
		cfg.PasswordCallback = nil
	}
	if d.Faults.LegacyOnly {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		s, err := ssh.NewSignerFromKey(k)
		if err != nil {
			return err
		}
		s, err = ssh.NewSignerWithAlgorithms(s.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
		if err != nil {
			return err
		}
		cfg.AddHostKey(s)
		d.HostKey = s.PublicKey()
		cfg.KeyExchanges = []string{ssh.InsecureKeyExchangeDH1SHA1}
		cfg.Ciphers = []string{ssh.InsecureCipherAES128CBC}
		cfg.MACs = []string{ssh.HMACSHA1}
	} else {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		s, err := ssh.NewSignerFromKey(k)
		if err != nil {
			return err
		}
		cfg.AddHostKey(s)
		d.HostKey = s.PublicKey()
	}
	listen := d.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	d.ln, err = net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	d.Addr = d.ln.Addr().String()
	go d.serve(cfg)
	return nil
}

// login checks the user name, with RouterOS's +flags.
func (d *Device) login(user string) bool {
	if d.Model == "routeros" {
		user, _, _ = strings.Cut(user, "+")
	}
	return user == d.User
}

// Close stops the device and drops its connections.
func (d *Device) Close() {
	d.mu.Lock()
	select {
	case <-d.closed:
	default:
		close(d.closed)
	}
	for _, c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	if d.ln != nil {
		d.ln.Close()
	}
}

// KnownHostsLine is the known_hosts line for the device.
func (d *Device) KnownHostsLine() string {
	host, port, _ := net.SplitHostPort(d.Addr)
	return fmt.Sprintf("[%s]:%s %s", host, port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(d.HostKey))))
}

// Accepted is how many connections the device accepted.
func (d *Device) Accepted() int { d.mu.Lock(); defer d.mu.Unlock(); return d.accepted }

// AuthAttempts counts password checks, across connections.
func (d *Device) AuthAttempts() int { d.mu.Lock(); defer d.mu.Unlock(); return d.authAttempts }

// Saves counts completed save dialogs.
func (d *Device) Saves() int { d.mu.Lock(); defer d.mu.Unlock(); return d.saves }

// Change makes a real configuration change (a new description line),
// as an operator would; what changes is returned, one line per entry as
// the device prints it.
func (d *Device) Change(word string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.template = d.dialect.change(d.template, word)
}

// Canaries returns the canary secrets the device's config holds: every
// token CANARY…NNNN, re-encrypted ones by their stable prefix.
func (d *Device) Canaries() []string {
	d.mu.Lock()
	cfg := d.render(d.template, 1)
	d.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range canaryRE.FindAllString(cfg, -1) {
		seen[m] = true
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

var canaryRE = regexp.MustCompile(`CANARY\w+?\d{4}`)

// Render returns the config of model as the read-th read of a device
// called host shows it (read 0 is the saved copy); for golden tests.
func Render(model, host string, read int) (string, error) {
	b, err := configs.ReadFile("configs/" + model + ".cfg")
	if err != nil {
		return "", fmt.Errorf("devicesim: unknown model %q", model)
	}
	d := &Device{Model: model, Hostname: host}
	return d.render(string(b), read), nil
}

// Models lists the simulated models.
func Models() []string {
	var out []string
	for m := range dialects {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Running renders the running config as the next read would show it,
// minus the read counter.
func (d *Device) running() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	return d.render(d.template, d.reads)
}

// render fills the placeholders: the host name, and the volatile parts
// that differ on every read (timestamps, a counter, re-encrypted
// ciphertext). Each re-encrypted value keeps a stable canary prefix.
func (d *Device) render(tpl string, read int) string {
	t := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC).Add(time.Duration(read) * time.Minute)
	r := strings.NewReplacer(
		"{{HOST}}", d.Hostname,
		"{{TIME}}", t.Format("15:04:05"),
		"{{RTIME}}", t.Format("2006-01-02 15:04:05"),
		"{{N}}", fmt.Sprint(read%10),
		"{{CFGSAVE}}", "manual",
	)
	s := r.Replace(tpl)
	n := 0
	for _, ph := range []string{"{{ENC}}", "{{VRPENC}}"} {
		for strings.Contains(s, ph) {
			n++
			// differs on every read, as the device's re-encryption does,
			// but is the same for the same read: golden files stay stable
			salt := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", d.Model, read, n))
			v := fmt.Sprintf("CANARY%sEnc%04d%s", strings.SplitN(d.Model, "-", 2)[0], n, hex.EncodeToString(salt[:6]))
			if ph == "{{VRPENC}}" {
				v = "%^%#" + v + "%^%#"
			}
			s = strings.Replace(s, ph, v, 1)
		}
	}
	return s
}

func (d *Device) serve(cfg *ssh.ServerConfig) {
	for {
		nc, err := d.ln.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		d.conns = append(d.conns, nc)
		d.accepted++
		busy := d.accepted <= d.Faults.Busy
		d.mu.Unlock()
		if busy {
			nc.Close()
			continue
		}
		if d.Faults.NoBanner {
			continue // hold the socket, say nothing
		}
		go d.handle(nc, cfg)
	}
}

func (d *Device) handle(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go d.session(nc, ch, creqs, sc.Permissions.Extensions["user"])
	}
}

func (d *Device) session(nc net.Conn, ch ssh.Channel, reqs <-chan *ssh.Request, user string) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "pty-req", "env", "window-change":
			_ = req.Reply(true, nil)
		case "shell":
			_ = req.Reply(true, nil)
			go func() {
				d.shell(nc, ch, user)
				ch.Close()
			}()
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			go func() {
				status := d.exec(nc, ch, p.Command, user)
				if status >= 0 {
					_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
				}
				ch.Close()
			}()
		default:
			_ = req.Reply(false, nil)
		}
	}
}

// out writes as the device does: in pieces when Split is set.
type out struct {
	w     io.Writer
	split bool
}

func (o out) write(s string) error {
	if !o.split {
		_, err := io.WriteString(o.w, s)
		return err
	}
	for len(s) > 0 {
		n := min(len(s), 5)
		if _, err := io.WriteString(o.w, s[:n]); err != nil {
			return err
		}
		s = s[n:]
	}
	return nil
}

// writeConfig sends the config applying HangAfter and CutAfter; it
// returns false when the fault ended the session.
func (d *Device) writeConfig(nc net.Conn, o out, cfg string) bool {
	if n := d.Faults.HangAfter; n > 0 && n < len(cfg) {
		_ = o.write(cfg[:n])
		<-d.closed
		return false
	}
	if n := d.Faults.CutAfter; n > 0 && n < len(cfg) {
		_ = o.write(cfg[:n])
		nc.Close()
		return false
	}
	return o.write(cfg) == nil
}

// exec runs one command on an exec channel (Junos, RouterOS) and returns
// its exit status, or -1 when a fault ended the session without one.
func (d *Device) exec(nc net.Conn, ch ssh.Channel, cmd, user string) int {
	dl := d.dialect
	o := out{w: ch, split: d.Faults.Split}
	if cmd != dl.show {
		_ = o.write(dl.errorText(cmd))
		return 1
	}
	cfg := d.running()
	if d.Model == "routeros" {
		if _, flags, _ := strings.Cut(user, "+"); !strings.Contains(flags, "c") {
			cfg = colourize(cfg)
		}
	}
	if !d.writeConfig(nc, o, toCRLF(cfg, dl.crlf)) {
		return -1
	}
	return 0
}

// colourize adds the ANSI colours RouterOS uses in a terminal-detected
// session without the "c" login flag.
func colourize(cfg string) string {
	var b strings.Builder
	for line := range strings.Lines(cfg) {
		switch {
		case strings.HasPrefix(line, "#"):
			b.WriteString("\x1b[m\x1b[36m" + strings.TrimRight(line, "\n") + "\x1b[m\n")
		case strings.HasPrefix(line, "/"):
			b.WriteString("\x1b[m\x1b[35m" + strings.TrimRight(line, "\n") + "\x1b[m\n")
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}

func toCRLF(s string, crlf string) string {
	if crlf == "" || crlf == "\n" {
		return s
	}
	return strings.ReplaceAll(s, "\n", crlf)
}
