package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/holiday-ops/holiday/backup/backend"
)

// PackedBlob says where a blob is stored.
type PackedBlob struct {
	BlobHandle
	Pack               ID
	Offset             uint32
	Length             uint32 // encrypted length in the pack
	UncompressedLength uint32 // 0 when the blob is stored uncompressed
}

// entry is one blob in memory: 48 bytes. The first two bytes of the ID are
// the bucket number, so they are not stored.
type entry struct {
	id     [30]byte
	typ    BlobType
	_      uint8
	pack   uint32
	offset uint32
	length uint32
	ulen   uint32
}

const nBuckets = 1 << 16

type bucket struct {
	e      []entry
	sorted bool
}

// Index maps blob IDs to where they are stored. It holds about 50 bytes
// per blob: 65,536 buckets (by the ID's first two bytes) of fixed-size
// entries without pointers, sorted on demand and grown by a quarter at a
// time rather than doubled, so that the garbage collector never scans
// them and slack stays small.
type Index struct {
	mu      sync.Mutex
	buckets []bucket
	packs   []ID
	packIdx map[ID]uint32
	n       int
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{buckets: make([]bucket, nBuckets), packIdx: map[ID]uint32{}}
}

func split(id ID) (int, [30]byte) {
	var rest [30]byte
	copy(rest[:], id[2:])
	return int(id[0])<<8 | int(id[1]), rest
}

// Add records a blob's location. Adding a blob again with another pack
// keeps both (the first stays the one Lookup returns).
func (x *Index) Add(pb PackedBlob) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.addLocked(pb)
}

func (x *Index) addLocked(pb PackedBlob) {
	p, ok := x.packIdx[pb.Pack]
	if !ok {
		p = uint32(len(x.packs))
		x.packs = append(x.packs, pb.Pack)
		x.packIdx[pb.Pack] = p
	}
	b, rest := split(pb.ID)
	bk := &x.buckets[b]
	if len(bk.e) == cap(bk.e) {
		n := make([]entry, len(bk.e), cap(bk.e)+cap(bk.e)/4+2)
		copy(n, bk.e)
		bk.e = n
	}
	bk.e = append(bk.e, entry{id: rest, typ: pb.Type, pack: p, offset: pb.Offset, length: pb.Length, ulen: pb.UncompressedLength})
	bk.sorted = len(bk.e) == 1 || (bk.sorted && cmpEntry(bk.e[len(bk.e)-2], bk.e[len(bk.e)-1]) <= 0)
	x.n++
}

func cmpEntry(a, b entry) int {
	if c := slices.Compare(a.id[:], b.id[:]); c != 0 {
		return c
	}
	return int(a.typ) - int(b.typ)
}

func (x *Index) find(h BlobHandle) (*bucket, int, bool) {
	b, rest := split(h.ID)
	bk := &x.buckets[b]
	if !bk.sorted {
		slices.SortStableFunc(bk.e, cmpEntry)
		bk.sorted = true
	}
	i, ok := slices.BinarySearchFunc(bk.e, entry{id: rest, typ: h.Type}, cmpEntry)
	return bk, i, ok
}

func (x *Index) packed(h BlobHandle, e entry) PackedBlob {
	return PackedBlob{BlobHandle: h, Pack: x.packs[e.pack], Offset: e.offset, Length: e.length, UncompressedLength: e.ulen}
}

// Lookup returns where a blob is stored.
func (x *Index) Lookup(h BlobHandle) (PackedBlob, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	bk, i, ok := x.find(h)
	if !ok {
		return PackedBlob{}, false
	}
	return x.packed(h, bk.e[i]), true
}

// LookupAll returns every stored copy of a blob.
func (x *Index) LookupAll(h BlobHandle) []PackedBlob {
	x.mu.Lock()
	defer x.mu.Unlock()
	bk, i, ok := x.find(h)
	if !ok {
		return nil
	}
	var out []PackedBlob
	_, rest := split(h.ID)
	for ; i < len(bk.e) && bk.e[i].id == rest && bk.e[i].typ == h.Type; i++ {
		out = append(out, x.packed(h, bk.e[i]))
	}
	return out
}

// Has reports whether the blob is indexed.
func (x *Index) Has(h BlobHandle) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, _, ok := x.find(h)
	return ok
}

// Len is the number of entries.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.n
}

// Packs returns the IDs of all packs the index references.
func (x *Index) Packs() []ID {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.packs)
}

// Each calls fn for every entry, in no particular order.
func (x *Index) Each(fn func(PackedBlob) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for b := range x.buckets {
		for _, e := range x.buckets[b].e {
			var id ID
			id[0], id[1] = byte(b>>8), byte(b)
			copy(id[2:], e.id[:])
			if !fn(x.packed(BlobHandle{ID: id, Type: e.typ}, e)) {
				return
			}
		}
	}
}

// IndexFile is an index file's JSON document.
type IndexFile struct {
	Supersedes []ID       `json:"supersedes,omitempty"`
	Packs      []PackJSON `json:"packs"`
}

// PackJSON lists the blobs of one pack.
type PackJSON struct {
	ID    ID         `json:"id"`
	Blobs []BlobJSON `json:"blobs"`
}

// BlobJSON is one blob in an index file.
type BlobJSON struct {
	ID                 ID       `json:"id"`
	Type               BlobType `json:"type"`
	Offset             uint     `json:"offset"`
	Length             uint     `json:"length"`
	UncompressedLength uint     `json:"uncompressed_length,omitempty"`
}

// LoadIndexFile reads and decodes one index file.
func (r *Repository) LoadIndexFile(ctx context.Context, id ID) (*IndexFile, error) {
	buf, err := r.LoadUnpacked(ctx, backend.IndexFile, id)
	if err != nil {
		return nil, err
	}
	var f IndexFile
	if err := json.Unmarshal(buf, &f); err != nil {
		return nil, fmt.Errorf("index %s: %w", id.Str(), err)
	}
	return &f, nil
}

// LoadIndex reads every index file into the in-memory index. An index
// file that cannot be read is an error naming it.
func (r *Repository) LoadIndex(ctx context.Context) error {
	var ids []ID
	if err := r.List(ctx, backend.IndexFile, func(id ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return fmt.Errorf("list index files: %w", err)
	}
	for _, id := range ids {
		f, err := r.LoadIndexFile(ctx, id)
		if err != nil {
			return fmt.Errorf("load index %s: %w", id.Str(), err)
		}
		r.idx.addFile(f)
	}
	return nil
}

func (x *Index) addFile(f *IndexFile) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, p := range f.Packs {
		for _, b := range p.Blobs {
			x.addLocked(PackedBlob{BlobHandle: BlobHandle{ID: b.ID, Type: b.Type}, Pack: p.ID,
				Offset: uint32(b.Offset), Length: uint32(b.Length), UncompressedLength: uint32(b.UncompressedLength)})
		}
	}
}
