package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/crypto"
)

// The read-back of written packs: a backup is verified against what the
// storage holds, not what was in memory (a store that lost or mangled
// bytes is caught before anything relies on the backup), and the reading
// overlaps the writing instead of following it.

// VerifyWrites turns on the read-back of every pack this repository
// stores from now on. Once a pack is stored, a background reader loads it
// back from the backend in one sequential read and checks it: its size,
// its header (MAC, and that it lists exactly the blobs written into it,
// in their places), and every blob decrypted (MAC), decompressed and
// hashed against its ID, a tree blob also parsed. WaitVerified reports
// the outcome per blob. There are at most GOMAXPROCS readers, each
// holding one pack (16 MiB, more only for a blob larger than that) and
// one blob's plaintext. ctx bounds the read-backs of the packs stored
// while it lasts: once it is done, such a pack not read back yet fails
// with its cause. Calling it again does nothing while that context
// lasts; once it has ended (the run it bounded is over), the new ctx
// bounds the packs stored from then on, so one process can run one run
// after another on a repository.
//
// A copy that fails its read-back leaves the in-memory index at once, so
// a later SaveBlob of the blob stores it again instead of deduplicating
// against it. A pack whose read-back failed before an index file listed
// it is never listed (a pack is listed whole or not at all: restic's
// check compares a pack's size with the blobs its index lists); its
// sound blobs, if any, are stored again by the next Flush, before it
// writes the index. No index file lists a pack before its verdict is in
// (Flush waits for the last ones): a damaged copy listed would be
// trusted by every later run, which would deduplicate against it for
// good. A pack that fails in part when nothing can be stored again any
// more (the run's last index is due) is dropped whole; its sound blobs
// leave the index with it, and the next save stores them.
//
// The backend must let a Load see a file as soon as its Save returned:
// the local backend links a complete, synced file into place, and S3
// (AWS, versitygw) gives read-after-write consistency for new objects.
func (r *Repository) VerifyWrites(ctx context.Context) {
	if r.rb.CompareAndSwap(nil, &readBack{ctx: ctx, r: r, packs: map[ID]*packCheck{}, failed: map[BlobHandle]error{}, max: runtime.GOMAXPROCS(0)}) {
		return
	}
	rb := r.rb.Load()
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.ctx.Err() != nil {
		rb.ctx = ctx
	}
}

// readBack holds the checks of the packs stored since VerifyWrites.
type readBack struct {
	ctx     context.Context // of the packs registered from now on (mu)
	r       *Repository
	max     int // readers
	mu      sync.Mutex
	packs   map[ID]*packCheck
	queue   []*packCheck // stored, not read back yet
	readers int
	// failed says why a blob's copy left the index: its first failure
	failed map[BlobHandle]error
	// again: the blobs stored again, each with the pack whose read-back
	// failed (a pack holding one is not stored again: once is enough)
	again   map[BlobHandle]ID
	checked atomic.Int64 // blobs checked, sound or not
}

// packCheck is one pack's read-back: done is closed when it is over;
// then err says why the pack as a whole failed (its read, size or
// header: every blob in it is unverified), and bad the blobs that failed
// on their own. listed is set once an index file lists the pack.
type packCheck struct {
	ctx    context.Context // bounds its read-back
	id     ID
	size   int
	blobs  []PackedBlob // as written, in order; dropped once found sound
	tags   []byte       // their MACs as written, crypto.MACSize bytes each
	done   chan struct{}
	err    error
	bad    map[BlobHandle]error
	listed atomic.Bool
}

// register records a pack that was just stored, before its blobs are
// indexed: whoever finds a blob in the index finds its pack's check too.
// start then queues it for its read-back.
func (rb *readBack) register(id ID, size int, blobs []PackedBlob, tags []byte) *packCheck {
	c := &packCheck{id: id, size: size, blobs: slices.Clone(blobs), tags: slices.Clone(tags), done: make(chan struct{})}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	c.ctx = rb.ctx
	rb.packs[id] = c
	return c
}

// start queues a registered pack, once its blobs are indexed (a failed
// read-back takes them out again).
func (rb *readBack) start(c *packCheck) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.queue = append(rb.queue, c)
	if rb.readers < rb.max {
		rb.readers++
		go rb.read()
	}
}

// check is the read-back of pack id, or nil when it was not stored
// since VerifyWrites.
func (rb *readBack) check(id ID) *packCheck {
	if rb == nil {
		return nil
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.packs[id]
}

// failure is why blob bh's copy left the index, or nil.
func (rb *readBack) failure(bh BlobHandle) error {
	if rb == nil {
		return nil
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.failed[bh]
}

// storedAgain records that bh, sound in pack from whose read-back
// failed, is being stored again.
func (rb *readBack) storedAgain(bh BlobHandle, from ID) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.again == nil {
		rb.again = map[BlobHandle]ID{}
	}
	rb.again[bh] = from
}

// holdsStoredAgain says whether a pack holds a blob stored again.
func (rb *readBack) holdsStoredAgain(c *packCheck) bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for _, pb := range c.blobs {
		if _, ok := rb.again[pb.BlobHandle]; ok {
			return true
		}
	}
	return false
}

// storedAgainFrom is the pack whose failed read-back had bh stored again.
func (rb *readBack) storedAgainFrom(bh BlobHandle) (ID, bool) {
	if rb == nil {
		return ID{}, false
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	id, ok := rb.again[bh]
	return id, ok
}

// fail records why bh's copy left the index (the first reason stays).
func (rb *readBack) fail(bh BlobHandle, err error) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.failed[bh] == nil {
		rb.failed[bh] = err
	}
}

// packBufs and plainBufs are the readers' buffers (a pack; a compressed
// blob's plaintext): a reader exits when nothing is queued, its buffers
// stay for the next.
var packBufs, plainBufs = sync.Pool{New: func() any { return new([]byte) }}, sync.Pool{New: func() any { return new([]byte) }}

// read is one reader: it checks queued packs until none is left.
func (rb *readBack) read() {
	pack, plain := packBufs.Get().(*[]byte), plainBufs.Get().(*[]byte)
	defer packBufs.Put(pack)
	defer plainBufs.Put(plain)
	for {
		rb.mu.Lock()
		if len(rb.queue) == 0 {
			rb.readers--
			rb.mu.Unlock()
			return
		}
		c := rb.queue[0]
		rb.queue[0] = nil
		rb.queue = rb.queue[1:]
		rb.mu.Unlock()
		c.err = rb.checkPack(c, pack, plain)
		rb.settle(c)
		close(c.done)
	}
}

// checkPack reads a pack back and checks it, recording the blobs that
// fail on their own in c.bad; the error is the pack's as a whole.
func (rb *readBack) checkPack(c *packCheck, pack, plain *[]byte) error {
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("not read back: %w", context.Cause(c.ctx))
	}
	r := rb.r
	rd, err := r.be.Load(c.ctx, backend.Handle{Type: backend.PackFile, Name: c.id.String()}, 0, 0)
	if err != nil {
		return err
	}
	// one byte more than written: a longer file is caught too
	if cap(*pack) < c.size+1 {
		*pack = make([]byte, c.size+1)
	}
	b := (*pack)[:c.size+1]
	n, err := io.ReadFull(rd, b)
	rd.Close()
	switch {
	case err == nil:
		return fmt.Errorf("the stored pack is longer than the %d bytes written", c.size)
	case !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return err
	case n != c.size:
		return fmt.Errorf("the stored pack holds %d of the %d bytes written", n, c.size)
	}
	b = b[:c.size]

	// the header: its length, MAC and entries, exactly as written
	var end int
	for _, pb := range c.blobs {
		end += int(pb.Length)
	}
	hl := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
	if hl != len(b)-4-end {
		return fmt.Errorf("header length %d, %d written: %w", hl, len(b)-4-end, ErrPackHeader)
	}
	sealed := b[end : end+hl]
	hdr, err := r.key.Open(sealed[crypto.Extension-16:crypto.Extension-16], sealed) // in place
	if err != nil {
		return fmt.Errorf("header: %w: %w", err, ErrPackHeader)
	}
	listed, err := ParsePackHeader(hdr, c.id)
	if err != nil {
		return fmt.Errorf("%w: %w", err, ErrPackHeader)
	}
	if !slices.Equal(listed, c.blobs) {
		return fmt.Errorf("the header lists other blobs than were written into the pack: %w", ErrPackHeader)
	}

	// every blob, decrypted where it lies
	for i, pb := range c.blobs {
		rb.checked.Add(1)
		var pt []byte
		if pb.Type == DataBlob && pb.UncompressedLength == 0 {
			pt, err = r.readBackData(pb, b[pb.Offset:pb.Offset+pb.Length], c.tags[i*crypto.MACSize:(i+1)*crypto.MACSize])
		} else {
			pt, err = r.openBlob(pb, b[pb.Offset:pb.Offset+pb.Length], (*plain)[:0], true)
		}
		if err == nil && pb.Type == TreeBlob {
			if _, err = DecodeTree(pt, pb.ID); err != nil {
				err = fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), c.id.Str(), err)
			}
		}
		if pb.UncompressedLength > 0 && cap(pt) > cap(*plain) {
			*plain = pt[:0] // a decompressed blob grew the buffer: keep it
		}
		if err != nil {
			if c.bad == nil {
				c.bad = map[BlobHandle]error{}
			}
			c.bad[pb.BlobHandle] = err
		}
	}
	return nil
}

// settle acts on a pack's verdict, before anyone waiting learns it: the
// copies that failed leave the in-memory index, so that a later save
// stores their blobs again. A failed pack keeps its blob list for Flush
// (sortIndex), which leaves it out of the index file.
func (rb *readBack) settle(c *packCheck) {
	if !c.failed() {
		c.blobs, c.tags = nil, nil
		return
	}
	for _, pb := range c.blobs {
		if err := c.blobErr(pb.BlobHandle); err != nil {
			rb.r.idx.Remove(pb)
			rb.fail(pb.BlobHandle, err)
		}
	}
}

// abandon takes the sound blobs of a pack that failed in part out of the
// in-memory index, with the reason: the pack is listed in no index file
// (one lists a pack whole or not at all), and it holds blobs stored
// again after an earlier failure, or the run's last index is due (blobs
// are stored again once).
func (rb *readBack) abandon(c *packCheck) {
	for _, pb := range c.blobs {
		if c.blobErr(pb.BlobHandle) != nil {
			continue // left with its own verdict
		}
		rb.r.idx.Remove(pb)
		rb.fail(pb.BlobHandle, fmt.Errorf("%v blob %s: its pack %s failed its read-back in part (%d blobs in it damaged) after blobs had been stored again once; no index lists that pack, the next backup stores the blob again",
			pb.Type, pb.ID.Str(), c.id.Str(), len(c.bad)))
	}
}

// failed says whether any blob of a checked pack failed.
func (c *packCheck) failed() bool { return c.err != nil || len(c.bad) > 0 }

// over says whether the pack's verdict is in.
func (c *packCheck) over() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// blobErr is why blob bh of a checked pack is not verified, or nil.
func (c *packCheck) blobErr(bh BlobHandle) error {
	if c.err != nil {
		return fmt.Errorf("%v blob %s in pack %s: reading the pack back: %w", bh.Type, bh.ID.Str(), c.id.Str(), c.err)
	}
	return c.bad[bh]
}

// WaitVerified waits until every blob in blobs is verified and returns
// why any is not, naming the blob and its pack (the first failure, and
// how many more). A blob is verified by the read-back of a pack holding
// it that was stored since VerifyWrites, once an index file lists that
// pack (a blob whose copy failed and left the index, then was stored
// again, is not vouched for by a copy a crash would leave unreferenced);
// a blob that only packs stored otherwise hold (an earlier run's, or
// before VerifyWrites) is read and checked now, as LoadBlob does, in
// parallel. A blob whose only copy failed is reported with that failure
// although it left the index. Every blob must be in the index (Flush
// first). Each pack is waited for once whatever the number of its blobs
// asked about; ctx ends the wait, not the read-backs.
func (r *Repository) WaitVerified(ctx context.Context, blobs []BlobHandle) error {
	return r.waitVerified(ctx, blobs, true)
}

// WaitReadBack is WaitVerified for blobs a backup relied on without
// storing them (found in the index or in a pack being written): it waits
// for the read-backs of the packs stored since VerifyWrites that hold
// them, and takes a blob that only packs stored otherwise hold as
// verified, reading nothing: an index file lists a pack only once its
// read-back passed, and a pack written without read-back was checked
// before its snapshot was (hostbackup).
func (r *Repository) WaitReadBack(ctx context.Context, blobs []BlobHandle) error {
	return r.waitVerified(ctx, blobs, false)
}

func (r *Repository) waitVerified(ctx context.Context, blobs []BlobHandle, loadOthers bool) error {
	rb := r.rb.Load()
	var errs []error
	var now []BlobHandle // in no pack read back since VerifyWrites
	for _, bh := range blobs {
		var failed error
		verified, other := false, false
		for _, pb := range r.idx.LookupAll(bh) {
			c := rb.check(pb.Pack)
			if c == nil {
				other = true
				continue
			}
			select {
			case <-c.done:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			err := c.blobErr(bh)
			if err == nil && !c.listed.Load() {
				err = fmt.Errorf("%v blob %s in pack %s: no index file lists the pack yet", bh.Type, bh.ID.Str(), c.id.Str())
			}
			if err == nil {
				verified = true
				break
			}
			if failed == nil {
				failed = err
			}
		}
		switch {
		case verified:
		case other:
			// a copy the read-back did not see may be sound (LoadBlob
			// tries every copy, as a restore does)
			if loadOthers {
				now = append(now, bh)
			}
		default:
			// the copy relied upon may have left the index since
			if f := rb.failure(bh); f != nil {
				failed = f
			}
			if from, ok := rb.storedAgainFrom(bh); failed == nil && ok {
				failed = fmt.Errorf("%v blob %s: its pack %s failed its read-back, and the flush that stored it again failed (its error says why); the next backup stores it again", bh.Type, bh.ID.Str(), from.Str())
			}
			if failed == nil {
				failed = fmt.Errorf("%v blob %s is not in the index", bh.Type, bh.ID.Str())
			}
			errs = append(errs, failed)
		}
	}
	if len(now) > 0 {
		errs = append(errs, r.loadAll(ctx, now)...)
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return fmt.Errorf("%w (and %d more blobs not verified)", errs[0], len(errs)-1)
}

// WaitVerifiedTree is WaitVerified for a tree and every blob it refers
// to, its subtrees' included: each tree is waited for, then read, then
// its files' content and its subtrees are waited for in turn. It is for
// small snapshots (a baseline, evidence), whose trees it all reads.
func (r *Repository) WaitVerifiedTree(ctx context.Context, root ID) error {
	trees := []ID{root}
	for len(trees) > 0 {
		id := trees[len(trees)-1]
		trees = trees[:len(trees)-1]
		if err := r.WaitVerified(ctx, []BlobHandle{{ID: id, Type: TreeBlob}}); err != nil {
			return err
		}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		var data []BlobHandle
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				data = append(data, BlobHandle{ID: c, Type: DataBlob})
			}
			if n.Subtree != nil {
				trees = append(trees, *n.Subtree)
			}
		}
		if err := r.WaitVerified(ctx, data); err != nil {
			return err
		}
	}
	return nil
}

// loadAll reads and checks blobs in as many runs as there are cores,
// each in the order given (so mostly pack by pack).
func (r *Repository) loadAll(ctx context.Context, blobs []BlobHandle) []error {
	var mu sync.Mutex
	var errs []error
	var g errgroup.Group
	n := runtime.GOMAXPROCS(0)
	for part := range slices.Chunk(blobs, max((len(blobs)+n-1)/n, 1)) {
		g.Go(func() error {
			var buf []byte
			for _, bh := range part {
				if err := ctx.Err(); err != nil {
					return err
				}
				var err error
				if buf, err = r.LoadBlob(ctx, bh.Type, bh.ID, buf); err == nil && bh.Type == TreeBlob {
					_, err = DecodeTree(buf, bh.ID)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// readBackData checks an uncompressed data blob as stored against what
// was written: its MAC is the one written (tag) and it decrypts (in
// place) to bytes whose SHA-256 is its ID. With the plaintext hashed as
// it is, every byte counts — a changed IV or ciphertext changes the
// plaintext, a changed MAC is compared — so the MAC is not computed
// again (Poly1305 was ~0.15 of the ~0.8 CPU-s per GiB the read-back
// took; crypto.Key.DecryptUnchecked). A compressed blob is not checked
// this way: zstd ignores some bits of its frame, so a hash of the
// decompressed bytes does not cover every stored byte, and unverified
// bytes would reach the decoder. It and trees go through openBlob.
func (r *Repository) readBackData(pb PackedBlob, sealed, tag []byte) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	if pb.UncompressedLength != 0 {
		return fail(errors.New("a compressed blob is checked with its MAC"))
	}
	if len(sealed) < crypto.Extension || !bytes.Equal(sealed[len(sealed)-crypto.MACSize:], tag) {
		return fail(fmt.Errorf("its MAC is not the one written: %w", crypto.ErrUnauthenticated))
	}
	out, err := r.key.DecryptUnchecked(sealed)
	if err != nil {
		return fail(err)
	}
	if Hash(out) != pb.ID {
		return fail(errors.New("content does not match its ID"))
	}
	return out, nil
}
