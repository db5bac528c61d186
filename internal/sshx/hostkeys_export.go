package sshx

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeys checks one endpoint's host key against known_hosts exactly as
// Dial does for hosts (same refusals, fingerprints, hints and accept-new
// rule). It is for callers that run their own handshake: network devices,
// whose CLIs need password or keyboard-interactive logins and, for old
// gear, legacy algorithms that Dial never offers.
type HostKeys struct {
	v *verifier
}

// NewHostKeys prepares the check for label at host:port. knownHosts are
// the files to read (the first is the one acceptNew appends to); empty
// means ~/.ssh/known_hosts.
func NewHostKeys(label, host string, port int, knownHosts []string, acceptNew bool) (*HostKeys, error) {
	h := hop{label: label, alias: host, hostname: host, port: port}
	for _, f := range knownHosts {
		h.knownHosts = append(h.knownHosts, expandHome(f))
	}
	if len(h.knownHosts) == 0 {
		h.knownHosts = []string{expandHome("~/.ssh/known_hosts")}
	}
	v, err := newVerifier(h, Options{AcceptNew: acceptNew})
	if err != nil {
		return nil, &Error{Host: label, Addr: h.addr(), Kind: KindConfig, Err: err}
	}
	return &HostKeys{v: v}, nil
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// Callback is the ssh.HostKeyCallback to put in the ClientConfig.
func (k *HostKeys) Callback() ssh.HostKeyCallback { return k.v.check }

// Algorithms returns the host key algorithms to offer: those of the key
// types known_hosts holds for the endpoint (OpenSSH's order when it holds
// none). With legacy set, plain ssh-rsa (SHA-1 signatures, the only kind
// old device firmware makes) is added after the SHA-2 ones when
// known_hosts holds an RSA key for it or holds nothing yet. ssh-dss is not
// offered: x/crypto no longer supports DSA.
func (k *HostKeys) Algorithms(legacy bool) []string {
	algs := slices.Clone(k.v.algorithms())
	if !legacy {
		return algs
	}
	known := k.v.known()
	rsaKnown := slices.ContainsFunc(known, func(kk knownhosts.KnownKey) bool { return kk.Key.Type() == ssh.KeyAlgoRSA })
	if len(known) == 0 || rsaKnown {
		algs = append(algs, ssh.KeyAlgoRSA)
	}
	return algs
}

// Refused returns the error the callback recorded when it refused the
// endpoint's key (unknown, changed, revoked), with the endpoint's label
// and address filled in; nil if it refused nothing.
func (k *HostKeys) Refused() *Error {
	if k.v.refused == nil {
		return nil
	}
	e := *k.v.refused
	e.Host, e.Addr = k.v.h.label, k.v.h.addr()
	return &e
}

// Addr is host:port as checked against known_hosts.
func (k *HostKeys) Addr() string { return k.v.h.addr() }
