package repocmd

import (
	"context"
	"errors"
	"strings"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/local"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

// IsS3 reports whether a repository location is an S3 URL (s3:…).
func IsS3(loc string) bool { return strings.HasPrefix(loc, "s3:") }

// openBackend returns the backend for loc: an S3 bucket for s3:… (with
// the Env's S3 settings), else a local directory. create makes a new
// repository's place (the directory layout, a missing bucket).
func (e *Env) openBackend(ctx context.Context, loc string, create bool) (backend.Backend, error) {
	if !IsS3(loc) {
		if create {
			return local.Create(loc)
		}
		be, err := local.Open(loc)
		if errors.Is(err, backend.ErrNotExist) {
			err = noRepository{err}
		}
		if err != nil {
			return nil, exitcode.WithHint(exitcode.Usage, err, "check "+e.where()+"; `holiday repo init` creates a repository")
		}
		return be, nil
	}
	cfg, err := s3be.ParseURL(loc)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, err)
	}
	cfg = e.S3.WithLocation(cfg)
	var be *s3be.Backend
	if create {
		be, err = s3be.Create(ctx, cfg)
	} else {
		be, err = s3be.Open(ctx, cfg)
	}
	if err != nil {
		return nil, e.s3Hint(err)
	}
	return be, nil
}

// s3Hint gives an S3 error its exit code and what to do.
func (e *Env) s3Hint(err error) error {
	switch {
	case errors.Is(err, s3be.ErrCredentials):
		return exitcode.WithHint(exitcode.Usage, err, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or the plan's repository.s3 *_env/*_file fields")
	case errors.Is(err, s3be.ErrNoBucket):
		return exitcode.WithHint(exitcode.Usage, err, "check the bucket in "+e.where()+"; `holiday repo init` creates a missing bucket")
	case errors.Is(err, s3be.ErrAccessDenied):
		return exitcode.WithHint(exitcode.Usage, err, "the key may be read-only or limited by a bucket policy; ask for one that may list, read and write the prefix")
	case errors.Is(err, s3be.ErrUnavailable):
		return exitcode.WithHint(exitcode.HostsFailed, err, "check the endpoint in "+e.where()+" and that the S3 server is up")
	}
	return err
}

// where is how the operator named the repository, for hints.
func (e *Env) where() string {
	if e.Where != "" {
		return e.Where
	}
	return "--repo"
}

// noRepository is a missing repository directory: its message as it is,
// and errors.Is(err, repo.ErrNoRepository) true, as for a location
// without a config.
type noRepository struct{ error }

func (e noRepository) Unwrap() error      { return e.error }
func (noRepository) Is(target error) bool { return target == repo.ErrNoRepository }
