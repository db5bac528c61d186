package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
)

// ObjectLock is holiday's Object Lock setting, kept in the (encrypted,
// retained) config so that every writer applies it: each file but locks
// is retained for Days in Mode. Stock restic ignores the field (and
// writes unretained files).
type ObjectLock struct {
	Mode string `json:"mode"` // GOVERNANCE or COMPLIANCE
	Days int    `json:"days"`
}

// Period is the retention each new file gets.
func (o ObjectLock) Period() time.Duration { return time.Duration(o.Days) * 24 * time.Hour }

// retainer is a backend that can store files under Object Lock.
type retainer interface {
	ObjectLockEnabled(ctx context.Context) (bool, error)
	SetRetention(mode string, period time.Duration) error
	RetainedUntil(ctx context.Context, h backend.Handle) (time.Time, error)
}

// InitOptions are the choices of a new repository.
type InitOptions struct {
	// ObjectLock, when set, retains every file but locks on a backend
	// with Object Lock (an S3 bucket that has it enabled); Init fails
	// on any other.
	ObjectLock *ObjectLock
}

// applyObjectLock tells the backend to retain what it stores, as the
// config asks. A backend without Object Lock (a local copy of an S3
// repository) cannot, and stores files as usual.
func (r *Repository) applyObjectLock() error {
	ol := r.cfg.ObjectLock
	if ol == nil {
		return nil
	}
	rb, ok := r.be.(retainer)
	if !ok {
		return nil
	}
	return rb.SetRetention(ol.Mode, ol.Period())
}

// Immutability says whether the repository is protected by Object Lock
// and until when.
type Immutability struct {
	Supported bool        `json:"supported"`          // the backend can retain files
	Enabled   bool        `json:"bucket_object_lock"` // the bucket has Object Lock
	Setting   *ObjectLock `json:"setting,omitempty"`  // the config's: what new files get
	// ConfigUntil is when the config's retention ends (zero: none).
	ConfigUntil time.Time `json:"config_retained_until,omitzero"`
	// Snapshots and Retained count the snapshot files and those retained
	// now; Until is when the first of those retentions ends (all are
	// protected until then), Latest when the last one does.
	Snapshots int       `json:"snapshots"`
	Retained  int       `json:"snapshots_retained"`
	Until     time.Time `json:"snapshots_retained_until,omitzero"`
	Latest    time.Time `json:"latest_retained_until,omitzero"`
}

// Immutable reports whether the config and every snapshot file are
// retained at now.
func (im *Immutability) Immutable(now time.Time) bool {
	return im.Enabled && im.ConfigUntil.After(now) && im.Snapshots > 0 && im.Retained == im.Snapshots
}

// ObjectLockState is the cheap part of Immutability: the bucket's Object
// Lock, the config's setting and the config file's retention (one
// request for the bucket and one HEAD), without the snapshots. Every
// file holiday writes after init is retained at least as long as the
// config, so ConfigUntil bounds what holiday wrote from below.
func (r *Repository) ObjectLockState(ctx context.Context) (*Immutability, error) {
	im := &Immutability{Setting: r.cfg.ObjectLock}
	rb, ok := r.be.(retainer)
	if !ok {
		return im, nil
	}
	im.Supported = true
	var err error
	if im.Enabled, err = rb.ObjectLockEnabled(ctx); err != nil || !im.Enabled {
		return im, err
	}
	im.ConfigUntil, err = rb.RetainedUntil(ctx, backend.Handle{Type: backend.ConfigFile})
	return im, err
}

// Immutability reads the retention of the config and of each snapshot
// file (a HEAD each).
func (r *Repository) Immutability(ctx context.Context, now time.Time) (*Immutability, error) {
	im, err := r.ObjectLockState(ctx)
	if err != nil || !im.Enabled {
		return im, err
	}
	rb := r.be.(retainer) // Enabled only on one
	err = r.List(ctx, backend.SnapshotFile, func(id ID, _ int64) error {
		im.Snapshots++
		until, err := rb.RetainedUntil(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()})
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", id.Str(), err)
		}
		if !until.After(now) {
			return nil
		}
		im.Retained++
		if im.Until.IsZero() || until.Before(im.Until) {
			im.Until = until
		}
		if until.After(im.Latest) {
			im.Latest = until
		}
		return nil
	})
	return im, err
}
