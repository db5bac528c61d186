// Package repocopy copies snapshots from one repository to another, as
// restic's copy does: only the blobs the target lacks cross, decrypted
// with the source's key and encrypted (and compressed) for the target;
// a copied snapshot keeps its tags and hostname and records the snapshot
// it came from in original, so copying again skips it.
//
// The target is written in the repository's order — packs, then their
// index (Flush), then the snapshot — so a copy stopped at any point
// leaves the target valid.
//
// It must never import anything of holiday's above backup; it may import
// backup/repo and internal/....
package repocopy

import (
	"context"
	"fmt"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/repo"
)

// Stats count what a copy did.
type Stats struct {
	Snapshots int   `json:"snapshots"` // copied
	Skipped   int   `json:"skipped"`   // already in the target
	Blobs     int   `json:"blobs"`     // that crossed
	Bytes     int64 `json:"bytes"`     // plaintext bytes that crossed
}

// Copied is one snapshot copied: its ID in the source and in the target.
type Copied struct {
	From, To repo.ID
}

// Copy copies the snapshots of from that filter accepts (all if filter
// is nil) and that to does not hold yet. Both repositories must be open;
// from's index is loaded here, to's too. Call it with a lock on each (a
// shared one is enough: nothing is removed).
func Copy(ctx context.Context, from, to *repo.Repository, filter func(*repo.Snapshot) bool) ([]Copied, Stats, error) {
	var st Stats
	srcSns, err := from.Snapshots(ctx, nil)
	if err != nil {
		return nil, st, fmt.Errorf("source: %w", err)
	}
	dstSns, err := to.Snapshots(ctx, nil)
	if err != nil {
		return nil, st, fmt.Errorf("target: %w", err)
	}
	have := map[repo.ID][]*repo.Snapshot{}
	for _, sn := range dstSns {
		have[origin(sn)] = append(have[origin(sn)], sn)
	}
	var todo []*repo.Snapshot
	for _, sn := range srcSns {
		if filter != nil && !filter(sn) {
			continue
		}
		if slices.ContainsFunc(have[origin(sn)], func(d *repo.Snapshot) bool { return same(d, sn) }) {
			st.Skipped++
			continue
		}
		todo = append(todo, sn)
	}
	if len(todo) == 0 {
		return nil, st, nil
	}
	if err := from.LoadIndex(ctx); err != nil {
		return nil, st, fmt.Errorf("source: %w", err)
	}
	if err := to.LoadIndex(ctx); err != nil {
		return nil, st, fmt.Errorf("target: %w", err)
	}
	to.StartWriter(ctx)
	c := &copier{from: from, to: to, st: &st, seen: map[repo.ID]bool{}}
	for _, sn := range todo {
		if err := c.tree(ctx, *sn.Tree); err != nil {
			_ = to.Flush(context.WithoutCancel(ctx)) // what crossed is indexed; no snapshot refers to it yet
			return nil, st, fmt.Errorf("copy snapshot %s: %w", sn.ID.Str(), err)
		}
	}
	// packs and their index first: only then may snapshots refer to them
	if err := to.Flush(ctx); err != nil {
		return nil, st, fmt.Errorf("target: %w", err)
	}
	var out []Copied
	for _, sn := range todo {
		n := *sn
		orig := origin(sn)
		n.Original = &orig
		n.Parent = nil // the parent may not be in the target
		id, err := to.SaveSnapshot(ctx, &n)
		if err != nil {
			return out, st, fmt.Errorf("target: save snapshot %s: %w", sn.ID.Str(), err)
		}
		out = append(out, Copied{From: sn.ID, To: id})
		st.Snapshots++
	}
	return out, st, nil
}

// origin is the first snapshot sn derives from.
func origin(sn *repo.Snapshot) repo.ID {
	if sn.Original != nil {
		return *sn.Original
	}
	return sn.ID
}

// same reports whether d (in the target) is a copy of sn as it is now:
// same tree, time, host, paths and tags.
func same(d, sn *repo.Snapshot) bool {
	return *d.Tree == *sn.Tree && d.Time.Equal(sn.Time) && d.Hostname == sn.Hostname &&
		slices.Equal(d.Paths, sn.Paths) && slices.Equal(d.Tags, sn.Tags)
}

type copier struct {
	from, to *repo.Repository
	st       *Stats
	seen     map[repo.ID]bool // trees walked in this copy
}

// tree copies a tree and everything under it that the target lacks.
// Subtrees of a tree the target has are walked too: a copy or backup
// stopped halfway may have indexed a tree before all it refers to.
func (c *copier) tree(ctx context.Context, id repo.ID) error {
	if c.seen[id] {
		return nil
	}
	c.seen[id] = true
	raw, err := c.from.LoadBlob(ctx, repo.TreeBlob, id, nil)
	if err != nil {
		return err
	}
	t, err := repo.DecodeTree(raw, id)
	if err != nil {
		return err
	}
	var data []repo.ID
	for _, n := range t.Nodes {
		if n.Subtree != nil {
			if err := c.tree(ctx, *n.Subtree); err != nil {
				return err
			}
		}
		for _, b := range n.Content {
			if !c.to.Index().Has(repo.BlobHandle{ID: b, Type: repo.DataBlob}) {
				data = append(data, b)
			}
		}
	}
	if err := c.data(ctx, data); err != nil {
		return err
	}
	known, err := c.save(ctx, repo.TreeBlob, raw, id)
	if err == nil && !known {
		c.st.Blobs++
		c.st.Bytes += int64(len(raw))
	}
	return err
}

// data copies blobs a few at a time (loading one is a round trip to the
// source; saving one compresses and encrypts).
func (c *copier) data(ctx context.Context, ids []repo.ID) error {
	if len(ids) == 0 {
		return nil
	}
	slices.SortFunc(ids, func(a, b repo.ID) int { return slices.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	type res struct {
		n     int64
		known bool
	}
	results := make([]res, len(ids))
	for i, id := range ids {
		g.Go(func() error {
			b, err := c.from.LoadBlob(gctx, repo.DataBlob, id, nil)
			if err != nil {
				return err
			}
			known, err := c.save(gctx, repo.DataBlob, b, id)
			results[i] = res{int64(len(b)), known}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range results {
		if !r.known {
			c.st.Blobs++
			c.st.Bytes += r.n
		}
	}
	return nil
}

func (c *copier) save(ctx context.Context, t repo.BlobType, b []byte, id repo.ID) (bool, error) {
	_, known, err := c.to.SaveBlob(ctx, t, b, id)
	if err != nil {
		return false, fmt.Errorf("target: %w", err)
	}
	return known, nil
}
