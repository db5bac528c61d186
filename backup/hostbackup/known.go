package hostbackup

import (
	"context"
	"fmt"
	"sync"

	"github.com/holiday-ops/holiday/backup/repo"
)

// Known is the set of data blobs a host may be told the repository has:
// those its own earlier snapshots reference, and those it sent in this
// run. Any other blob is asked for even when the repository holds it
// (from another host): a host cannot probe for other hosts' data by
// offering IDs. Dedup still happens when the blob is stored.
type Known struct {
	mu  sync.Mutex
	ids map[repo.ID]struct{}
	// ready, when set, is closed once KnownLater's read is done;
	// err is why it failed.
	ready chan struct{}
	err   error
}

// KnownLater is the set read reads (HostKnown, or HostKnownIn on a
// listing of the snapshots shared by a run's hosts), read in the
// background: the host starts walking its files meanwhile, and the first
// Has or Add waits for it (an unchanged backup asks nothing until its
// end, when Err is checked).
func KnownLater(read func() (*Known, error)) *Known {
	k := &Known{ready: make(chan struct{})}
	go func() {
		defer close(k.ready)
		got, err := read()
		if err != nil {
			k.ids, k.err = map[repo.ID]struct{}{}, err
			return
		}
		k.ids = got.ids
	}()
	return k
}

// wait waits for a KnownLater read.
func (k *Known) wait() {
	if k.ready != nil {
		<-k.ready
	}
}

// Err waits for a KnownLater read and says why it failed (then the
// set is empty: every blob was asked for, which is safe, but the
// repository could not be read).
func (k *Known) Err() error {
	k.wait()
	return k.err
}

// NewKnown returns an empty set.
func NewKnown() *Known { return &Known{ids: map[repo.ID]struct{}{}} }

// HostKnown collects the data blobs of every snapshot of host (by the
// snapshot's hostname) in r. The index must be loaded.
func HostKnown(ctx context.Context, r *repo.Repository, host string) (*Known, error) {
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	return HostKnownIn(ctx, r, sns, host)
}

// HostKnownIn is HostKnown on a listing of r's snapshots already made
// (one per run, shared by its hosts).
func HostKnownIn(ctx context.Context, r *repo.Repository, sns []*repo.Snapshot, host string) (*Known, error) {
	k := NewKnown()
	seen := map[repo.ID]bool{}
	var walk func(id repo.ID) error
	walk = func(id repo.ID) error {
		if seen[id] {
			return nil
		}
		seen[id] = true
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				k.ids[c] = struct{}{}
			}
			if n.Subtree != nil {
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, sn := range sns {
		if sn.Hostname != host || sn.Tree == nil {
			continue
		}
		if err := walk(*sn.Tree); err != nil {
			return nil, fmt.Errorf("reading %s's snapshot %s: %w", host, sn.ID.Str(), err)
		}
	}
	return k, nil
}

// Has reports whether id is in the set.
func (k *Known) Has(id repo.ID) bool {
	k.wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.ids[id]
	return ok
}

// Add puts id in the set.
func (k *Known) Add(id repo.ID) {
	k.wait()
	k.mu.Lock()
	k.ids[id] = struct{}{}
	k.mu.Unlock()
}

// Len is the set's size.
func (k *Known) Len() int {
	k.wait()
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.ids)
}
