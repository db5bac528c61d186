package repo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/holiday-ops/holiday/backup/backend"
)

// SetIndex makes x the repository's index: SaveBlob then stores every
// blob x lacks, LoadBlob finds only what x holds. Prune and copy use it
// to write blobs again that the loaded index already knows (in packs
// about to go, or in another repository).
func (r *Repository) SetIndex(x *Index) { r.idx = x }

// SaveIndexFiles stores packs as index files of at most indexMaxBlobs
// blobs each, after asking the lock (LockValid), and returns their IDs.
func (r *Repository) SaveIndexFiles(ctx context.Context, packs []PackJSON) ([]ID, error) {
	var ids []ID
	for len(packs) > 0 {
		n, blobs := 0, 0
		for n < len(packs) && (blobs == 0 || blobs+len(packs[n].Blobs) <= indexMaxBlobs) {
			blobs += len(packs[n].Blobs)
			n++
		}
		if err := r.LockValid(); err != nil {
			return ids, err
		}
		buf, err := json.Marshal(IndexFile{Packs: packs[:n]})
		if err != nil {
			return ids, err
		}
		id, err := r.SaveUnpacked(ctx, backend.IndexFile, buf)
		if err != nil {
			return ids, fmt.Errorf("store index: %w", err)
		}
		ids = append(ids, id)
		packs = packs[n:]
	}
	return ids, nil
}

// PackJSONOf lists blobs (all of one pack) as the pack's index entry.
func PackJSONOf(pack ID, blobs []PackedBlob) PackJSON {
	pj := PackJSON{ID: pack}
	for _, e := range blobs {
		pj.Blobs = append(pj.Blobs, BlobJSON{ID: e.ID, Type: e.Type, Offset: uint(e.Offset), Length: uint(e.Length), UncompressedLength: uint(e.UncompressedLength)})
	}
	return pj
}

// LoadPacked reads, verifies and returns the blob stored at pb (that
// copy only), appending to buf[:0].
func (r *Repository) LoadPacked(ctx context.Context, pb PackedBlob, buf []byte) ([]byte, error) {
	return r.loadPacked(ctx, pb, buf)
}
