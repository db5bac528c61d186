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
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"slices"
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
	// the same entry in two index files (a prune stopped between
	// writing the new index and removing the old, as restic's can be)
	// is one entry, not two blobs overlapping
	seen := map[repo.PackedBlob]bool{}
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
				if seen[pb] {
					continue
				}
				seen[pb] = true
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
				// a conflicting lock found meanwhile (LockSharedAsync)
				// stops the reading now: what it would find is not
				// reported anyway
				if err := r.LockLost(); err != nil {
					return err
				}
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

// readPack streams a pack once: every blob the index lists is read,
// decrypted and hashed in offset order, the rest (normally the header) is
// kept to check the header against the index, and the whole stream is
// hashed against the pack's name. Memory is one blob, not one pack.
func readPack(ctx context.Context, r *repo.Repository, id repo.ID, size int64, want []repo.PackedBlob) (map[repo.BlobHandle]string, int64, packErr) {
	bad := map[repo.BlobHandle]string{}
	rd, err := r.Backend().Load(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, 0, 0)
	if err != nil {
		return bad, 0, packErr{err.Error(), true}
	}
	defer rd.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(rd, h), 1<<20)
	sorted := slices.Clone(want)
	slices.SortFunc(sorted, func(a, b repo.PackedBlob) int { return cmp.Compare(a.Offset, b.Offset) })
	bp := blobBufs.Get().(*[]byte)
	defer blobBufs.Put(bp)
	op := blobBufs.Get().(*[]byte)
	defer blobBufs.Put(op)
	var pos int64
	for _, b := range sorted {
		off, end := int64(b.Offset), int64(b.Offset)+int64(b.Length)
		switch {
		case end > size:
			bad[b.BlobHandle] = "blob lies beyond the end of pack " + id.Str()
			continue
		case off < pos:
			bad[b.BlobHandle] = "blob overlaps another in pack " + id.Str()
			continue
		}
		if _, err := br.Discard(int(off - pos)); err != nil {
			return bad, pos, packErr{"read: " + err.Error(), true}
		}
		if cap(*bp) < int(b.Length) {
			*bp = make([]byte, b.Length)
		}
		sealed := (*bp)[:b.Length]
		if _, err := io.ReadFull(br, sealed); err != nil {
			return bad, off, packErr{"read: " + err.Error(), true}
		}
		pos = end
		out, err := r.OpenBlob(b, sealed, *op)
		if err != nil {
			bad[b.BlobHandle] = err.Error()
			continue
		}
		*op = out[:0]
	}
	// the rest of the pack: the header and its length (plus any blobs no
	// index lists); bounded so a damaged pack cannot make us hoard memory
	rest := size - pos
	if rest > maxTail {
		n, _ := io.Copy(io.Discard, br)
		return bad, pos + n, packErr{fmt.Sprintf("%d bytes after the last indexed blob: header unreadable", rest), true}
	}
	tail := make([]byte, rest)
	if _, err := io.ReadFull(br, tail); err != nil {
		return bad, pos, packErr{"read: " + err.Error(), true}
	}
	var pe packErr
	var sum repo.ID
	h.Sum(sum[:0])
	if sum != id {
		pe.packErr = "pack content does not match its name (the file is damaged)"
	}
	if hdrErr := headerCheck(r, id, size, tail, want); hdrErr != "" {
		if pe.packErr != "" {
			pe.packErr += "; "
		}
		pe.packErr += hdrErr
		// the blobs may still read through the index, but the pack can no
		// longer be re-indexed or repacked: everything in it is at risk
		pe.whole = true
	}
	return bad, size, pe
}

// maxTail bounds what is kept of a pack after its last indexed blob.
const maxTail = 16 << 20

var blobBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// headerCheck checks the header at the end of a pack of size bytes, of
// which tail holds the last bytes, against the index entries.
func headerCheck(r *repo.Repository, id repo.ID, size int64, tail []byte, want []repo.PackedBlob) string {
	if len(tail) < 4+crypto.Extension {
		return "pack too small for a header"
	}
	hl := int(binary.LittleEndian.Uint32(tail[len(tail)-4:]))
	if hl < crypto.Extension || hl > len(tail)-4 {
		return fmt.Sprintf("header length field %d does not fit the pack's %d bytes", hl, size)
	}
	blobs, err := r.OpenPackHeader(id, append([]byte(nil), tail[len(tail)-4-hl:len(tail)-4]...))
	if err != nil {
		return "header: " + err.Error()
	}
	var end int64
	got := map[repo.PackedBlob]bool{}
	for _, b := range blobs {
		end += int64(b.Length)
		got[b] = true
	}
	if end != size-4-int64(hl) {
		return fmt.Sprintf("header describes %d bytes of blobs, the pack holds %d", end, size-4-int64(hl))
	}
	for _, w := range want {
		if !got[w] {
			return fmt.Sprintf("index entry for blob %s does not match the pack header", w.ID.Str())
		}
	}
	return ""
}
