package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/holiday-ops/holiday/backup/backend"
)

// Object Lock (DESIGN §7): with a retention set, every file Save stores
// except locks is stored with that retention (mode and a retain-until
// date), so that nobody with the same credentials can delete or
// overwrite its version before the date; locks stay removable.

// retention is what Save applies; zero mode means none.
type retention struct {
	mu     sync.Mutex
	mode   types.ObjectLockMode
	period time.Duration
}

// ErrNoObjectLock means the bucket was not created with Object Lock.
var ErrNoObjectLock = errors.New("the bucket does not have Object Lock enabled")

// ParseLockMode reads "governance" or "compliance" (any case).
func ParseLockMode(s string) (types.ObjectLockMode, error) {
	switch strings.ToUpper(s) {
	case "GOVERNANCE":
		return types.ObjectLockModeGovernance, nil
	case "COMPLIANCE":
		return types.ObjectLockModeCompliance, nil
	}
	return "", fmt.Errorf("object lock mode %q: want governance or compliance", s)
}

// SetRetention makes Save store every file but locks under Object Lock
// in mode ("GOVERNANCE" or "COMPLIANCE") until period after it is
// written. The bucket must have Object Lock enabled (ObjectLockEnabled).
func (b *Backend) SetRetention(mode string, period time.Duration) error {
	m, err := ParseLockMode(mode)
	if err != nil {
		return err
	}
	if period <= 0 {
		return fmt.Errorf("object lock retention %v: want a positive period", period)
	}
	b.ret.mu.Lock()
	b.ret.mode, b.ret.period = m, period
	b.ret.mu.Unlock()
	return nil
}

// retainFor returns the retention Save gives h (zero mode: none).
func (b *Backend) retainFor(h backend.Handle) (types.ObjectLockMode, time.Time) {
	if h.Type == backend.LockFile {
		return "", time.Time{}
	}
	b.ret.mu.Lock()
	defer b.ret.mu.Unlock()
	if b.ret.mode == "" {
		return "", time.Time{}
	}
	return b.ret.mode, time.Now().Add(b.ret.period).UTC().Truncate(time.Second)
}

// ObjectLockEnabled reports whether the bucket has Object Lock enabled.
func (b *Backend) ObjectLockEnabled(ctx context.Context) (bool, error) {
	out, err := b.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(b.cfg.Bucket)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			switch ae.ErrorCode() {
			case "ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound",
				// servers without Object Lock at all
				"NotImplemented", "MethodNotAllowed", "InvalidRequest":
				return false, nil
			}
		}
		return false, b.wrap("object lock configuration", err)
	}
	return out.ObjectLockConfiguration != nil && out.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled, nil
}

// RetainedUntil returns the end of h's retention (its current version's),
// zero when it has none.
func (b *Backend) RetainedUntil(ctx context.Context, h backend.Handle) (time.Time, error) {
	if err := h.Valid(); err != nil {
		return time.Time{}, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.cfg.Bucket), Key: aws.String(b.objectKey(h))})
	if err != nil {
		return time.Time{}, b.wrap(fmt.Sprintf("retention of %v", h), err)
	}
	if out.ObjectLockMode == "" || out.ObjectLockRetainUntilDate == nil {
		return time.Time{}, nil
	}
	return *out.ObjectLockRetainUntilDate, nil
}

// createLockedBucket creates the bucket with Object Lock enabled.
func (b *Backend) createLockedBucket(ctx context.Context, in *s3.CreateBucketInput) error {
	in.ObjectLockEnabledForBucket = aws.Bool(true)
	_, err := b.client.CreateBucket(ctx, in)
	return err
}
