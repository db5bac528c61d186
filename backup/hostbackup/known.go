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
}

// NewKnown returns an empty set.
func NewKnown() *Known { return &Known{ids: map[repo.ID]struct{}{}} }

// HostKnown collects the data blobs of every snapshot of host (by the
// snapshot's hostname) in r. The index must be loaded.
func HostKnown(ctx context.Context, r *repo.Repository, host string) (*Known, error) {
	k := NewKnown()
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
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
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.ids[id]
	return ok
}

// Add puts id in the set.
func (k *Known) Add(id repo.ID) {
	k.mu.Lock()
	k.ids[id] = struct{}{}
	k.mu.Unlock()
}

// Len is the set's size.
func (k *Known) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.ids)
}
