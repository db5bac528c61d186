package sshx

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// probeKey is a key no known_hosts file holds; checking it against a host
// makes knownhosts list every key it does hold for that host.
var probeKey = func() ssh.PublicKey {
	k, err := ssh.NewPublicKey(ed25519.PublicKey(bytes.Repeat([]byte{0x5a}, ed25519.PublicKeySize)))
	if err != nil {
		panic(err)
	}
	return k
}()

// knownHostsMu serializes appends to known_hosts files within the process
// (hosts are dialed in parallel).
var knownHostsMu sync.Mutex

// verifier checks one hop's host key against known_hosts.
type verifier struct {
	h         hop
	acceptNew bool
	hash      bool
	cb        ssh.HostKeyCallback
	refused   *Error // set when the callback refused the key
	onAccept  func(line string)
}

func newVerifier(h hop, opts Options) (*verifier, error) {
	var files []string
	for _, f := range h.knownHosts {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	return &verifier{h: h, acceptNew: opts.AcceptNew, hash: opts.HashKnownHosts, cb: cb}, nil
}

// known returns the keys known_hosts holds for the hop.
func (v *verifier) known() []knownhosts.KnownKey {
	err := v.cb(v.h.addr(), fakeAddr(v.h.addr()), probeKey)
	var ke *knownhosts.KeyError
	if errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}

// defaultAlgorithms is the order offered to a host known_hosts has no key
// for, OpenSSH's: ed25519 first, so the line to add is the usual one.
var defaultAlgorithms = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

// algorithms returns the host key algorithms to offer: only those of the
// key types known_hosts holds for this host. Otherwise the server may
// pick a type we hold no key for and x/crypto reports a mismatch for a
// host whose key never changed.
func (v *verifier) algorithms() []string {
	var algs []string
	seen := map[string]bool{}
	for _, k := range v.known() {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algs = append(algs, a)
			}
		}
	}
	if len(algs) == 0 {
		return defaultAlgorithms
	}
	return algs
}

func algorithmsFor(keyType string) []string {
	switch keyType {
	case ssh.KeyAlgoRSA:
		// The key type is ssh-rsa; the signature algorithms are these.
		// Plain ssh-rsa (SHA-1) is left out on purpose.
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	default:
		return []string{keyType}
	}
}

func fakeAddr(hostport string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil || a.IP == nil {
		return &net.TCPAddr{IP: net.IPv4zero}
	}
	return a
}

// Fingerprint renders a key the way ssh-keygen -l does: "ED25519 SHA256:…".
func Fingerprint(k ssh.PublicKey) string {
	t := strings.TrimPrefix(k.Type(), "ssh-")
	switch {
	case strings.HasPrefix(t, "ecdsa"):
		t = "ECDSA"
	default:
		t = strings.ToUpper(t)
	}
	return t + " " + ssh.FingerprintSHA256(k)
}

// check is the ssh.HostKeyCallback. hostname is the address we dialed.
func (v *verifier) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := v.cb(v.h.addr(), remote, key)
	if err == nil {
		return nil
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(v.h.addr())}, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		v.refused = &Error{Kind: KindHostKeyRevoked, Offered: Fingerprint(key),
			Err:  fmt.Errorf("host key %s is marked @revoked in %s:%d; refusing to connect", Fingerprint(key), tildePath(re.Revoked.Filename), re.Revoked.Line),
			Hint: "someone revoked this key on purpose; find out why before connecting"}
	case errors.As(err, &ke) && len(ke.Want) == 0:
		if v.acceptNew {
			if err := v.appendKey(key); err != nil {
				v.refused = &Error{Kind: KindHostKeyUnknown, Offered: Fingerprint(key), Line: line,
					Err: fmt.Errorf("host key unknown (%s) and could not be added: %w", Fingerprint(key), err)}
				return v.refused
			}
			if v.onAccept != nil {
				v.onAccept(line)
			}
			return nil
		}
		v.refused = &Error{Kind: KindHostKeyUnknown, Offered: Fingerprint(key), Line: line,
			Err: fmt.Errorf("host key unknown: the host offers %s, and %s has no key for %s",
				Fingerprint(key), tildePath(v.knownHostsFile()), knownhosts.Normalize(v.h.addr())),
			Hint: fmt.Sprintf("if that fingerprint is right (check it on the console: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), add this line to %s, or rerun accepting new host keys: %s",
				tildePath(v.knownHostsFile()), line)}
	case errors.As(err, &ke):
		var known []string
		for _, k := range ke.Want {
			known = append(known, fmt.Sprintf("%s:%d: %s", tildePath(k.Filename), k.Line, Fingerprint(k.Key)))
		}
		v.refused = &Error{Kind: KindHostKeyChanged, Offered: Fingerprint(key), Known: known,
			Err: fmt.Errorf("HOST KEY CHANGED, possible man-in-the-middle: known_hosts has %s, the host now offers %s; refusing to connect",
				strings.Join(known, ", "), Fingerprint(key)),
			Hint: fmt.Sprintf("if the host was reinstalled, confirm the new fingerprint on its console, then remove the old entry (ssh-keygen -f %s -R '%s') and connect again; holiday never replaces a changed key itself",
				tildePath(ke.Want[0].Filename), knownhosts.Normalize(v.h.addr()))}
	default:
		v.refused = &Error{Kind: KindHandshake, Err: fmt.Errorf("host key check: %w", err)}
	}
	return v.refused
}

func (v *verifier) knownHostsFile() string {
	if len(v.h.knownHosts) == 0 {
		return "~/.ssh/known_hosts"
	}
	return v.h.knownHosts[0]
}

// appendKey adds key for the hop to the first known_hosts file.
func (v *verifier) appendKey(key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	file := v.knownHostsFile()
	// Another dial may have added it meanwhile; re-read before writing.
	if cb, err := knownhosts.New(existing(v.h.knownHosts)...); err == nil {
		if err := cb(v.h.addr(), fakeAddr(v.h.addr()), key); err == nil {
			return nil
		} else if ke := (*knownhosts.KeyError)(nil); errors.As(err, &ke) && len(ke.Want) > 0 {
			return fmt.Errorf("%s now holds a different key for the host", tildePath(file))
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	var prefix string
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			prefix = "\n"
		}
	}
	host := knownhosts.Normalize(v.h.addr())
	if v.hash {
		host = knownhosts.HashHostname(host)
	}
	line := host + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if _, err := f.WriteString(prefix + line + "\n"); err != nil {
		return err
	}
	return f.Sync()
}

func existing(files []string) []string {
	var out []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
	}
	return out
}
