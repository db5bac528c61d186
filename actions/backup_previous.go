package actions

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
)

// snapshotListing is the run's one listing of the repository's snapshots,
// made once in the background and shared by every host and source: the
// hosts' known blobs, a files source's parent, a dump's expected size.
// Only a host's own earlier snapshots matter to each, and this run's are
// not among them, so one listing serves the whole run.
type snapshotListing struct {
	done chan struct{}
	sns  []*repo.Snapshot
	err  error
}

// snapshots waits for the run's listing, starting it on the first call
// (on a context the caller's cancellation does not end: other hosts wait
// for it too).
func (b *Backups) snapshots(ctx context.Context) ([]*repo.Snapshot, error) {
	b.mu.Lock()
	l := b.listing
	if l == nil {
		l = &snapshotListing{done: make(chan struct{})}
		b.listing = l
		r, lctx := b.Store.R, context.WithoutCancel(ctx)
		go func() {
			defer close(l.done)
			l.sns, l.err = r.Snapshots(lctx, func(repo.ID, error) {})
		}()
	}
	b.mu.Unlock()
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		return nil, fmt.Errorf("listing the repository's snapshots: %w", l.err)
	}
	return l.sns, nil
}

// fromPrevious sets what a source's backup takes from the host's previous
// snapshot of the same source: a files source's parent (files unchanged
// since are not read again); with progress reports, a dump's expected
// size (Options.Expected: a dump's size is known only at its end). The
// dump starts without waiting for it: until the listing and the previous
// dump's tree are read, the reports carry no estimate.
func (bk *Backups) fromPrevious(ctx context.Context, host string, j job, o *hostbackup.Options) error {
	switch {
	case j.kind == "files":
		sns, err := bk.snapshots(ctx)
		if err != nil {
			return fmt.Errorf("finding the previous snapshot: %w", err)
		}
		o.Parent, o.Trees = hostbackup.Previous(sns, host, "kind:files", j.paths), j.trees
	case j.req.Source == hostbackup.SourceStream && bk.Progress != nil:
		var size atomic.Int64
		o.Expected = size.Load
		go func() {
			// the estimate is for the operator's eyes only: without a
			// listing or a readable previous dump there is none
			if sns, err := bk.snapshots(ctx); err == nil {
				size.Store(hostbackup.StreamSize(ctx, bk.Store.R, hostbackup.Previous(sns, host, "kind:"+j.kind, j.paths)))
			}
		}()
	}
	return nil
}
