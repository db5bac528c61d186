package repo_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
)

// TestFailedSaveBlobForgetsBlob: a SaveBlob that fails (here its context
// is cancelled: while waiting for a packer, or for the upload of the
// full pack it closed, whose blobs are then lost) leaves no trace, so
// that saving the blob again stores it instead of taking it as known.
func TestFailedSaveBlobForgetsBlob(t *testing.T) {
	// one data packer: more full packs, each closed by a cancelled call
	// half of the time
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	r.StartWriter(ctx) // the writer lives on; only the calls are cancelled
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	rng := rand.NewChaCha8([32]byte{7})
	const n, size = 100, 1 << 20
	blobs := make([][]byte, n)
	ids := make([]repo.ID, n)
	failed := 0
	for i := range blobs {
		blobs[i] = make([]byte, size)
		rng.Read(blobs[i])
		ids[i] = repo.Hash(blobs[i])
		if _, _, err := r.SaveBlob(cancelled, repo.DataBlob, blobs[i], ids[i]); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no SaveBlob with a cancelled context failed")
	}
	for i := range blobs {
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, blobs[i], ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		got, err := r.LoadBlob(ctx, repo.DataBlob, id, nil)
		if err != nil || string(got) != string(blobs[i]) {
			t.Errorf("blob %d (%d of %d first saves failed): %v", i, failed, n, err)
		}
	}
}
