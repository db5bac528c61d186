package sshx

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Target names one host to reach. Fields left empty come from the
// ~/.ssh/config entry for Host, then from OpenSSH's defaults; fields set
// here win over the config file, as ssh's command-line flags do.
type Target struct {
	Name string // label in messages and logs ("web1"); defaults to Host
	Host string // address or ~/.ssh/config alias
	Port int    // 0: from ssh config, else 22
	User string // "": from ssh config, else the local user
	// Jump is a ProxyJump spec, "[user@]host[:port][,…]", each hop
	// itself resolved through ~/.ssh/config. "" takes the config's
	// ProxyJump; "none" means direct even if the config names a jump.
	Jump string
}

// Label returns the name used in messages.
func (t Target) Label() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Host
}

// Options says how to connect. The zero value is usable: ~/.ssh/config,
// ~/.ssh/known_hosts, the default identity files and $SSH_AUTH_SOCK.
type Options struct {
	Logger *slog.Logger // nil: discard

	// KnownHosts are the known_hosts files; the first is the one
	// AcceptNew writes to. Empty: the config's UserKnownHostsFile, else
	// ~/.ssh/known_hosts.
	KnownHosts []string
	// AcceptNew appends the key of a host known_hosts has no key for
	// (OpenSSH's StrictHostKeyChecking=accept-new). A changed key is
	// refused regardless.
	AcceptNew bool
	// HashKnownHosts writes accepted entries hashed (|1|salt|hash).
	HashKnownHosts bool

	// IdentityFiles are tried first, then the config's IdentityFile
	// entries; if both are empty, ~/.ssh/id_ed25519, id_ecdsa, id_rsa.
	IdentityFiles []string
	NoAgent       bool   // do not use ssh-agent even if SSH_AUTH_SOCK is set
	AgentSocket   string // "": $SSH_AUTH_SOCK

	// ConfigFile is the ssh client config to read; "": ~/.ssh/config
	// (if it exists); "none": no config file.
	ConfigFile string

	// ConnectTimeout bounds the TCP connect and the SSH handshake of
	// each hop (default 15s), each try of it: a hop whose server closes
	// during the handshake is dialed up to three more times, after
	// about 0.25s, 1s and 2s. ctx bounds the whole dial as well.
	ConnectTimeout time.Duration
	// KeepaliveInterval is how often keepalive@openssh.com is sent
	// (default 15s; negative disables); after KeepaliveMax unanswered
	// ones (default 3) the connection is dropped.
	KeepaliveInterval time.Duration
	KeepaliveMax      int
	// MaxSessions bounds the sessions open at once on one connection
	// (default 10, OpenSSH's MaxSessions default). Callers beyond the
	// limit wait for a free slot.
	MaxSessions int
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) connectTimeout() time.Duration {
	if o.ConnectTimeout <= 0 {
		return 15 * time.Second
	}
	return o.ConnectTimeout
}

func (o Options) maxSessions() int {
	if o.MaxSessions <= 0 {
		return 10
	}
	return o.MaxSessions
}

// hop is one resolved SSH endpoint: the target itself or a jump host.
type hop struct {
	label      string // for messages
	alias      string // what was asked for, the ssh config key
	hostname   string // what is dialed
	port       int
	user       string
	identities []string // candidate files; explicit ones must exist
	explicit   map[string]bool
	knownHosts []string
}

func (h hop) addr() string { return net.JoinHostPort(h.hostname, strconv.Itoa(h.port)) }

// describe names a hop in messages: "bastion (10.0.0.5:22)", or just the
// address when it has no other name.
func (h hop) describe() string {
	if h.label == h.hostname {
		return h.addr()
	}
	return fmt.Sprintf("%s (%s)", h.label, h.addr())
}

// resolved is a target with its jump chain, outermost hop first.
type resolved struct {
	target hop
	jumps  []hop
}

// sshConfig wraps the parsed config file; nil means none.
type sshConfig struct{ c *ssh_config.Config }

func loadSSHConfig(path string) (*sshConfig, error) {
	if path == "none" {
		return &sshConfig{}, nil
	}
	explicit := path != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return &sshConfig{}, nil
		}
		path = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return &sshConfig{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	c, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return &sshConfig{c: c}, nil
}

func (s *sshConfig) get(alias, key string) string {
	if s == nil || s.c == nil {
		return ""
	}
	v, err := s.c.Get(alias, key)
	if err != nil {
		return ""
	}
	return v
}

func (s *sshConfig) getAll(alias, key string) []string {
	if s == nil || s.c == nil {
		return nil
	}
	v, err := s.c.GetAll(alias, key)
	if err != nil {
		return nil
	}
	return v
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// resolveHop fills in one endpoint from explicit values, then the ssh
// config entry for alias, then defaults.
func resolveHop(cfg *sshConfig, label, alias, usr string, port int, opts Options) (hop, error) {
	h := hop{label: label, alias: alias, user: usr, port: port, explicit: map[string]bool{}}
	h.hostname = alias
	if v := cfg.get(alias, "HostName"); v != "" {
		h.hostname = strings.ReplaceAll(v, "%h", alias)
	}
	if h.port == 0 {
		if v := cfg.get(alias, "Port"); v != "" {
			p, err := strconv.Atoi(v)
			if err != nil || p <= 0 || p > 65535 {
				return h, fmt.Errorf("ssh config: host %s: bad Port %q", alias, v)
			}
			h.port = p
		} else {
			h.port = 22
		}
	}
	if h.user == "" {
		h.user = cfg.get(alias, "User")
	}
	if h.user == "" {
		h.user = localUser()
	}
	seen := map[string]bool{}
	add := func(p string, explicit bool) {
		p = expandPath(p, h)
		if !seen[p] {
			seen[p] = true
			h.identities = append(h.identities, p)
			if explicit {
				h.explicit[p] = true
			}
		}
	}
	for _, p := range opts.IdentityFiles {
		add(p, true)
	}
	for _, p := range cfg.getAll(alias, "IdentityFile") {
		add(p, true)
	}
	if len(h.identities) == 0 {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			add("~/.ssh/"+n, false)
		}
	}
	if len(opts.KnownHosts) > 0 {
		for _, p := range opts.KnownHosts {
			h.knownHosts = append(h.knownHosts, expandPath(p, h))
		}
	} else if v := cfg.get(alias, "UserKnownHostsFile"); v != "" {
		for _, p := range strings.Fields(v) {
			h.knownHosts = append(h.knownHosts, expandPath(p, h))
		}
	} else {
		h.knownHosts = []string{expandPath("~/.ssh/known_hosts", h)}
	}
	return h, nil
}

// resolve applies ssh config and defaults to t and its jump chain.
func resolve(t Target, opts Options) (resolved, error) {
	var r resolved
	if t.Host == "" {
		return r, errors.New("no host given")
	}
	cfg, err := loadSSHConfig(opts.ConfigFile)
	if err != nil {
		return r, err
	}
	r.target, err = resolveHop(cfg, t.Label(), t.Host, t.User, t.Port, opts)
	if err != nil {
		return r, err
	}
	jump := t.Jump
	if jump == "" {
		jump = cfg.get(t.Host, "ProxyJump")
	}
	if jump == "" || jump == "none" {
		return r, nil
	}
	for _, spec := range strings.Split(jump, ",") {
		spec = strings.TrimSpace(spec)
		spec = strings.TrimPrefix(spec, "ssh://")
		var usr string
		if i := strings.LastIndex(spec, "@"); i >= 0 {
			usr, spec = spec[:i], spec[i+1:]
		}
		host, port := spec, 0
		if h, p, err := net.SplitHostPort(spec); err == nil {
			host = h
			port, err = strconv.Atoi(p)
			if err != nil {
				return r, fmt.Errorf("jump host %q: bad port", spec)
			}
		}
		if host == "" {
			return r, fmt.Errorf("jump host spec %q has no host", jump)
		}
		j, err := resolveHop(cfg, host, host, usr, port, opts)
		if err != nil {
			return r, err
		}
		r.jumps = append(r.jumps, j)
	}
	return r, nil
}

// expandPath expands ~ and the ssh_config tokens %d %u %h %r %p %%.
func expandPath(p string, h hop) string {
	home, _ := os.UserHomeDir()
	if p == "~" {
		p = home
	} else if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = filepath.Join(home, rest)
	}
	if strings.Contains(p, "%") {
		r := strings.NewReplacer("%%", "%", "%d", home, "%u", localUser(), "%h", h.hostname,
			"%r", h.user, "%p", strconv.Itoa(h.port))
		p = r.Replace(p)
	}
	return p
}
