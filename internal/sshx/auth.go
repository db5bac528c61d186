package sshx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth is the set of keys offered to one hop, and what to say when the
// server refuses all of them.
type auth struct {
	signers   []ssh.Signer
	tried     []string // "key ~/.ssh/id_ed25519", "ssh-agent (2 keys)"
	protected []string // passphrase-protected files not available via the agent
	close     func()
}

func (a *auth) describe(user string) string {
	s := fmt.Sprintf("permission denied for user %s", user)
	if len(a.tried) == 0 {
		s += " (no keys to offer)"
	} else {
		s += " (tried " + strings.Join(a.tried, ", ") + ")"
	}
	return s
}

func (a *auth) hint() string {
	if len(a.protected) > 0 {
		return fmt.Sprintf("%s is passphrase-protected; load it into ssh-agent (ssh-add %s) so holiday can use it",
			strings.Join(a.protected, ", "), a.protected[0])
	}
	return "check that the public key is in the user's ~/.ssh/authorized_keys on the host"
}

// newAuth loads the hop's identity files and connects to ssh-agent.
// Secrets are never logged; only paths and fingerprints are.
func newAuth(ctx context.Context, h hop, opts Options, log *slog.Logger) (*auth, error) {
	a := &auth{close: func() {}}
	seen := map[string]bool{}
	var agentKeys map[string]bool
	var agentSigners []ssh.Signer

	if !opts.NoAgent {
		sock := opts.AgentSocket
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock != "" {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", sock)
			if err != nil {
				log.Warn("ssh-agent not reachable; using key files only", "socket", sock, "err", err)
			} else {
				a.close = func() { conn.Close() }
				ag := agent.NewClient(conn)
				ss, err := ag.Signers()
				if err != nil {
					log.Warn("ssh-agent: listing keys failed", "err", err)
				}
				agentKeys = map[string]bool{}
				for _, s := range ss {
					agentKeys[string(s.PublicKey().Marshal())] = true
				}
				agentSigners = ss
			}
		}
	}

	for _, path := range h.identities {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && !h.explicit[path] {
			continue
		}
		if err != nil {
			a.close()
			return nil, fmt.Errorf("identity file %s: %w", tildePath(path), err)
		}
		signer, err := ssh.ParsePrivateKey(data)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			pub := pm.PublicKey
			if pub == nil {
				pub = loadPub(path)
			}
			if pub != nil && agentKeys[string(pub.Marshal())] {
				continue // the agent holds it and will offer it
			}
			a.protected = append(a.protected, tildePath(path))
			a.tried = append(a.tried, "key "+tildePath(path)+" (passphrase-protected, skipped)")
			continue
		}
		if err != nil {
			a.close()
			return nil, fmt.Errorf("identity file %s: %w", tildePath(path), err)
		}
		k := string(signer.PublicKey().Marshal())
		if seen[k] {
			continue
		}
		seen[k] = true
		a.signers = append(a.signers, signer)
		a.tried = append(a.tried, "key "+tildePath(path))
	}
	n := 0
	for _, s := range agentSigners {
		k := string(s.PublicKey().Marshal())
		if seen[k] {
			continue
		}
		seen[k] = true
		a.signers = append(a.signers, s)
		n++
	}
	if n > 0 {
		a.tried = append(a.tried, fmt.Sprintf("ssh-agent (%d keys)", n))
	}
	if len(a.signers) == 0 {
		a.close()
		e := &Error{Kind: KindAuth, Err: fmt.Errorf("no usable key for user %s: %s", h.user, strings.Join(a.tried, ", "))}
		if len(a.tried) == 0 {
			e.Err = fmt.Errorf("no usable key for user %s: no identity file found and no ssh-agent", h.user)
			e.Hint = "name a key (ssh.identity in the plan, IdentityFile in ~/.ssh/config) or start ssh-agent"
		} else {
			e.Hint = a.hint()
		}
		return nil, e
	}
	return a, nil
}

func loadPub(path string) ssh.PublicKey {
	data, err := os.ReadFile(path + ".pub")
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return k
}
