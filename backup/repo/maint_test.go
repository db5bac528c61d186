package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/crypto"
)

// SaveSealed copies a sealed blob as it is into a new pack (prune's
// repack): it loads back the same, and a blob whose MAC fails is refused.
func TestSaveSealed(t *testing.T) {
	ctx := context.Background()
	r, err := Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("compressible "), 1000)
	id, _, err := r.SaveBlob(ctx, DataBlob, data, ID{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	pb, ok := r.Index().Lookup(BlobHandle{ID: id, Type: DataBlob})
	if !ok || pb.UncompressedLength == 0 {
		t.Fatalf("lookup %v %+v", ok, pb)
	}
	sealed, err := backendRange(ctx, r, pb)
	if err != nil {
		t.Fatal(err)
	}
	r.SetIndex(NewIndex())
	bad := bytes.Clone(sealed)
	bad[20] ^= 1
	if _, err := r.SaveSealed(ctx, pb, bad); !errors.Is(err, crypto.ErrUnauthenticated) {
		t.Errorf("a damaged sealed blob: %v", err)
	}
	known, err := r.SaveSealed(ctx, pb, sealed)
	if err != nil || known {
		t.Fatalf("SaveSealed: %v known=%v", err, known)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	copies := r.Index().LookupAll(BlobHandle{ID: id, Type: DataBlob})
	if len(copies) != 1 || copies[0].Pack == pb.Pack {
		t.Fatalf("copies after SaveSealed: %+v", copies)
	}
	got, err := r.LoadBlob(ctx, DataBlob, id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load the copied blob: %v", err)
	}
}

func backendRange(ctx context.Context, r *Repository, pb PackedBlob) ([]byte, error) {
	buf := make([]byte, pb.Length)
	rd, err := r.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: pb.Pack.String()}, int(pb.Length), int64(pb.Offset))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	_, err = io.ReadFull(rd, buf)
	return buf, err
}
