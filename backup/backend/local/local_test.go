package local_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/backendtest"
	"github.com/holiday-ops/holiday/backup/backend/local"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		be, err := local.Create(filepath.Join(t.TempDir(), "repo"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// nothing may be left in tmp/
			ents, _ := os.ReadDir(filepath.Join(be.Path(), "tmp"))
			if len(ents) > 0 {
				t.Errorf("%d temporary files left in tmp/", len(ents))
			}
		})
		return be
	})
}

func TestCreateRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Create(dir); err == nil {
		t.Fatal("Create on a non-empty directory succeeded")
	}
}

// A file from TempFile is adopted by Save (linked, not copied) and its
// temporary name can be removed afterwards without losing the data.
func TestSaveAdoptsTempFile(t *testing.T) {
	ctx := context.Background()
	be, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := be.TempFile()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(f.Name()) != filepath.Join(be.Path(), "tmp") {
		t.Fatalf("temp file %s is not under tmp/", f.Name())
	}
	data := []byte("a pack, streamed to disk")
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	h := backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}
	if err := be.Save(ctx, h, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Remove(f.Name())
	got, err := backend.ReadAll(ctx, be, h)
	if err != nil || string(got) != string(data) {
		t.Fatalf("adopted file: %v %q", err, got)
	}
	if err := be.Save(ctx, h, bytes.NewReader(data)); !errors.Is(err, backend.ErrExist) {
		t.Errorf("save over an adopted file: %v", err)
	}
}

func TestCleanTemp(t *testing.T) {
	be, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	old, _ := be.TempFile()
	old.Close()
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old.Name(), past, past); err != nil {
		t.Fatal(err)
	}
	fresh, _ := be.TempFile()
	fresh.Close()
	n, err := be.CleanTemp(30 * time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("CleanTemp removed %d (%v), want 1", n, err)
	}
	if _, err := os.Stat(fresh.Name()); err != nil {
		t.Errorf("a fresh temporary file was removed")
	}
}
