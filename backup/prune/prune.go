// Package prune removes the data no snapshot references any more, the
// way restic's prune does: it finds the blobs every snapshot's trees
// use, deletes packs that hold none of them, repacks packs that are
// partly used (the most wasteful first, until the unused rest is within
// Options.MaxUnused), and stores a new index for what remains.
//
// The order of its writes is what keeps a repository valid when prune is
// killed at any point: new packs, then their index, then an index of the
// packs it keeps, and only then are the old index files removed, and the
// packs last. A crash leaves duplicates or unreferenced packs, never an
// index entry without its pack. Objects still retained under S3 Object
// Lock are left in place (Retention).
//
// Run it under the repository's exclusive lock (a backup writing at the
// same time would lose its packs).
//
// It must never import anything of holiday's above backup; it may import
// backup/repo, backup/backend and internal/....
package prune

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/repo"
)

// Retention is implemented by backends that can hold objects under a
// retention period (S3 Object Lock): RetainedUntil returns the end of a
// file's retention, zero when it has none.
type Retention interface {
	RetainedUntil(ctx context.Context, h backend.Handle) (time.Time, error)
}

// Options tune a prune.
type Options struct {
	// MaxUnused is the share of unused data (of used + unused) allowed
	// to stay in partly used packs rather than be repacked: 0.05 is
	// restic's default 5%. 0 repacks every partly used pack.
	MaxUnused float64
	// DryRun plans and reports, and changes nothing.
	DryRun bool
	// Now is the time retention is compared with (time.Now if zero).
	Now time.Time
	// Progress, if set, hears each step as it starts.
	Progress func(step string)
	// hook, set by tests, is called at every point where prune has just
	// changed the repository (to crash it there).
	hook func(point string)
}

// Stats describe a prune's plan and what it did.
type Stats struct {
	Snapshots   int   `json:"snapshots"`
	Packs       int   `json:"packs"`
	UsedBlobs   int   `json:"used_blobs"`
	UsedBytes   int64 `json:"used_bytes"`
	UnusedBytes int64 `json:"unused_bytes"`
	// what is done to packs
	KeepPacks     int       `json:"keep_packs"`
	RepackPacks   int       `json:"repack_packs"`
	RepackBytes   int64     `json:"repack_bytes"`             // used bytes copied into new packs
	DeletePacks   int       `json:"delete_packs"`             // unused, or repacked
	DeleteBytes   int64     `json:"delete_bytes"`             // bytes of the packs deleted
	Unreferenced  int       `json:"unreferenced"`             // packs no index lists (crashed writers), deleted
	RetainedPacks int       `json:"retained_packs"`           // left because Object Lock still retains them
	UnusedAfter   int64     `json:"unused_after"`             // unused bytes left in kept packs
	NewPacks      int       `json:"new_packs"`                // written by repacking
	IndexWritten  int       `json:"index_written"`            // new index files
	IndexRemoved  int       `json:"index_removed"`            // old index files removed
	RetainedUntil time.Time `json:"retained_until,omitempty"` // the latest retention end among packs left
	DryRun        bool      `json:"dry_run"`
}

type packInfo struct {
	id     repo.ID
	size   int64
	blobs  []repo.PackedBlob
	used   int64 // bytes of blobs to keep (their chosen copy is here)
	unused int64
	need   []repo.PackedBlob
}

// Prune plans and, unless DryRun, carries out the removal of unused
// data. The repository must be open and locked exclusively; its index
// is loaded here.
func Prune(ctx context.Context, r *repo.Repository, opts Options) (Stats, error) {
	var st Stats
	st.DryRun = opts.DryRun
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	step := func(s string) {
		if opts.Progress != nil {
			opts.Progress(s)
		}
	}
	hook := func(p string) {
		if opts.hook != nil {
			opts.hook(p)
		}
	}
	if opts.MaxUnused < 0 || opts.MaxUnused >= 1 {
		return st, fmt.Errorf("--max-unused %.0f%%: want 0%% up to below 100%%", opts.MaxUnused*100)
	}

	// the index files as they are now: removed once the new ones exist
	step("loading index")
	var oldIndex []repo.ID
	if err := r.List(ctx, backend.IndexFile, func(id repo.ID, _ int64) error {
		oldIndex = append(oldIndex, id)
		return nil
	}); err != nil {
		return st, fmt.Errorf("list index files: %w", err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		return st, err
	}
	idx := r.Index()

	step("finding the data snapshots use")
	used, nsn, err := usedBlobs(ctx, r)
	if err != nil {
		return st, err
	}
	st.Snapshots = nsn
	st.UsedBlobs = len(used)

	step("listing packs")
	stored := map[repo.ID]int64{}
	if err := r.List(ctx, backend.PackFile, func(id repo.ID, size int64) error {
		stored[id] = size
		return nil
	}); err != nil {
		return st, fmt.Errorf("list packs: %w", err)
	}
	packs := map[repo.ID]*packInfo{}
	for _, id := range idx.Packs() {
		size, ok := stored[id]
		if !ok {
			return st, fmt.Errorf("pack %s is in the index but not in the repository: refusing to prune a damaged repository (run `holiday repo check`)", id.Str())
		}
		packs[id] = &packInfo{id: id, size: size}
	}
	chosen := map[repo.BlobHandle]bool{}
	seen := map[repo.PackedBlob]bool{}
	idx.Each(func(pb repo.PackedBlob) bool {
		// an entry in two index files (a prune stopped after writing
		// the new index) is one entry
		if seen[pb] {
			return true
		}
		seen[pb] = true
		p := packs[pb.Pack]
		p.blobs = append(p.blobs, pb)
		if _, ok := used[pb.BlobHandle]; ok && !chosen[pb.BlobHandle] {
			chosen[pb.BlobHandle] = true
			p.used += int64(pb.Length)
			p.need = append(p.need, pb)
		} else {
			p.unused += int64(pb.Length)
		}
		return true
	})
	for bh := range used {
		if !chosen[bh] {
			return st, fmt.Errorf("%v blob %s is used by a snapshot but in no index: refusing to prune a damaged repository (run `holiday repo check`)", bh.Type, bh.ID.Str())
		}
	}
	st.Packs = len(stored)

	// decide: delete unused and unreferenced packs, keep full ones,
	// repack the most wasteful partly used ones until the rest is
	// within MaxUnused
	var keep, repack, remove []*packInfo
	var candidates []*packInfo
	for _, p := range packs {
		st.UsedBytes += p.used
		st.UnusedBytes += p.unused
		switch {
		case p.used == 0:
			remove = append(remove, p)
		case p.unused == 0:
			keep = append(keep, p)
		default:
			candidates = append(candidates, p)
		}
	}
	for id, size := range stored {
		if _, ok := packs[id]; !ok {
			remove = append(remove, &packInfo{id: id, size: size})
			st.Unreferenced++
			st.UnusedBytes += size
		}
	}
	slices.SortFunc(candidates, func(a, b *packInfo) int {
		// most unused per used byte first; ties by ID for a stable plan
		if c := cmp.Compare(float64(b.unused)/float64(b.used), float64(a.unused)/float64(a.used)); c != 0 {
			return c
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	var unusedLeft int64
	for _, p := range candidates {
		unusedLeft += p.unused
	}
	maxUnused := int64(float64(st.UsedBytes) * opts.MaxUnused / (1 - opts.MaxUnused))
	for _, p := range candidates {
		if unusedLeft > maxUnused {
			repack = append(repack, p)
			unusedLeft -= p.unused
		} else {
			keep = append(keep, p)
		}
	}
	st.UnusedAfter = unusedLeft

	// Object Lock: a pack still retained can be neither deleted nor
	// replaced; it stays, indexed as it is. An old index file still
	// retained stays too, and so must every pack it lists.
	keepIndex := map[repo.ID]bool{}
	if rt, ok := r.Backend().(Retention); ok && len(repack)+len(remove) > 0 {
		step("checking retention")
		held := map[repo.ID]bool{}
		for _, id := range oldIndex {
			until, err := rt.RetainedUntil(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()})
			if err != nil {
				return st, fmt.Errorf("retention of index %s: %w", id.Str(), err)
			}
			if !until.After(now) {
				continue
			}
			keepIndex[id] = true
			f, err := r.LoadIndexFile(ctx, id)
			if err != nil {
				return st, err
			}
			for _, p := range f.Packs {
				held[p.ID] = true
			}
		}
		var err error
		keep, repack, remove, err = retained(ctx, rt, now, held, keep, repack, remove, &st)
		if err != nil {
			return st, err
		}
	}
	st.KeepPacks, st.RepackPacks = len(keep), len(repack)
	st.DeletePacks = len(remove) + len(repack)
	for _, p := range repack {
		st.RepackBytes += p.used
		st.DeleteBytes += p.size
	}
	for _, p := range remove {
		st.DeleteBytes += p.size
	}
	if opts.DryRun || (len(repack) == 0 && len(remove) == 0) {
		return st, nil
	}

	// 1. repack: the blobs still needed go into new packs, indexed by
	// Flush (new packs, then their index)
	kept := repo.NewIndex()
	for _, p := range keep {
		for _, pb := range p.blobs {
			kept.Add(pb)
		}
	}
	if len(repack) > 0 {
		step(fmt.Sprintf("repacking %d packs", len(repack)))
		r.SetIndex(kept)
		before := len(kept.Packs())
		if err := repackAll(ctx, r, repack, hook); err != nil {
			return st, err
		}
		if err := r.Flush(ctx); err != nil {
			return st, fmt.Errorf("repack: %w", err)
		}
		st.NewPacks = len(kept.Packs()) - before
		hook("repacked")
	}

	// 2. an index of every pack that stays
	step("writing the new index")
	var pj []repo.PackJSON
	for _, p := range keep {
		pj = append(pj, repo.PackJSONOf(p.id, p.blobs))
	}
	slices.SortFunc(pj, func(a, b repo.PackJSON) int { return slices.Compare(a.ID[:], b.ID[:]) })
	ids, err := r.SaveIndexFiles(ctx, pj)
	st.IndexWritten = len(ids)
	if err != nil {
		return st, err
	}
	hook("index")

	// 3. the old index files, now superseded
	step("removing the old index")
	var oldFiles []backend.Handle
	for _, id := range oldIndex {
		if !keepIndex[id] { // a retained one stays, with every pack it lists
			oldFiles = append(oldFiles, backend.Handle{Type: backend.IndexFile, Name: id.String()})
		}
	}
	if err := removeAll(ctx, r, oldFiles, func() { hook("index-removed") }); err != nil {
		return st, err
	}
	st.IndexRemoved = len(oldFiles)

	// 4. the packs, last
	step(fmt.Sprintf("removing %d packs", len(remove)+len(repack)))
	var packFiles []backend.Handle
	for _, p := range append(repack, remove...) {
		packFiles = append(packFiles, backend.Handle{Type: backend.PackFile, Name: p.id.String()})
	}
	if err := removeAll(ctx, r, packFiles, func() { hook("pack-removed") }); err != nil {
		return st, err
	}
	return st, nil
}

// removeAll removes files a few at a time (each is a round trip to an
// object store), asking the lock before each; done is called after each
// removal.
func removeAll(ctx context.Context, r *repo.Repository, hs []backend.Handle, done func()) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(removers)
	var mu sync.Mutex
	for _, h := range hs {
		g.Go(func() error {
			if err := r.LockValid(); err != nil {
				return err
			}
			if err := removeFile(gctx, r, h); err != nil {
				return err
			}
			mu.Lock()
			done()
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// removers and treeLoaders bound the requests prune has in flight.
const (
	removers    = 8
	treeLoaders = 8
)

func removeFile(ctx context.Context, r *repo.Repository, h backend.Handle) error {
	if err := r.Backend().Remove(ctx, h); err != nil && !backend.IsNotExist(err) {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	return nil
}

// usedBlobs walks every snapshot's trees, a level at a time with the
// trees of a level loaded side by side, and returns the blobs they
// reference. A snapshot or tree that cannot be read stops the prune: its
// blobs would otherwise be counted unused and deleted.
func usedBlobs(ctx context.Context, r *repo.Repository) (map[repo.BlobHandle]struct{}, int, error) {
	sns, err := r.Snapshots(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("refusing to prune: %w", err)
	}
	used := map[repo.BlobHandle]struct{}{}
	var level []repo.ID
	for _, sn := range sns {
		th := repo.BlobHandle{ID: *sn.Tree, Type: repo.TreeBlob}
		if _, ok := used[th]; !ok {
			used[th] = struct{}{}
			level = append(level, *sn.Tree)
		}
	}
	trees, err := prefetchTrees(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	var mu sync.Mutex
	for len(level) > 0 {
		var next []repo.ID
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(treeLoaders)
		for _, id := range level {
			g.Go(func() error {
				t, err := trees.load(gctx, r, id)
				if err != nil {
					return fmt.Errorf("refusing to prune: tree %s cannot be read: %w", id.Str(), err)
				}
				mu.Lock()
				defer mu.Unlock()
				for _, n := range t.Nodes {
					for _, c := range n.Content {
						used[repo.BlobHandle{ID: c, Type: repo.DataBlob}] = struct{}{}
					}
					if n.Subtree != nil {
						th := repo.BlobHandle{ID: *n.Subtree, Type: repo.TreeBlob}
						if _, ok := used[th]; !ok {
							used[th] = struct{}{}
							next = append(next, *n.Subtree)
						}
					}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, 0, err
		}
		level = next
	}
	return used, len(sns), nil
}

// maxPrefetch bounds the sealed tree bytes prefetchTrees holds.
const maxPrefetch = 128 << 20

// treeSet holds sealed tree blobs read ahead, a whole pack per request
// (one request per tree rather than per pack is what a walk over an
// object store waits for).
type treeSet struct {
	mu    sync.Mutex
	blobs map[repo.ID]sealedBlob
}

type sealedBlob struct {
	pb     repo.PackedBlob
	sealed []byte
}

// prefetchTrees reads every tree blob of the index, pack by pack, when
// they are at most maxPrefetch bytes in all; else it returns an empty
// set and the walk reads tree by tree.
func prefetchTrees(ctx context.Context, r *repo.Repository) (*treeSet, error) {
	ts := &treeSet{blobs: map[repo.ID]sealedBlob{}}
	byPack := map[repo.ID][]repo.PackedBlob{}
	var total int64
	r.Index().Each(func(pb repo.PackedBlob) bool {
		if pb.Type == repo.TreeBlob {
			byPack[pb.Pack] = append(byPack[pb.Pack], pb)
			total += int64(pb.Length)
		}
		return true
	})
	if total > maxPrefetch {
		return ts, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(treeLoaders)
	for pack, blobs := range byPack {
		g.Go(func() error {
			slices.SortFunc(blobs, func(a, b repo.PackedBlob) int { return cmp.Compare(a.Offset, b.Offset) })
			start, end := int64(blobs[0].Offset), int64(blobs[len(blobs)-1].Offset+blobs[len(blobs)-1].Length)
			rd, err := r.Backend().Load(gctx, backend.Handle{Type: backend.PackFile, Name: pack.String()}, int(end-start), start)
			if err != nil {
				return fmt.Errorf("read pack %s: %w", pack.Str(), err)
			}
			buf, err := io.ReadAll(rd)
			rd.Close()
			if err != nil {
				return fmt.Errorf("read pack %s: %w", pack.Str(), err)
			}
			ts.mu.Lock()
			defer ts.mu.Unlock()
			for _, pb := range blobs {
				off := int64(pb.Offset) - start
				ts.blobs[pb.ID] = sealedBlob{pb, buf[off : off+int64(pb.Length)]}
			}
			return nil
		})
	}
	return ts, g.Wait()
}

// load returns tree id, from the set when it holds it (verified like
// any blob), else from the repository.
func (ts *treeSet) load(ctx context.Context, r *repo.Repository, id repo.ID) (*repo.Tree, error) {
	ts.mu.Lock()
	sb, ok := ts.blobs[id]
	delete(ts.blobs, id) // each tree is walked once
	ts.mu.Unlock()
	if !ok {
		return r.LoadTree(ctx, id)
	}
	raw, err := r.OpenBlob(sb.pb, sb.sealed, nil)
	if err != nil {
		// that copy is damaged; another may not be
		return r.LoadTree(ctx, id)
	}
	return repo.DecodeTree(raw, id)
}

// repackAll reads the part of each pack that holds blobs to keep, once,
// front to back, and stores those blobs again as they are sealed
// (SaveSealed puts them in new packs: the repository's index holds only
// the kept packs).
func repackAll(ctx context.Context, r *repo.Repository, packs []*packInfo, hook func(string)) error {
	r.StartWriter(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	var mu sync.Mutex
	for _, p := range packs {
		g.Go(func() error {
			if err := repackOne(gctx, r, p); err != nil {
				return err
			}
			mu.Lock()
			hook("pack-repacked")
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		_ = r.Flush(context.WithoutCancel(ctx)) // stop the writer; its packs are unindexed garbage
		return fmt.Errorf("repack: %w", err)
	}
	return nil
}

func repackOne(ctx context.Context, r *repo.Repository, p *packInfo) error {
	need := slices.Clone(p.need)
	slices.SortFunc(need, func(a, b repo.PackedBlob) int { return cmp.Compare(a.Offset, b.Offset) })
	end := int64(need[len(need)-1].Offset + need[len(need)-1].Length)
	rd, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: p.id.String()}, int(end-int64(need[0].Offset)), int64(need[0].Offset))
	if err != nil {
		return fmt.Errorf("read pack %s: %w", p.id.Str(), err)
	}
	defer rd.Close()
	br := bufio.NewReaderSize(rd, 1<<20)
	pos := int64(need[0].Offset)
	var sealed []byte
	for _, pb := range need {
		if _, err := br.Discard(int(int64(pb.Offset) - pos)); err != nil {
			return fmt.Errorf("read pack %s: %w", p.id.Str(), err)
		}
		if cap(sealed) < int(pb.Length) {
			sealed = make([]byte, pb.Length)
		}
		sealed = sealed[:pb.Length]
		if _, err := io.ReadFull(br, sealed); err != nil {
			return fmt.Errorf("read pack %s: %w", p.id.Str(), err)
		}
		pos = int64(pb.Offset + pb.Length)
		// copied sealed, as it is: its MAC is checked (a damaged blob
		// stops the prune before anything is deleted), it is neither
		// decrypted nor compressed again
		if _, err := r.SaveSealed(ctx, pb, sealed); err != nil {
			return fmt.Errorf("refusing to repack (nothing was deleted): %w", err)
		}
	}
	return nil
}

// retained moves packs still under retention, and those held (listed by
// an index file still retained), from repack and remove to keep.
func retained(ctx context.Context, rt Retention, now time.Time, held map[repo.ID]bool, keep, repack, remove []*packInfo, st *Stats) ([]*packInfo, []*packInfo, []*packInfo, error) {
	check := func(ps []*packInfo) ([]*packInfo, error) {
		var out []*packInfo
		for _, p := range ps {
			until, err := rt.RetainedUntil(ctx, backend.Handle{Type: backend.PackFile, Name: p.id.String()})
			if err != nil {
				return nil, fmt.Errorf("retention of pack %s: %w", p.id.Str(), err)
			}
			if until.After(now) || held[p.id] {
				st.RetainedPacks++
				if until.After(st.RetainedUntil) {
					st.RetainedUntil = until
				}
				if len(p.blobs) > 0 {
					keep = append(keep, p)
					st.UnusedAfter += p.unused
				}
				continue
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if repack, err = check(repack); err != nil {
		return nil, nil, nil, err
	}
	if remove, err = check(remove); err != nil {
		return nil, nil, nil, err
	}
	return keep, repack, remove, nil
}
