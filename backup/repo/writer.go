package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/crypto"
)

// indexMaxBlobs is when an index file is written during a long backup, so
// that a crash loses little: the packs stay, but unindexed.
const indexMaxBlobs = 50000

type writer struct {
	mu sync.Mutex
	// packers of each blob type: slots[t] holds packerSlots(t) entries,
	// each a packer being filled or nil; a SaveBlob takes one, writes
	// and hashes its blob into it without holding mu, and puts it back,
	// so that workers fill packs side by side
	slots   [3]chan *packer
	pending map[BlobHandle]struct{}
	uploads chan *packer
	g       *errgroup.Group
	gctx    context.Context
	cancel  context.CancelCauseFunc // cancels gctx
	done    []PackJSON
	nDone   int
	// Stats
	added, addedPacked int64
	err                error // the first upload error
}

func (w *writer) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

// failure is why the uploaders stopped.
func (w *writer) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.gctx.Err()
}

// StartWriter sets up the pack writers and uploaders under ctx; SaveBlob
// calls it when needed, but a caller whose SaveBlob contexts are shorter
// lived than the whole write (a worker group's) calls it first.
func (r *Repository) StartWriter(ctx context.Context) { r.startWriter(ctx) }

func (r *Repository) startWriter(ctx context.Context) *writer {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.w != nil {
		return r.w
	}
	wctx, cancel := context.WithCancelCause(ctx)
	g, gctx := errgroup.WithContext(wctx)
	w := &writer{pending: map[BlobHandle]struct{}{}, uploads: make(chan *packer, 1), g: g, gctx: gctx, cancel: cancel}
	for t := range w.slots {
		n := packerSlots(BlobType(t))
		w.slots[t] = make(chan *packer, n)
		for range n {
			w.slots[t] <- nil
		}
	}
	// several uploaders: on a disk whose fsync is slow, they overlap
	for range uploaders {
		g.Go(func() error {
			for p := range w.uploads {
				if err := r.upload(gctx, w, p); err != nil {
					w.fail(err)
					// drain so that senders never block on a dead uploader
					go func() {
						for p := range w.uploads {
							p.discard()
						}
					}()
					return err
				}
			}
			return nil
		})
	}
	r.w = w
	return w
}

// abortWriter stops the pack writing under way, if any, with err: the
// uploads are cancelled and SaveBlob and Flush return err.
func (r *Repository) abortWriter(err error) {
	r.wmu.Lock()
	w := r.w
	r.wmu.Unlock()
	if w != nil {
		w.fail(err)
		w.cancel(err)
	}
}

// uploaders is how many packs are stored at once.
const uploaders = 3

// packerSlots is how many packs of a type are filled at once: one per
// core for data (the blob workers run side by side), at most four (each
// holds a write buffer and leaves a partial pack at the end; four hash
// and write faster than the workers produce); one for trees (few and
// small; one pack keeps them together).
func packerSlots(t BlobType) int {
	if t == DataBlob {
		return min(runtime.GOMAXPROCS(0), 4)
	}
	return 1
}

var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// SaveBlob stores a blob unless the index or a pack being written already
// holds it. The ID must be the SHA-256 of data (ID{} computes it). It
// returns the ID and whether the blob was already known. data is not
// retained. Safe for concurrent use; call Flush when done.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte, id ID) (ID, bool, error) {
	if id.IsNull() {
		id = Hash(data)
	}
	if err := r.LockLost(); err != nil {
		return id, false, err
	}
	w := r.startWriter(ctx)
	bh := BlobHandle{ID: id, Type: t}
	if r.idx.Has(bh) {
		return id, true, nil
	}
	w.mu.Lock()
	if _, ok := w.pending[bh]; ok {
		w.mu.Unlock()
		return id, true, nil
	}
	w.pending[bh] = struct{}{}
	w.mu.Unlock()

	// one scratch buffer: compress into it after room for the IV, then
	// seal in place (CTR may overlap exactly); incompressible data is
	// sealed from the chunk into the same buffer instead, as is data
	// that looks incompressible (not worth zstd's time)
	ulen := 0
	sb := scratch.Get().(*[]byte)
	defer scratch.Put(sb)
	var sealed []byte
	if r.cfg.Version >= 2 && (t != DataBlob || !looksIncompressible(data)) {
		const iv = crypto.Extension - 16
		c := r.encoder().EncodeAll(data, (*sb)[:iv])
		*sb = c[:0]
		if len(c)-iv < len(data) {
			ulen = len(data)
			sealed = r.key.Seal(c[:0], c[iv:])
		}
	}
	if sealed == nil {
		sealed = r.key.Seal((*sb)[:0], data)
	}
	*sb = sealed[:0]
	return id, false, r.addSealed(ctx, w, bh, sealed, ulen, len(data))
}

// SaveSealed stores a blob sealed with this repository's key, as it is
// (pb says its handle, length and uncompressed length): prune's repack
// copies blobs without decrypting, decompressing and compressing them
// again. The MAC is verified first. It returns whether the blob was
// already known (then nothing is stored). sealed is not retained.
func (r *Repository) SaveSealed(ctx context.Context, pb PackedBlob, sealed []byte) (bool, error) {
	if err := r.key.Verify(sealed); err != nil {
		return false, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	if err := r.LockLost(); err != nil {
		return false, err
	}
	w := r.startWriter(ctx)
	bh := pb.BlobHandle
	if r.idx.Has(bh) {
		return true, nil
	}
	w.mu.Lock()
	if _, ok := w.pending[bh]; ok {
		w.mu.Unlock()
		return true, nil
	}
	w.pending[bh] = struct{}{}
	w.mu.Unlock()
	n := int(pb.UncompressedLength)
	if n == 0 {
		n = len(sealed) - crypto.Extension
	}
	return false, r.addSealed(ctx, w, bh, sealed, int(pb.UncompressedLength), n)
}

// addSealed puts a sealed blob (already marked pending) into a pack of
// its type, and sends a pack that is full to the uploaders. plainLen
// counts towards Added.
func (r *Repository) addSealed(ctx context.Context, w *writer, bh BlobHandle, sealed []byte, ulen, plainLen int) error {
	t := bh.Type
	var p *packer
	select {
	case p = <-w.slots[t]:
	case <-w.gctx.Done():
		w.forget(bh)
		return w.failure()
	case <-ctx.Done():
		w.forget(bh)
		return ctx.Err()
	}
	var full *packer
	if p != nil && len(p.entries) > 0 && p.size()+len(sealed) > PackSize {
		full, p = p, nil
	}
	if p == nil {
		var err error
		if p, err = newPacker(r.be); err != nil {
			w.slots[t] <- full // still flushed at the end
			w.forget(bh)
			return err
		}
	}
	p.add(bh, sealed, ulen)
	w.slots[t] <- p
	w.mu.Lock()
	w.added += int64(plainLen)
	w.addedPacked += int64(len(sealed))
	w.mu.Unlock()
	if full != nil {
		// The full pack holds other savers' blobs too (other hosts'),
		// whose saves returned: it is the writer's, and only the
		// writer's end stops its hand-over, not this save's context.
		var err error
		if _, err = full.finish(r.key); err == nil {
			select {
			case w.uploads <- full:
				return nil
			case <-w.gctx.Done():
				err = w.failure()
			}
		}
		// its blobs are lost with it (this one is in the next pack):
		// the writer fails, so that every Flush says so
		w.fail(fmt.Errorf("store pack: %w", err))
		w.forgetPack(full)
		full.discard()
		return err
	}
	return nil
}

// forget drops a blob that will not be stored after all from pending, so
// that a later SaveBlob of it stores it.
func (w *writer) forget(bh BlobHandle) {
	w.mu.Lock()
	delete(w.pending, bh)
	w.mu.Unlock()
}

// forgetPack forgets the blobs of a pack that is discarded.
func (w *writer) forgetPack(p *packer) {
	w.mu.Lock()
	for _, e := range p.entries {
		delete(w.pending, e.BlobHandle)
	}
	w.mu.Unlock()
}

// upload stores one finished pack, then indexes its blobs; every
// indexMaxBlobs blobs an index file is written.
func (r *Repository) upload(ctx context.Context, w *writer, p *packer) error {
	id := p.entries[0].Pack
	err := r.be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, p.f)
	p.discard()
	if err != nil {
		return fmt.Errorf("store pack: %w", err)
	}
	// the read-back is registered before the blobs are indexed (whoever
	// finds a blob in the index finds its pack's check too) and starts
	// after (a failed one takes them out of the index)
	rb := r.rb.Load()
	var c *packCheck
	if rb != nil {
		c = rb.register(id, p.size(), p.entries, p.tags)
	}
	for _, e := range p.entries {
		r.idx.Add(e)
	}
	pj := packJSON(id, p.entries)
	if c != nil {
		rb.start(c)
	}
	w.mu.Lock()
	for _, e := range p.entries {
		delete(w.pending, e.BlobHandle)
	}
	w.done = append(w.done, pj)
	w.nDone += len(pj.Blobs)
	var flush []PackJSON
	if w.nDone >= indexMaxBlobs {
		var wait []PackJSON
		var held []*packCheck
		flush, wait, held = r.sortIndex(w.done, false)
		// a pack still being read back waits for the next index file; one
		// with sound blobs whose read-back failed waits for Flush, which
		// stores those again (nDone counts the blobs added since)
		w.done, w.nDone = wait, 0
		for _, c := range held {
			w.done = append(w.done, packJSON(c.id, c.blobs))
		}
	}
	w.mu.Unlock()
	if flush != nil {
		if err := r.saveIndex(ctx, flush); err != nil {
			w.mu.Lock()
			w.done = append(w.done, flush...) // for the next Flush
			w.mu.Unlock()
			return err
		}
	}
	return nil
}

// sortIndex sorts the packs due in an index file by their read-backs'
// verdicts: it returns those to list (sound, or not read back at all),
// those whose verdict is not in yet (never listed before it is: a
// failure after the listing would leave an index file that every later
// run trusts, deduplicating against the damaged copy for good), and
// those with sound blobs whose read-back failed, which are not listed:
// Flush stores their sound blobs again (storeAgain). A pack without a
// sound blob is dropped: its blobs left the in-memory index with its
// verdict. A pack that failed in part and holds a blob stored again
// already is dropped too (blobs are stored again once), and so is every
// pack that failed in part when final (the run's last index is due): its
// sound blobs leave the index with the reason (the backups that rely on
// them fail; the next run stores them again).
func (r *Repository) sortIndex(packs []PackJSON, final bool) (list, wait []PackJSON, held []*packCheck) {
	rb := r.rb.Load()
	for _, pj := range packs {
		c := rb.check(pj.ID)
		switch {
		case c == nil:
			list = append(list, pj)
			continue
		case !c.over():
			// the verdict is read once: it may come in any moment, and
			// settle empties a sound pack's blob list before it does
			wait = append(wait, pj)
			continue
		}
		switch {
		case !c.failed():
			list = append(list, pj)
		case c.err != nil || len(c.bad) == len(c.blobs):
			// nothing sound in it: unreferenced, prune removes it
		case final || rb.holdsStoredAgain(c):
			rb.abandon(c)
		default:
			held = append(held, c)
		}
	}
	return list, wait, held
}

// storeAgain takes the packs whose read-back failed, with sound blobs,
// out of those due in the next index file and stores their sound blobs
// again, as prune's repack does (read sealed, MAC checked, not
// decrypted): the failed pack is then listed in no index file, and a
// snapshot that relies on its sound blobs finds them in the new pack. A
// sound blob that cannot be stored again stays out of the index, with
// the reason (WaitVerified reports it).
func (r *Repository) storeAgain(ctx context.Context, w *writer) {
	if r.rb.Load() == nil {
		return
	}
	w.mu.Lock()
	list, wait, held := r.sortIndex(w.done, false)
	w.done = append(list, wait...)
	w.mu.Unlock()
	r.resave(ctx, held)
}

// resave stores the sound blobs of packs whose read-back failed in part
// again, through the pack writer (storeAgain's running one, or the one
// Flush starts for them after the last verdicts).
func (r *Repository) resave(ctx context.Context, held []*packCheck) {
	var buf []byte
	for _, c := range held {
		for _, pb := range c.blobs {
			if c.bad[pb.BlobHandle] != nil {
				continue
			}
			r.idx.Remove(pb)
			r.rb.Load().storedAgain(pb.BlobHandle, c.id)
			sealed, err := r.loadSealed(ctx, pb, buf)
			if err == nil {
				buf = sealed
				_, err = r.SaveSealed(ctx, pb, sealed)
			}
			if err != nil {
				r.rb.Load().fail(pb.BlobHandle, fmt.Errorf("%v blob %s: its pack %s failed its read-back (%d blobs in it damaged) and storing it again failed: %w",
					pb.Type, pb.ID.Str(), c.id.Str(), len(c.bad), err))
			}
		}
	}
}

// packJSON is a pack's entry in an index file.
func packJSON(id ID, blobs []PackedBlob) PackJSON {
	pj := PackJSON{ID: id}
	for _, e := range blobs {
		pj.Blobs = append(pj.Blobs, BlobJSON{ID: e.ID, Type: e.Type, Offset: uint(e.Offset), Length: uint(e.Length), UncompressedLength: uint(e.UncompressedLength)})
	}
	return pj
}

// saveIndex writes an index file listing packs, and marks their
// read-backs listed.
func (r *Repository) saveIndex(ctx context.Context, packs []PackJSON) error {
	if len(packs) == 0 {
		return nil
	}
	if r.guard != nil {
		if err := r.guard(); err != nil {
			return err
		}
	}
	buf, err := json.Marshal(IndexFile{Packs: packs})
	if err != nil {
		return err
	}
	if _, err := r.SaveUnpacked(ctx, backend.IndexFile, buf); err != nil {
		return fmt.Errorf("store index: %w", err)
	}
	if rb := r.rb.Load(); rb != nil {
		for _, pj := range packs {
			if c := rb.check(pj.ID); c != nil {
				c.listed.Store(true)
			}
		}
	}
	return nil
}

// Flush stores the packs still being filled, waits for all uploads and
// for the read-backs of the packs stored (VerifyWrites), and writes the
// index for them. After Flush returns nil every blob saved so far is
// durable, and indexed unless its copy failed its read-back (then
// WaitVerified says why); only then may a snapshot refer to them. Packs
// stored whose index file a failed Flush did not write (an upload or
// the index write failed, ctx ended while it waited for a read-back) are
// listed by the next Flush.
func (r *Repository) Flush(ctx context.Context) error {
	index, err := r.flushPacks(ctx, true)
	if err != nil {
		return err
	}
	return index(ctx)
}

// keepUnlisted keeps packs whose index file was not written for the
// next Flush.
func (r *Repository) keepUnlisted(packs []PackJSON) {
	r.wmu.Lock()
	r.unlisted = append(r.unlisted, packs...)
	r.wmu.Unlock()
}

// flushPacks is Flush's first half: it stores the packs still being
// filled and waits for their uploads; the pack writer is then done (the
// next save starts another). The function it returns is the second
// half: it waits for those packs' read-backs (and earlier flushes'
// unlisted ones) and writes the index file for them. A pack whose
// verdict failed in part has its sound blobs stored again first
// (resave), through a writer of their own flushed the same way but with
// mayResave false: blobs are stored again once, a pack of those that fails
// in part is dropped whole, its sound blobs leave the index and the
// backups that rely on them fail.
func (r *Repository) flushPacks(ctx context.Context, mayResave bool) (func(context.Context) error, error) {
	r.wmu.Lock()
	w := r.w
	r.wmu.Unlock()
	var done []PackJSON
	if w != nil {
		var err error
		if done, err = r.drain(ctx, w, mayResave); err != nil {
			r.keepUnlisted(done)
			return func(context.Context) error { return nil }, err
		}
	}
	return func(ctx context.Context) error {
		r.wmu.Lock()
		done = append(r.unlisted, done...)
		r.unlisted = nil
		r.wmu.Unlock()
		// the index file lists only packs read back sound: it waits for
		// the last verdicts (the snapshots wait for them right after)
		if rb := r.rb.Load(); rb != nil {
			for _, pj := range done {
				if c := rb.check(pj.ID); c != nil {
					select {
					case <-c.done:
					case <-ctx.Done():
						r.keepUnlisted(done)
						return context.Cause(ctx)
					}
				}
			}
		}
		list, _, held := r.sortIndex(done, !mayResave)
		var rerr error
		if len(held) > 0 {
			r.startWriter(ctx)
			r.resave(ctx, held)
			index, err := r.flushPacks(ctx, false)
			if err == nil {
				err = index(ctx)
			}
			rerr = err
		}
		// the sound packs are listed even so
		if err := r.saveIndex(ctx, list); err != nil {
			r.keepUnlisted(list)
			return err
		}
		return rerr
	}, nil
}

// drain ends pack writer w: it stores the packs being filled, waits for
// the uploads and returns the packs stored since the last index file,
// with the first error. With mayResave, packs whose read-back already
// failed in part have their sound blobs stored again first.
func (r *Repository) drain(ctx context.Context, w *writer, mayResave bool) ([]PackJSON, error) {
	// while the writer still runs: what failed its read-back is not
	// listed, its sound blobs are stored again
	if mayResave {
		r.storeAgain(ctx, w)
	}
	var rest []*packer
	for t := range w.slots {
		for range cap(w.slots[t]) {
			if p := <-w.slots[t]; p != nil && len(p.entries) > 0 {
				rest = append(rest, p)
			} else if p != nil {
				p.discard()
			}
		}
	}
	var sendErr error
	for i, p := range rest {
		if _, err := p.finish(r.key); err != nil {
			for _, q := range rest[i:] {
				q.discard()
			}
			sendErr = err
			break
		}
		select {
		case w.uploads <- p:
		case <-w.gctx.Done():
			sendErr = w.gctx.Err()
		}
		if sendErr != nil {
			for _, q := range rest[i:] {
				q.discard()
			}
			break
		}
	}
	close(w.uploads)
	err := w.g.Wait()
	w.mu.Lock()
	werr := w.err // the first error: an upload's, or why the writer was aborted
	done := w.done
	w.mu.Unlock()
	w.cancel(nil)
	r.wmu.Lock()
	r.w = nil
	r.wmu.Unlock()
	for _, e := range []error{werr, err, sendErr} {
		if e != nil {
			return done, e
		}
	}
	return done, nil
}

// Added reports the plaintext and stored bytes of new blobs so far.
func (r *Repository) Added() (plain, stored int64) {
	r.wmu.Lock()
	w := r.w
	r.wmu.Unlock()
	if w == nil {
		return 0, 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.added, w.addedPacked
}

// LoadBlob reads, verifies and returns a blob, appending to buf[:0]. If a
// copy is damaged another copy is tried.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID, buf []byte) ([]byte, error) {
	copies := r.idx.LookupAll(BlobHandle{ID: id, Type: t})
	if len(copies) == 0 {
		return nil, fmt.Errorf("%v blob %s is not in the index", t, id.Str())
	}
	var lastErr error
	for _, pb := range copies {
		out, err := r.loadPacked(ctx, pb, buf)
		if err == nil {
			return out, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (r *Repository) loadPacked(ctx context.Context, pb PackedBlob, buf []byte) ([]byte, error) {
	sp := scratch.Get().(*[]byte)
	defer scratch.Put(sp)
	sealed, err := r.loadSealed(ctx, pb, *sp)
	if err != nil {
		return nil, err
	}
	*sp = sealed[:0]
	return r.openBlob(pb, sealed, buf, false)
}

// loadSealed reads a blob as it is stored into buf[:0] (grown as needed).
func (r *Repository) loadSealed(ctx context.Context, pb PackedBlob, buf []byte) ([]byte, error) {
	rd, err := r.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: pb.Pack.String()}, int(pb.Length), int64(pb.Offset))
	if err != nil {
		return nil, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	if cap(buf) < int(pb.Length) {
		buf = make([]byte, 0, pb.Length)
	}
	sealed := buf[:pb.Length]
	_, err = io.ReadFull(rd, sealed)
	rd.Close()
	if err != nil {
		return nil, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	return sealed, nil
}

// openBlob decrypts, decompresses and verifies one sealed blob,
// appending the plaintext to buf[:0]; sealed is overwritten. With
// inPlace, an uncompressed blob's plaintext is left where it lay in
// sealed and returned from there (no copy).
func (r *Repository) openBlob(pb PackedBlob, sealed, buf []byte, inPlace bool) ([]byte, error) {
	var out []byte
	var err error
	if pb.UncompressedLength > 0 || inPlace {
		var pt []byte
		pt, err = r.key.Open(sealed[crypto.Extension-16:crypto.Extension-16], sealed) // in place: the plaintext lands where the ciphertext was
		out = pt
		if err == nil && pb.UncompressedLength > 0 {
			out, err = r.decoder().DecodeAll(pt, buf[:0])
			if err == nil && len(out) != int(pb.UncompressedLength) {
				err = fmt.Errorf("decompressed to %d bytes, index says %d", len(out), pb.UncompressedLength)
			}
		}
	} else {
		out, err = r.key.Open(buf[:0], sealed)
	}
	if err != nil {
		return nil, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	if Hash(out) != pb.ID {
		return nil, fmt.Errorf("%v blob %s in pack %s: content does not match its ID", pb.Type, pb.ID.Str(), pb.Pack.Str())
	}
	return out, nil
}

// OpenBlob decrypts, decompresses and verifies a sealed blob read from a
// pack, appending the plaintext to buf[:0]; sealed is overwritten.
func (r *Repository) OpenBlob(pb PackedBlob, sealed, buf []byte) ([]byte, error) {
	return r.openBlob(pb, sealed, buf, false)
}
