package archiver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// TestShrinkingFileLeftOut: a file that shrinks while the workers read
// its fixed blocks is left out of the snapshot with a warning; the rest
// is backed up and the backup says it is incomplete.
func TestShrinkingFileLeftOut(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	big := filepath.Join(src, "shrinks")
	if err := os.WriteFile(filepath.Join(src, "stays"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	var (
		sn     *repo.Snapshot
		st     archiver.Stats
		logged bytes.Buffer
	)
	// on a loaded machine the truncation may come after the last block
	// read: then the backup is whole, and is tried again
	for try := 0; ; try++ {
		sn, st, err = backupShrinking(ctx, t, r, src, big, byte(try), &logged)
		if err != nil || try == 2 {
			break
		}
		t.Logf("try %d: the file was read before it shrank", try)
	}
	if !errors.Is(err, archiver.ErrIncomplete) || sn == nil {
		t.Fatalf("backup of a shrinking file: %v (snapshot %v)", err, sn)
	}
	if !slices.Equal(st.Unreadable, []string{big}) {
		t.Errorf("unreadable: %q, want %q", st.Unreadable, big)
	}
	if !strings.Contains(logged.String(), "cannot read") || !strings.Contains(logged.String(), "shrank") {
		t.Errorf("no warning about the shrinking file in the log:\n%s", logged.String())
	}
	if _, err := restorer.FindNode(ctx, r, *sn.Tree, big); err == nil {
		t.Error("the shrinking file is in the snapshot")
	}
	if got := dump(t, r, sn, filepath.Join(src, "stays")); got != "kept" {
		t.Errorf("the other file holds %q", got)
	}
}

// backupShrinking writes big and backs up src, truncating big at the
// first read of its blocks: the blocks not yet read are no longer there.
func backupShrinking(ctx context.Context, t *testing.T, r *repo.Repository, src, big string, seed byte, logged *bytes.Buffer) (*repo.Snapshot, archiver.Stats, error) {
	data := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{9, seed}).Read(data)
	if err := os.WriteFile(big, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC)
	if err != nil {
		testenv.Skipf(t, "inotify: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, big, syscall.IN_ACCESS); err != nil {
		t.Fatal(err)
	}
	truncated := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		n, err := syscall.Read(fd, buf)
		if err == nil && n < syscall.SizeofInotifyEvent {
			err = fmt.Errorf("short inotify read: %d bytes", n)
		}
		if err == nil {
			err = os.Truncate(big, 3<<20+5)
		}
		truncated <- err
	}()
	logged.Reset()
	sn, st, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{BlockSize: 1 << 20,
		Log: slog.New(slog.NewTextHandler(logged, nil))})
	if terr := <-truncated; terr != nil {
		t.Fatal(terr)
	}
	return sn, st, err
}
