package actions

import (
	"context"
	"fmt"
	"slices"
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
		o.Parent = latest(sns, host, "kind:files", j.paths)
	case j.req.Source == hostbackup.SourceStream && bk.Progress != nil:
		var size atomic.Int64
		o.Expected = size.Load
		go func() {
			// the estimate is for the operator's eyes only: without a
			// listing or a readable previous dump there is none
			if sns, err := bk.snapshots(ctx); err == nil {
				size.Store(streamSize(ctx, bk.Store.R, latest(sns, host, "kind:"+j.kind, j.paths)))
			}
		}()
	}
	return nil
}

// latest is the newest snapshot in sns (oldest first) of host with tag
// and exactly paths (sorted); nil when there is none.
func latest(sns []*repo.Snapshot, host, tag string, paths []string) *repo.Snapshot {
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		sp := slices.Clone(sn.Paths)
		slices.Sort(sp)
		if sn.Hostname == host && slices.Contains(sn.Tags, tag) && slices.Equal(sp, paths) {
			return sn
		}
	}
	return nil
}

// streamSize is the size of the one file a stream snapshot (a dump)
// holds; 0 when sn is nil or holds anything else.
func streamSize(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) int64 {
	if sn == nil || sn.Tree == nil {
		return 0
	}
	t, err := r.LoadTree(ctx, *sn.Tree)
	if err != nil || len(t.Nodes) != 1 || t.Nodes[0].Type != repo.NodeFile {
		return 0
	}
	return int64(t.Nodes[0].Size)
}
