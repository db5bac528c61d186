// Package sshdtest starts real OpenSSH servers for tests: /usr/sbin/sshd on
// loopback (or inside a network namespace) with temporary host keys and
// authorized_keys, plus helpers for test users, keys and namespaces.
//
// Tests that need it call Require, which skips with the reason when sshd
// or root is missing — and fails instead when CI=true, because a skipped
// transport test in CI is a test that never ran (internal/testenv).
//
// It is test support only and imports nothing of holiday's but
// internal/testenv.
package sshdtest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/holiday-ops/holiday/internal/testenv"
)

const sshdPath = "/usr/sbin/sshd"

// Require skips the test (or fails it under CI=true) unless the process is
// root and sshd is installed.
func Require(t testing.TB) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "needs root to run sshd and create users"
	} else if _, err := os.Stat(sshdPath); err != nil {
		why = "needs " + sshdPath + " (apt-get install openssh-server)"
	}
	if why != "" {
		testenv.Skip(t, why)
	}
}

// Config describes one sshd instance.
type Config struct {
	// HostKeyTypes are generated in this order: "ed25519", "rsa",
	// "ecdsa". Default: ed25519.
	HostKeyTypes []string
	// HostKeyAlgorithms, if set, is sshd's HostKeyAlgorithms line: the
	// server's preference order.
	HostKeyAlgorithms string
	// NetNS runs sshd inside that network namespace.
	NetNS string
	// Listen is the address to listen on; default 127.0.0.1.
	Listen string
	// Extra lines appended to sshd_config.
	Extra []string
}

// Server is a running sshd.
type Server struct {
	Host     string // listen address
	Port     int
	Dir      string                   // world-readable dir with config and authorized_keys
	HostKeys map[string]ssh.PublicKey // by type: "ed25519", "rsa", …
	cmd      *exec.Cmd
	log      *syncBuffer
	mu       sync.Mutex
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Start starts sshd and stops it when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	Require(t)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "holiday-sshd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Users other than root read their authorized_keys from here.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "authorized_keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if len(cfg.HostKeyTypes) == 0 {
		cfg.HostKeyTypes = []string{"ed25519"}
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1"
	}
	s := &Server{Host: cfg.Listen, Dir: dir, HostKeys: map[string]ssh.PublicKey{}, log: &syncBuffer{}}
	var conf strings.Builder
	for _, typ := range cfg.HostKeyTypes {
		path := filepath.Join(dir, "ssh_host_"+typ+"_key")
		args := []string{"-q", "-t", typ, "-N", "", "-f", path}
		if typ == "rsa" {
			args = append(args, "-b", "2048")
		}
		if out, err := exec.Command("ssh-keygen", args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %s: %v: %s", typ, err, out)
		}
		pub, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		s.HostKeys[typ] = k
		fmt.Fprintf(&conf, "HostKey %s\n", path)
	}
	s.Port = freePort(t, cfg.NetNS, cfg.Listen)
	fmt.Fprintf(&conf, `ListenAddress %s
Port %d
PidFile none
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AuthorizedKeysFile %s/authorized_keys/%%u
AllowTcpForwarding yes
LogLevel VERBOSE
Subsystem sftp internal-sftp
`, net.JoinHostPort(cfg.Listen, strconv.Itoa(s.Port)), s.Port, dir)
	if cfg.HostKeyAlgorithms != "" {
		fmt.Fprintf(&conf, "HostKeyAlgorithms %s\n", cfg.HostKeyAlgorithms)
	}
	for _, l := range cfg.Extra {
		conf.WriteString(l + "\n")
	}
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{sshdPath, "-D", "-e", "-f", confPath}
	if cfg.NetNS != "" {
		argv = append([]string{"ip", "netns", "exec", cfg.NetNS}, argv...)
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd %s log:\n%s", s.Addr(), s.log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("sshd exited at start:\n%s", s.log.String())
		default:
		}
		if s.ready(cfg.NetNS) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd on %s not ready after 10s:\n%s", s.Addr(), s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready reports whether sshd answers with its banner.
func (s *Server) ready(netns string) bool {
	if netns != "" {
		// Probe from inside the namespace.
		out, err := exec.Command("ip", "netns", "exec", netns, "sh", "-c",
			fmt.Sprintf("exec 3<>/dev/tcp/%s/%d 2>/dev/null && head -c 4 <&3", s.Host, s.Port)).Output()
		if err == nil && string(out) == "SSH-" {
			return true
		}
		// /dev/tcp is a bash-ism; fall back to the log line.
		return strings.Contains(s.log.String(), "Server listening on")
	}
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-")
}

// Log returns what sshd logged so far.
func (s *Server) Log() string { return s.log.String() }

// Authorize lets key log in as user.
func (s *Server) Authorize(t testing.TB, user string, key ssh.PublicKey) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.Dir, "authorized_keys", user), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(key)); err != nil {
		t.Fatal(err)
	}
}

// KnownHostsLine is the known_hosts line for the server's key of typ.
func (s *Server) KnownHostsLine(typ string) string {
	host := s.Host
	if s.Port != 22 {
		host = fmt.Sprintf("[%s]:%d", s.Host, s.Port)
	}
	return host + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKeys[typ])))
}

// Key is a client key pair written to a file in OpenSSH format.
type Key struct {
	Path   string
	Signer ssh.Signer
	Public ssh.PublicKey
}

// NewKey writes a fresh ed25519 private key into dir (0600). A non-empty
// passphrase encrypts it.
func NewKey(t testing.TB, dir, name, passphrase string) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blk *pem.Block
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(priv, "holiday test")
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "holiday test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	return Key{Path: path, Signer: signer, Public: signer.PublicKey()}
}

// WriteKnownHosts writes lines to a fresh known_hosts file in dir.
func WriteKnownHosts(t testing.TB, dir string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// AddUser creates a local user with a usable (key-only) account and, if
// sudo, a NOPASSWD rule in /etc/sudoers.d leaving sudo's defaults
// (env_reset) alone. Both are removed when the test ends.
func AddUser(t testing.TB, name string, sudo bool) {
	t.Helper()
	Require(t)
	exec.Command("userdel", "-r", name).Run() // leftovers of an interrupted run
	if out, err := exec.Command("useradd", "-m", "-s", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	// "!" (locked) would make sshd refuse even key logins without PAM.
	if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, out)
	}
	rule := "/etc/sudoers.d/holiday-test-" + name
	t.Cleanup(func() {
		os.Remove(rule)
		exec.Command("userdel", "-r", name).Run()
	})
	if !sudo {
		return
	}
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Fatalf("sudo is not installed (apt-get install sudo)")
	}
	body := name + " ALL=(ALL) NOPASSWD: ALL\n"
	if err := os.WriteFile(rule, []byte(body), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-cf", rule).CombinedOutput(); err != nil {
		t.Fatalf("visudo: %v: %s", err, out)
	}
}

// NetNS creates a network namespace, removed when the test ends.
func NetNS(t testing.TB, name string) {
	t.Helper()
	Require(t)
	exec.Command("ip", "netns", "del", name).Run()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// Link connects namespaces a and b ("" is the test's own) with a veth
// pair, addresses given in CIDR form.
func Link(t testing.TB, a, aName, aCIDR, b, bName, bCIDR string) {
	t.Helper()
	exec.Command("ip", "link", "del", aName).Run()
	run(t, "ip", "link", "add", aName, "type", "veth", "peer", "name", bName)
	t.Cleanup(func() { exec.Command("ip", "link", "del", aName).Run() })
	for _, e := range []struct{ ns, dev, cidr string }{{a, aName, aCIDR}, {b, bName, bCIDR}} {
		if e.ns != "" {
			// The peer may already have moved with its namespace.
			run(t, "ip", "link", "set", e.dev, "netns", e.ns)
		}
		ip := []string{"ip"}
		if e.ns != "" {
			ip = append(ip, "-n", e.ns)
		}
		run(t, append(ip, "addr", "add", e.cidr, "dev", e.dev)...)
		run(t, append(ip, "link", "set", e.dev, "up")...)
	}
}

func run(t testing.TB, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

func freePort(t testing.TB, netns, host string) int {
	t.Helper()
	if netns != "" {
		// Nothing else listens in a test's own namespace.
		var b [2]byte
		rand.Read(b[:])
		return 20000 + (int(b[0])<<8|int(b[1]))%40000
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
