package archiver_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
)

func dump(t *testing.T, r *repo.Repository, sn *repo.Snapshot, p string) string {
	t.Helper()
	n, err := restorer.FindNode(context.Background(), r, *sn.Tree, p)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := restorer.Dump(context.Background(), r, n, &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestParentAndBlockSize: a second backup takes unchanged files from the
// parent snapshot without reading them, reads changed ones, and the
// result is the same whatever the chunking.
func TestParentAndBlockSize(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB
	files := map[string]string{"a": "alpha", "sub/b": "beta", "sub/big": big, "empty": ""}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		opts archiver.Options
	}{
		{"content-defined chunks", archiver.Options{}},
		{"fixed 1 MiB blocks", archiver.Options{BlockSize: 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, st, err := archiver.Backup(ctx, r, []string{src}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.Files != 4 {
				t.Errorf("first run saw %d files", st.Files)
			}
			time.Sleep(10 * time.Millisecond)
			if err := os.WriteFile(filepath.Join(src, "sub/b"), []byte("beta, changed"), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := tc.opts
			opts.Parent = first
			second, st, err := archiver.Backup(ctx, r, []string{src}, opts)
			if err != nil {
				t.Fatal(err)
			}
			if st.Unchanged != 3 || st.BytesRead != int64(len("beta, changed")) {
				t.Errorf("second run: %d unchanged, %d bytes read; want 3 and only the changed file", st.Unchanged, st.BytesRead)
			}
			if second.Parent == nil || *second.Parent != first.ID {
				t.Errorf("snapshot's parent not recorded")
			}
			if got := dump(t, r, second, filepath.Join(src, "sub/b")); got != "beta, changed" {
				t.Errorf("changed file: %q", got)
			}
			if got := dump(t, r, second, filepath.Join(src, "sub/big")); got != big {
				t.Errorf("unchanged big file differs (%d bytes)", len(got))
			}
			if err := os.WriteFile(filepath.Join(src, "sub/b"), []byte("beta"), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBackupReader(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	data := strings.Repeat("stream ", 300000)
	sn, st, err := archiver.BackupReader(ctx, r, strings.NewReader(data), "dump.sql", archiver.Options{Tags: []string{"kind:postgres"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesRead != int64(len(data)) || sn.Paths[0] != "/dump.sql" || sn.Tags[0] != "kind:postgres" {
		t.Errorf("stats %+v, snapshot %+v", st, sn)
	}
	if got := dump(t, r, sn, "/dump.sql"); got != data {
		t.Errorf("stdin round trip: %d bytes, want %d", len(got), len(data))
	}
	if _, _, err := archiver.BackupReader(ctx, r, strings.NewReader("x"), "a/b", archiver.Options{}); err == nil {
		t.Error("a stdin name with a slash was accepted")
	}
}

// TestFixedBlocks: a file in fixed blocks (whole blocks read by the
// workers, the tail by its reader) comes back byte for byte, one blob
// per block, the zero blocks stored once.
func TestFixedBlocks(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	const bs = 1 << 20
	data := make([]byte, 9*bs+12345)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		if (i/bs)%3 != 1 { // blocks 1, 4 and 7 are zeros
			data[i] = byte(rng.Uint32())
		}
	}
	src := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sn, st, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{BlockSize: bs})
	if err != nil {
		t.Fatal(err)
	}
	// added: the data but two of the zero blocks, and the trees
	if want := int64(len(data) - 2*bs); st.BytesRead != int64(len(data)) || st.BytesAdded < want || st.BytesAdded > want+64<<10 {
		t.Errorf("read %d, added %d; want %d and %d plus trees", st.BytesRead, st.BytesAdded, len(data), want)
	}
	if got := dump(t, r, sn, src); got != string(data) {
		t.Fatalf("round trip: %d bytes differ from the %d written", len(got), len(data))
	}
	n, err := restorer.FindNode(ctx, r, *sn.Tree, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Content) != 10 || n.Content[1] != n.Content[4] || n.Content[4] != n.Content[7] || n.Size != uint64(len(data)) {
		t.Errorf("%d blobs (want 10, zero blocks alike), size %d", len(n.Content), n.Size)
	}
}
