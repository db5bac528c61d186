package device

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
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
	// together (default 15s); a device that closes at once is dialed
	// again after 0.5s and 2s, each try bounded alike.
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
	// SaveErr is why a save asked for failed (refused, no success word,
	// or the startup config still differing afterwards). The running
	// config was still read: a failed save does not cost the backup.
	SaveErr  error
	Warnings []string
}
