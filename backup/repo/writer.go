package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/crypto"
)

// indexMaxBlobs is when an index file is written during a long backup, so
// that a crash loses little: the packs stay, but unindexed.
const indexMaxBlobs = 50000

type writer struct {
	mu      sync.Mutex
	packers [3]*packer
	pending map[BlobHandle]struct{}
	uploads chan *packer
	g       *errgroup.Group
	gctx    context.Context
	done    []PackJSON
	nDone   int
	// Stats
	added, addedPacked int64
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
	g, gctx := errgroup.WithContext(ctx)
	w := &writer{pending: map[BlobHandle]struct{}{}, uploads: make(chan *packer, 1), g: g, gctx: gctx}
	for range 2 {
		g.Go(func() error {
			for p := range w.uploads {
				if err := r.upload(gctx, w, p); err != nil {
					// drain so that senders never block on a dead uploader
					go func() {
						for range w.uploads {
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

// SaveBlob stores a blob unless the index or a pack being written already
// holds it. The ID must be the SHA-256 of data (ID{} computes it). It
// returns the ID and whether the blob was already known. data is not
// retained. Safe for concurrent use; call Flush when done.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, data []byte, id ID) (ID, bool, error) {
	if id.IsNull() {
		id = Hash(data)
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

	ulen := 0
	pt := data
	if r.cfg.Version >= 2 {
		c := r.encoder().EncodeAll(data, make([]byte, 0, len(data)/2))
		if len(c) < len(data) {
			pt, ulen = c, len(data)
		}
	}
	sealed := r.key.Seal(make([]byte, 0, len(pt)+32), pt)

	w.mu.Lock()
	p := w.packers[t]
	if p == nil {
		p = newPacker()
		w.packers[t] = p
	}
	p.add(bh, sealed, ulen)
	w.added += int64(len(data))
	w.addedPacked += int64(len(sealed))
	var full *packer
	if p.size() >= PackSize {
		full = p
		w.packers[t] = nil
	}
	w.mu.Unlock()
	if full != nil {
		full.finish(r.key)
		select {
		case w.uploads <- full:
		case <-w.gctx.Done():
			return id, false, r.writerErr(w)
		case <-ctx.Done():
			return id, false, ctx.Err()
		}
	}
	return id, false, nil
}

func (r *Repository) writerErr(w *writer) error {
	close(w.uploads)
	err := w.g.Wait()
	r.w = nil
	if err == nil {
		err = context.Canceled
	}
	return err
}

// upload stores one finished pack, then indexes its blobs; every
// indexMaxBlobs blobs an index file is written.
func (r *Repository) upload(ctx context.Context, w *writer, p *packer) error {
	id := p.entries[0].Pack
	if err := r.be.Save(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, bytes.NewReader(p.buf.Bytes())); err != nil {
		return fmt.Errorf("store pack: %w", err)
	}
	pj := PackJSON{ID: id}
	for _, e := range p.entries {
		r.idx.Add(e)
		pj.Blobs = append(pj.Blobs, BlobJSON{ID: e.ID, Type: e.Type, Offset: uint(e.Offset), Length: uint(e.Length), UncompressedLength: uint(e.UncompressedLength)})
	}
	w.mu.Lock()
	for _, e := range p.entries {
		delete(w.pending, e.BlobHandle)
	}
	w.done = append(w.done, pj)
	w.nDone += len(pj.Blobs)
	var flush []PackJSON
	if w.nDone >= indexMaxBlobs {
		flush, w.done, w.nDone = w.done, nil, 0
	}
	w.mu.Unlock()
	if flush != nil {
		return r.saveIndex(ctx, flush)
	}
	return nil
}

func (r *Repository) saveIndex(ctx context.Context, packs []PackJSON) error {
	buf, err := json.Marshal(IndexFile{Packs: packs})
	if err != nil {
		return err
	}
	if _, err := r.SaveUnpacked(ctx, backend.IndexFile, buf); err != nil {
		return fmt.Errorf("store index: %w", err)
	}
	return nil
}

// Flush stores the packs still being filled, waits for all uploads and
// writes the index for them. After Flush returns nil every blob saved so
// far is durable and indexed; only then may a snapshot refer to them.
func (r *Repository) Flush(ctx context.Context) error {
	r.wmu.Lock()
	w := r.w
	r.wmu.Unlock()
	if w == nil {
		return nil
	}
	w.mu.Lock()
	var rest []*packer
	for t, p := range w.packers {
		if p != nil && len(p.entries) > 0 {
			rest = append(rest, p)
		}
		w.packers[t] = nil
	}
	w.mu.Unlock()
	var sendErr error
	for _, p := range rest {
		p.finish(r.key)
		select {
		case w.uploads <- p:
		case <-w.gctx.Done():
			sendErr = w.gctx.Err()
		}
		if sendErr != nil {
			break
		}
	}
	close(w.uploads)
	err := w.g.Wait()
	r.w = nil
	if err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}
	if len(w.done) > 0 {
		return r.saveIndex(ctx, w.done)
	}
	return nil
}

// Added reports the plaintext and stored bytes of new blobs so far.
func (r *Repository) Added() (plain, stored int64) {
	if r.w == nil {
		return 0, 0
	}
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r.w.added, r.w.addedPacked
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
	rd, err := r.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: pb.Pack.String()}, int(pb.Length), int64(pb.Offset))
	if err != nil {
		return nil, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	sealed := make([]byte, pb.Length)
	_, err = io.ReadFull(rd, sealed)
	rd.Close()
	if err != nil {
		return nil, fmt.Errorf("%v blob %s in pack %s: %w", pb.Type, pb.ID.Str(), pb.Pack.Str(), err)
	}
	return r.openBlob(pb, sealed, buf)
}

// openBlob decrypts, decompresses and verifies one sealed blob.
func (r *Repository) openBlob(pb PackedBlob, sealed, buf []byte) ([]byte, error) {
	var out []byte
	var err error
	if pb.UncompressedLength > 0 {
		var pt []byte
		pt, err = r.key.Open(sealed[crypto.Extension-16:crypto.Extension-16], sealed) // in place: the plaintext lands where the ciphertext was
		if err == nil {
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
// pack; sealed is overwritten.
func (r *Repository) OpenBlob(pb PackedBlob, sealed []byte) ([]byte, error) {
	return r.openBlob(pb, sealed, nil)
}
