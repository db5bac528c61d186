package local_test

import (
	"os"
	"path/filepath"
	"testing"

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
