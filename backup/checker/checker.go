// Package checker verifies a repository: the structure (index files,
// packs present, snapshots readable, every tree readable, every blob a
// snapshot needs indexed) and, with ReadData, every byte (pack hashes,
// headers against the index, each blob decrypted and hashed). Damage is
// attributed: each problem names the snapshots and files it touches.
//
// It must never import anything of holiday's above backup; it may import
// backup/repo, backup/restorer, backup/backend and internal/....
package checker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/crypto"
	"github.com/holiday-ops/holiday/backup/repo"
)

// Options choose how much to read.
type Options struct {
	ReadData bool
	// Subset N/T reads only the packs in group N of T (1 ≤ N ≤ T),
	// grouped by the first byte of the pack ID.
	SubsetN, SubsetT int
	Progress         func(done, total int)
}

// Problem is one piece of damage.
type Problem struct {
	Kind   string   `json:"kind"`   // index, pack, snapshot, tree, blob
	Object string   `json:"object"` // the damaged file or blob
	Err    string   `json:"error"`
	Hits   []string `json:"affects,omitempty"` // "snapshot <id>: <path>"
}

// Report is check's result.
type Report struct {
	Snapshots    int       `json:"snapshots"`
	Packs        int       `json:"packs"`
	PacksRead    int       `json:"packs_read"`
	BlobsRead    int       `json:"blobs_read"`
	BytesRead    int64     `json:"bytes_read"`
	Problems     []Problem `json:"problems"`
	Unreferenced []string  `json:"unreferenced_packs,omitempty"` // packs no index lists (harmless, e.g. after a crash)
}

// OK reports whether no damage was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type badBlob struct {
	why  string
	prob int // index into Problems
}

// Check runs the checks and returns what it found. An error means the
// check itself could not run (no access), not that damage was found.
func Check(ctx context.Context, r *repo.Repository, opts Options) (*Report, error) {
	rep := &Report{Problems: []Problem{}}
	addProblem := func(p Problem) int {
		rep.Problems = append(rep.Problems, p)
		return len(rep.Problems) - 1
	}
	// snapshots first, then the index (read order is the reverse of the
	// write order)
	var snaps []*repo.Snapshot
	if err := r.List(ctx, backend.SnapshotFile, func(id repo.ID, _ int64) error {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			addProblem(Problem{Kind: "snapshot", Object: id.String(), Err: err.Error()})
			return nil
		}
		snaps = append(snaps, sn)
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Snapshots = len(snaps)
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].Time.Before(snaps[j].Time) })

	idx := r.Index()
	// blob → index file, to attribute a damaged index file
	var idxIDs []repo.ID
	if err := r.List(ctx, backend.IndexFile, func(id repo.ID, _ int64) error {
		idxIDs = append(idxIDs, id)
		return nil
	}); err != nil {
		return nil, err
	}
	indexed := map[repo.ID][]repo.PackedBlob{} // pack → blobs, from the index files
	for _, id := range idxIDs {
		f, err := r.LoadIndexFile(ctx, id)
		if err != nil {
			addProblem(Problem{Kind: "index", Object: id.String(), Err: err.Error() + " (its blobs may be missing from the index; `restic repair index` rebuilds it)"})
			continue
		}
		for _, p := range f.Packs {
			for _, b := range p.Blobs {
				pb := repo.PackedBlob{BlobHandle: repo.BlobHandle{ID: b.ID, Type: b.Type}, Pack: p.ID,
					Offset: uint32(b.Offset), Length: uint32(b.Length), UncompressedLength: uint32(b.UncompressedLength)}
				idx.Add(pb)
				indexed[p.ID] = append(indexed[p.ID], pb)
			}
		}
	}

	sizes := map[repo.ID]int64{}
	if err := r.List(ctx, backend.PackFile, func(id repo.ID, size int64) error {
		sizes[id] = size
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Packs = len(sizes)
	bad := map[repo.BlobHandle]badBlob{}
	packIDs := make([]repo.ID, 0, len(indexed))
	for id := range indexed {
		packIDs = append(packIDs, id)
	}
	sort.Slice(packIDs, func(i, j int) bool { return bytes.Compare(packIDs[i][:], packIDs[j][:]) < 0 })
	for _, id := range packIDs {
		if _, ok := sizes[id]; !ok {
			p := addProblem(Problem{Kind: "pack", Object: id.String(), Err: "pack is listed in the index but missing"})
			for _, b := range indexed[id] {
				bad[b.BlobHandle] = badBlob{"in missing pack " + id.Str(), p}
			}
		}
	}
	for id := range sizes {
		if _, ok := indexed[id]; !ok {
			rep.Unreferenced = append(rep.Unreferenced, id.String())
		}
	}
	sort.Strings(rep.Unreferenced)

	if opts.ReadData {
		var toRead []repo.ID
		for _, id := range packIDs {
			if _, ok := sizes[id]; !ok {
				continue
			}
			if opts.SubsetT > 0 && int(id[0])%opts.SubsetT != opts.SubsetN-1 {
				continue
			}
			toRead = append(toRead, id)
		}
		// two packs at a time: reading, hashing and decrypting one pack is
		// one core's work
		var mu sync.Mutex
		done := 0
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(2)
		for _, id := range toRead {
			g.Go(func() error {
				blobs, n, perr := readPack(gctx, r, id, sizes[id], indexed[id])
				if err := gctx.Err(); err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(toRead))
				}
				rep.PacksRead++
				rep.BytesRead += n
				rep.BlobsRead += len(indexed[id])
				if perr.packErr != "" {
					p := addProblem(Problem{Kind: "pack", Object: id.String(), Err: perr.packErr})
					if perr.whole {
						for _, b := range indexed[id] {
							if _, ok := bad[b.BlobHandle]; !ok {
								bad[b.BlobHandle] = badBlob{"in damaged pack " + id.Str(), p}
							}
						}
					}
				}
				for bh, why := range blobs {
					p := addProblem(Problem{Kind: "blob", Object: bh.Type.String() + " " + bh.ID.String(), Err: why})
					bad[bh] = badBlob{why, p}
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			opts.Progress(len(toRead), len(toRead))
		}
	}

	// walk every snapshot: trees readable, blobs indexed, damage attributed
	seenTree := map[repo.ID]bool{}
	for _, sn := range snaps {
		label := "snapshot " + sn.ID.Str()
		var walk func(id repo.ID, dir string)
		walk = func(id repo.ID, dir string) {
			if b, ok := bad[repo.BlobHandle{ID: id, Type: repo.TreeBlob}]; ok {
				rep.Problems[b.prob].Hits = append(rep.Problems[b.prob].Hits, label+": "+dir+" (whole directory)")
				return
			}
			t, err := r.LoadTree(ctx, id)
			if err != nil {
				p := addProblem(Problem{Kind: "tree", Object: id.String(), Err: err.Error()})
				bad[repo.BlobHandle{ID: id, Type: repo.TreeBlob}] = badBlob{err.Error(), p}
				rep.Problems[p].Hits = append(rep.Problems[p].Hits, label+": "+dir+" (whole directory)")
				return
			}
			// a tree shared by snapshots is walked for each, so that
			// damage lists every snapshot it touches
			seenTree[id] = true
			for _, n := range t.Nodes {
				p := path.Join(dir, n.Name)
				switch {
				case n.Type == repo.NodeDir && n.Subtree != nil:
					walk(*n.Subtree, p)
				case n.Type == repo.NodeFile:
					for _, c := range n.Content {
						bh := repo.BlobHandle{ID: c, Type: repo.DataBlob}
						if b, ok := bad[bh]; ok {
							rep.Problems[b.prob].Hits = append(rep.Problems[b.prob].Hits, label+": "+p)
							continue
						}
						if !idx.Has(bh) {
							pi := addProblem(Problem{Kind: "blob", Object: "data " + c.String(), Err: "not in any index"})
							bad[bh] = badBlob{"not indexed", pi}
							rep.Problems[pi].Hits = append(rep.Problems[pi].Hits, label+": "+p)
						}
					}
				}
			}
		}
		walk(*sn.Tree, "/")
	}
	for i := range rep.Problems {
		rep.Problems[i].Hits = dedup(rep.Problems[i].Hits)
	}
	return rep, nil
}

func dedup(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

type packErr struct {
	packErr string
	whole   bool // every blob of the pack is suspect
}

// readPack reads a whole pack (one pack, ~16 MiB, not a whole file),
// checks its hash and header against the index and every blob.
func readPack(ctx context.Context, r *repo.Repository, id repo.ID, size int64, want []repo.PackedBlob) (map[repo.BlobHandle]string, int64, packErr) {
	bad := map[repo.BlobHandle]string{}
	rd, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, 0, 0)
	if err != nil {
		return bad, 0, packErr{err.Error(), true}
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(buf, h), rd)
	rd.Close()
	if err != nil {
		return bad, n, packErr{err.Error(), true}
	}
	data := buf.Bytes()
	var pe packErr
	var sum repo.ID
	h.Sum(sum[:0])
	if sum != id {
		pe.packErr = "pack content does not match its name (the file is damaged)"
	}
	hdrErr := headerCheck(r, id, data, want)
	if hdrErr != "" {
		if pe.packErr != "" {
			pe.packErr += "; "
		}
		pe.packErr += hdrErr
		// the blobs may still read through the index, but the pack can no
		// longer be re-indexed or repacked: everything in it is at risk
		pe.whole = true
	}
	for _, b := range want {
		if int64(b.Offset)+int64(b.Length) > int64(len(data)) {
			bad[b.BlobHandle] = "blob lies beyond the end of pack " + id.Str()
			continue
		}
		// decrypting in place is fine: the pack buffer is not used again
		// (hash and header were checked above) and blobs do not overlap
		if _, err := r.OpenBlob(b, data[b.Offset:b.Offset+b.Length:b.Offset+b.Length]); err != nil {
			bad[b.BlobHandle] = err.Error()
		}
	}
	return bad, n, pe
}

func headerCheck(r *repo.Repository, id repo.ID, data []byte, want []repo.PackedBlob) string {
	if len(data) < 4+crypto.Extension {
		return "pack too small for a header"
	}
	hl := int(binary.LittleEndian.Uint32(data[len(data)-4:]))
	if hl < crypto.Extension || hl > len(data)-4 {
		return fmt.Sprintf("header length field %d does not fit the pack's %d bytes", hl, len(data))
	}
	blobs, err := r.OpenPackHeader(id, data[len(data)-4-hl:len(data)-4])
	if err != nil {
		return "header: " + err.Error()
	}
	var end int64
	got := map[repo.PackedBlob]bool{}
	for _, b := range blobs {
		end += int64(b.Length)
		got[b] = true
	}
	if end != int64(len(data)-4-hl) {
		return fmt.Sprintf("header describes %d bytes of blobs, the pack holds %d", end, len(data)-4-hl)
	}
	for _, w := range want {
		if !got[w] {
			return fmt.Sprintf("index entry for blob %s does not match the pack header", w.ID.Str())
		}
	}
	return ""
}
