package archiver_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
)

// TestStorageFailure: when every pack save fails, a backup ends (no
// worker left waiting on jobs nobody handles) with the storage error
// itself, on the fixed-block and the content-defined path.
func TestStorageFailure(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	dir := t.TempDir()
	rng := rand.NewChaCha8([32]byte{5, 6})
	for k := 0; k < 3; k++ {
		data := make([]byte, 40<<20)
		rng.Read(data)
		if err := os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+k))), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		bs   int
	}{{"fixed 1 MiB blocks", 1 << 20}, {"content-defined chunks", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fb := faulty.New(mem.New())
			r, err := repo.Init(ctx, fb, "pw")
			if err != nil {
				t.Fatal(err)
			}
			fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
			for i := 1; i < 10000; i++ {
				fb.FailSave[i] = true
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := archiver.Backup(ctx, r, []string{dir}, archiver.Options{BlockSize: tc.bs})
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, faulty.ErrInjected) {
					t.Errorf("backup returned %v, want the injected storage error", err)
				}
			case <-time.After(30 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("backup hangs after a storage failure:\n%s", buf[:runtime.Stack(buf, true)])
			}
		})
	}
}
