package hostbackup

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

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
// background: the host starts walking its files meanwhile. Has, Len and
// Add wait for the read without a context, so a backup waits for it
// with Wait(ctx) first — before its first answer to the host and, for an
// unchanged backup that asks nothing, at its end, before Err — and an
// interrupt does not wait for a walk that has far to go.
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

// Wait waits for a KnownLater read, or for ctx to end: the host's step
// (an interrupt, its timeout) does not wait for a walk of its earlier
// snapshots that has far to go.
func (k *Known) Wait(ctx context.Context) error {
	if k.ready == nil {
		return nil
	}
	select {
	case <-k.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("reading which blobs the host's earlier snapshots hold: %w", context.Cause(ctx))
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
	return HostKnownIn(ctx, r, sns, host, nil)
}

// knownLoaders bounds the trees HostKnown loads at once: each is a read
// (a request, on S3) and a decode.
func knownLoaders() int { return max(4, runtime.GOMAXPROCS(0)) }

// HostKnownIn is HostKnown on a listing of r's snapshots already made
// (one per run, shared by its hosts), its trees loaded side by side.
// trees, when set, shares the trees under its kept roots with the parent
// walks of the same host's backups (Options.Trees): those snapshots are
// walked first, through it.
func HostKnownIn(ctx context.Context, r *repo.Repository, sns []*repo.Snapshot, host string, trees *Trees) (*Known, error) {
	if trees == nil {
		trees = NewTrees(r)
	}
	k := NewKnown()
	// the parents first, to the end: the parent walks wait for those
	// trees, and a tree they share with an older snapshot must be read
	// under the parent to be kept
	var kept, rest []*repo.Snapshot
	for _, sn := range sns {
		switch {
		case sn.Hostname != host || sn.Tree == nil:
		case trees.kept(*sn.Tree):
			kept = append(kept, sn)
		default:
			rest = append(rest, sn)
		}
	}
	var mu sync.Mutex
	seen := map[repo.ID]bool{}
	for _, group := range [][]*repo.Snapshot{kept, rest} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(knownLoaders())
		var walk func(id repo.ID, keep bool) error
		walk = func(id repo.ID, keep bool) error {
			mu.Lock()
			if seen[id] {
				mu.Unlock()
				return nil
			}
			seen[id] = true
			mu.Unlock()
			t, err := trees.load(gctx, id, keep)
			if err != nil {
				return err
			}
			mu.Lock()
			for _, n := range t.Nodes {
				for _, c := range n.Content {
					k.ids[c] = struct{}{}
				}
			}
			mu.Unlock()
			for _, n := range t.Nodes {
				if n.Subtree == nil {
					continue
				}
				sub := *n.Subtree
				// in a loader of its own while one is free, else here
				if !g.TryGo(func() error { return walk(sub, keep) }) {
					if err := walk(sub, keep); err != nil {
						return err
					}
				}
			}
			return nil
		}
		for _, sn := range group {
			root, keep := *sn.Tree, trees.kept(*sn.Tree)
			g.Go(func() error { return walk(root, keep) })
		}
		// a tree may be shared by several snapshots: the error names
		// the tree (LoadTree's), not one snapshot
		if err := g.Wait(); err != nil {
			return nil, fmt.Errorf("reading %s's snapshots: %w", host, err)
		}
	}
	return k, nil
}

// Trees loads the trees of one host's backup step, sharing those under
// the roots it keeps (the parents of the host's sources) between
// HostKnown's walk and the parent walks (Options.Trees): each of them is
// read and decoded once, by whichever walk comes first, and the other
// waits for it. It holds only those, which a parent walk holds for its
// whole backup anyway; drop it with the step.
type Trees struct {
	r     *repo.Repository
	roots map[repo.ID]bool
	mu    sync.Mutex
	held  map[repo.ID]*treeLoad
}

type treeLoad struct {
	done chan struct{}
	t    *repo.Tree
	err  error
}

// NewTrees returns a loader of r's trees that keeps those under roots.
func NewTrees(r *repo.Repository, roots ...repo.ID) *Trees {
	ts := &Trees{r: r, roots: map[repo.ID]bool{}, held: map[repo.ID]*treeLoad{}}
	for _, id := range roots {
		ts.roots[id] = true
	}
	return ts
}

// kept says whether id is one of the roots kept.
func (ts *Trees) kept(id repo.ID) bool { return ts.roots[id] }

// Load returns the tree id (a parent walk's: kept).
func (ts *Trees) Load(ctx context.Context, id repo.ID) (*repo.Tree, error) {
	return ts.load(ctx, id, true)
}

// load returns the tree id: one held (waiting while another walk loads
// it), else loaded, and held when keep says it is under a kept root.
func (ts *Trees) load(ctx context.Context, id repo.ID, keep bool) (*repo.Tree, error) {
	ts.mu.Lock()
	if l := ts.held[id]; l != nil {
		ts.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err != nil && ctx.Err() == nil && (errors.Is(l.err, context.Canceled) || errors.Is(l.err, context.DeadlineExceeded)) {
			// the walk that loaded it was stopped, not this one
			return ts.r.LoadTree(ctx, id)
		}
		return l.t, l.err
	}
	if !keep {
		ts.mu.Unlock()
		return ts.r.LoadTree(ctx, id)
	}
	l := &treeLoad{done: make(chan struct{})}
	ts.held[id] = l
	ts.mu.Unlock()
	l.t, l.err = ts.r.LoadTree(ctx, id)
	close(l.done)
	return l.t, l.err
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
