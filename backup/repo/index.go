package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

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

// entry is one blob in memory: 48 bytes. The ID's first byte is implied
// by the bucket (whose number is the ID's first 10 bits), so it is not
// stored.
type entry struct {
	id     [31]byte
	typ    BlobType
	pack   uint32
	offset uint32
	length uint32
	ulen   uint32
}

const (
	nBuckets  = 1 << 10
	entrySz   = int(unsafe.Sizeof(entry{}))
	firstSize = 4096 // bytes mapped for a bucket's first entries
)

// bucket keeps its entries outside the Go heap, in an anonymous mapping
// grown with mremap: no garbage collector scans or copies it, growth
// leaves no garbage behind, and the untouched tail of a mapping costs
// address space, not memory. RSS is about 48 bytes per blob.
type bucket struct {
	mem    []byte
	e      []entry
	sorted bool
}

func (bk *bucket) grow() {
	var err error
	if bk.mem == nil {
		bk.mem, err = unix.Mmap(-1, 0, firstSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	} else {
		bk.mem, err = unix.Mremap(bk.mem, 2*len(bk.mem), unix.MREMAP_MAYMOVE)
	}
	if err != nil {
		panic(fmt.Sprintf("index: cannot map memory: %v", err))
	}
	n := len(bk.e)
	bk.e = unsafe.Slice((*entry)(unsafe.Pointer(&bk.mem[0])), len(bk.mem)/entrySz)[:n]
}

// Index maps blob IDs to where they are stored, in 1,024 buckets (by the
// ID's first 10 bits) of fixed-size entries without pointers, kept
// outside the Go heap and sorted on demand. Free releases the memory; an
// Index that is garbage collected releases it too.
type Index struct {
	mu      sync.Mutex
	buckets *[nBuckets]bucket
	packs   []ID
	inPack  []int // entries per pack, by the pack's number
	packIdx map[ID]uint32
	n       int
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	x := &Index{buckets: new([nBuckets]bucket), packIdx: map[ID]uint32{}}
	runtime.AddCleanup(x, freeBuckets, x.buckets)
	return x
}

func freeBuckets(b *[nBuckets]bucket) {
	for i := range b {
		if b[i].mem != nil {
			_ = unix.Munmap(b[i].mem)
			b[i] = bucket{}
		}
	}
}

// Free releases the index's memory; the index is empty afterwards.
func (x *Index) Free() {
	x.mu.Lock()
	defer x.mu.Unlock()
	freeBuckets(x.buckets)
	x.packs, x.inPack, x.packIdx, x.n = nil, nil, map[ID]uint32{}, 0
}

func split(id ID) (int, [31]byte) {
	var rest [31]byte
	copy(rest[:], id[1:])
	return int(id[0])<<2 | int(id[1])>>6, rest
}

// Add records a blob's location. Adding a blob again with another pack
// keeps both (Lookup returns one of them).
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
		x.inPack = append(x.inPack, 0)
		x.packIdx[pb.Pack] = p
	}
	x.inPack[p]++
	b, rest := split(pb.ID)
	bk := &x.buckets[b]
	if len(bk.e) == cap(bk.e) {
		bk.grow()
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
		slices.SortFunc(bk.e, cmpEntry)
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

// Remove drops the entry of blob pb in pack pb.Pack, if there is one;
// the blob's other copies stay. It reports whether it dropped one.
func (x *Index) Remove(pb PackedBlob) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	p, ok := x.packIdx[pb.Pack]
	if !ok {
		return false
	}
	bk, i, ok := x.find(pb.BlobHandle)
	if !ok {
		return false
	}
	_, rest := split(pb.ID)
	for ; i < len(bk.e) && bk.e[i].id == rest && bk.e[i].typ == pb.Type; i++ {
		if bk.e[i].pack == p {
			// the order stays sorted; the pack keeps its number (other
			// entries name it by number)
			bk.e = append(bk.e[:i], bk.e[i+1:]...)
			x.inPack[p]--
			x.n--
			return true
		}
	}
	return false
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
	out := make([]ID, 0, len(x.packs))
	for p, id := range x.packs {
		if x.inPack[p] > 0 {
			out = append(out, id)
		}
	}
	return out
}

// Each calls fn for every entry, in no particular order.
func (x *Index) Each(fn func(PackedBlob) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for b := range x.buckets {
		for _, e := range x.buckets[b].e {
			var id ID
			id[0] = byte(b >> 2)
			copy(id[1:], e.id[:])
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
