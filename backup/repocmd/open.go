// Package repocmd is what the `holiday repo` subcommands do, below their
// flags: find the repository and its password from flags and the
// environment (with the operator-facing errors and hints), open and lock
// it, run one operation, and print the result as text or JSON, with
// progress on stderr.
//
// cmd/holiday/repo_*.go only declare flags and call one function here.
// The printers (render.go) are separate from the operations so that they
// can be golden-tested without a repository.
//
// It must never import anything of holiday's above backup; it may import
// backup/... and internal/....
package repocmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

// Env is what every `holiday repo` subcommand shares: the persistent
// flags and where input and output go.
type Env struct {
	Repo         string // --repo; "" means $HOLIDAY_REPOSITORY
	PasswordFile string // --password-file; "" means $HOLIDAY_PASSWORD_FILE, then $HOLIDAY_PASSWORD
	// PasswordEnv names a variable holding the password (a plan's
	// repository.password_env); it wins over the defaults above.
	PasswordEnv string
	// S3 says how to reach an s3: repository: credential sources,
	// region, addressing (a plan's repository.s3). The endpoint, bucket
	// and prefix always come from the location.
	S3 s3be.Config
	// Where is how the operator named the repository, for hints: "--repo"
	// when empty, or e.g. "the plan's repository.url".
	Where string
	// Node names this control node in the lock files it writes; ""
	// means $HOLIDAY_HOSTNAME, else the machine's hostname
	// (repo.Repository.SetLockHost).
	Node  string
	JSON  bool // machine-readable output on Stdout
	Quiet bool // no progress on Stderr

	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// progress reports whether progress lines should go to Stderr.
func (e *Env) progress() bool { return !e.Quiet && !e.JSON }

// Location returns the repository from --repo or $HOLIDAY_REPOSITORY: a
// directory (without a "local:" prefix) or s3:http(s)://host/bucket/prefix.
func (e *Env) Location() (string, error) {
	loc := e.Repo
	if loc == "" {
		loc = os.Getenv("HOLIDAY_REPOSITORY")
	}
	if loc == "" {
		return "", exitcode.WithHint(exitcode.Usage, errors.New("no repository given"), "pass --repo DIR (or s3:https://host/bucket/prefix) or set HOLIDAY_REPOSITORY")
	}
	return strings.TrimPrefix(loc, "local:"), nil
}

// ReadPasswordFile returns the file's content without the trailing
// newline; a file that cannot be read is a usage error.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", exitcode.With(exitcode.Usage, fmt.Errorf("password file: %w", err))
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Password returns the repository password from PasswordEnv (when set
// and no --password-file is), --password-file, $HOLIDAY_PASSWORD_FILE or
// $HOLIDAY_PASSWORD, in that order.
func (e *Env) Password() (string, error) {
	if e.PasswordEnv != "" && e.PasswordFile == "" {
		if pw := os.Getenv(e.PasswordEnv); pw != "" {
			return pw, nil
		}
		return "", exitcode.WithHint(exitcode.Usage, fmt.Errorf("no repository password: $%s is unset or empty", e.PasswordEnv),
			"export it, as the plan's repository.password_env says")
	}
	file := e.PasswordFile
	if file == "" {
		file = os.Getenv("HOLIDAY_PASSWORD_FILE")
	}
	if file != "" {
		return ReadPasswordFile(file)
	}
	// an empty password is never valid (init refuses one), so an empty
	// variable counts as unset
	if pw := os.Getenv("HOLIDAY_PASSWORD"); pw != "" {
		return pw, nil
	}
	return "", exitcode.WithHint(exitcode.Usage, errors.New("no repository password given"),
		"pass --password-file FILE, or set HOLIDAY_PASSWORD_FILE or HOLIDAY_PASSWORD")
}

// Lock modes for Open.
const (
	NoLock        = ""
	SharedLock    = "shared"
	ExclusiveLock = "exclusive"
	// SharedLockAsync is a shared lock confirmed (the second check for
	// conflicting locks) while the command works: before any index or
	// snapshot is written, and before a reader reports what it read it
	// calls Repository.LockValid (repo.LockSharedAsync)
	SharedLockAsync = "shared-async"
)

// Open opens the repository with the operator-facing errors and hints
// (wrong password, no repository there, none given) and takes the lock
// asked for. The returned release removes the lock; call it when done.
func (e *Env) Open(ctx context.Context, lock string) (*repo.Repository, func(), error) {
	finish, err := e.OpenLater(ctx, lock)
	if err != nil {
		return nil, nil, err
	}
	return finish()
}

// OpenLater is Open in two halves: what is quick to check (the location,
// the password, the backend) now, and the rest — reading the config, the
// key derivation (scrypt, ~0.5 s by design), the lock — when finish is
// called, which a run does in the background while it connects to its
// hosts.
func (e *Env) OpenLater(ctx context.Context, lock string) (finish func() (*repo.Repository, func(), error), err error) {
	loc, err := e.Location()
	if err != nil {
		return nil, err
	}
	pw, err := e.Password()
	if err != nil {
		return nil, err
	}
	be, err := e.openBackend(ctx, loc, false)
	if err != nil {
		return nil, err
	}
	return func() (*repo.Repository, func(), error) {
		r, err := repo.Open(ctx, be, pw)
		switch {
		case errors.Is(err, repo.ErrWrongPassword):
			return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("open repository %s: %w", loc, err), "check the password file or HOLIDAY_PASSWORD")
		case errors.Is(err, repo.ErrNoRepository):
			return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("open repository %s: %w", loc, err), "`holiday repo init` creates a repository")
		case err != nil:
			return nil, nil, fmt.Errorf("open repository %s: %w", loc, err)
		}
		r.SetLockHost(e.node())
		release := func() {}
		if lock != NoLock {
			var h *repo.Held
			if lock == SharedLockAsync {
				h, err = r.LockSharedAsync(ctx)
			} else {
				h, err = r.Lock(ctx, lock == ExclusiveLock)
			}
			if err != nil {
				return nil, nil, err
			}
			release = func() { _ = h.Unlock(context.WithoutCancel(ctx)) }
		}
		return r, release, nil
	}, nil
}

// node is Node, else $HOLIDAY_HOSTNAME ("" leaves the machine's
// hostname).
func (e *Env) node() string {
	if e.Node != "" {
		return e.Node
	}
	return strings.TrimSpace(os.Getenv("HOLIDAY_HOSTNAME"))
}

// logger logs warnings and worse to Stderr.
func (e *Env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// loadSnapshotAndIndex finds a snapshot by ID, prefix or "latest" (an
// unknown one is a usage error) and loads the index to read it.
func loadSnapshotAndIndex(ctx context.Context, r *repo.Repository, s string) (*repo.Snapshot, error) {
	sn, err := r.FindSnapshot(ctx, s)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("snapshot %s: %w", s, err))
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	return sn, nil
}
