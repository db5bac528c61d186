package checker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
)

// slowPacks takes its time over every pack read.
type slowPacks struct{ backend.Backend }

func (s slowPacks) Load(ctx context.Context, h backend.Handle, length int, offset int64) (io.ReadCloser, error) {
	if h.Type == backend.PackFile {
		time.Sleep(200 * time.Millisecond)
	}
	return s.Backend.Load(ctx, h, length, offset)
}

// A check --read-data under LockSharedAsync stops soon after the lock's
// confirmation finds a conflicting exclusive lock, not after reading
// every pack.
func TestReadDataStopsOnLockConflict(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := repo.Init(ctx, be, pw)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	for i := range 10 { // a backup each: at least ten packs
		writeRandom(t, filepath.Join(src, "f"), 4096+i)
		if _, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err = repo.Open(ctx, slowPacks{be}, pw)
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.LockSharedAsync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock(ctx)
	doc := repo.Lock{Time: time.Now(), Exclusive: true, PID: os.Getpid()} // alive, so not stale
	doc.Hostname, _ = os.Hostname()
	b, _ := json.Marshal(doc)
	if _, err := r.SaveUnpacked(ctx, backend.LockFile, b); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if !errors.Is(err, repo.ErrLocked) {
		read := 0
		if rep != nil {
			read = rep.PacksRead
		}
		t.Fatalf("check --read-data beside an exclusive lock: %v (read %d packs in %v)", err, read, time.Since(start))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("check took %v to stop", d)
	}
}
