package restorer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
)

func TestIncluded(t *testing.T) {
	for _, tc := range []struct {
		p             string
		include       []string
		match, descnd bool
	}{
		{"/a/b", nil, true, true},
		{"/a/b", []string{"/a/b"}, true, true},
		{"/a/b/c", []string{"/a/b"}, true, true},
		{"/a", []string{"/a/b"}, false, true},
		{"/a/bc", []string{"/a/b"}, false, false},
		{"/x", []string{"/a/b", "/x/"}, true, true},
		{"/y", []string{"a/b"}, false, false},
	} {
		m, d := included(tc.p, tc.include)
		if m != tc.match || d != tc.descnd {
			t.Errorf("included(%q, %q) = %v, %v; want %v, %v", tc.p, tc.include, m, d, tc.match, tc.descnd)
		}
	}
}

func TestWriteSparseKeepsHoles(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 8<<20) // zeros but for one byte in the middle
	buf[4<<20+17] = 1
	if err := WriteSparse(f, buf, 12345); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(12345 + int64(len(buf))); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(buf))
	if _, err := f.ReadAt(got, 12345); err != nil || string(got) != string(buf) {
		t.Fatalf("content differs: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 64<<10 {
		t.Errorf("%d bytes allocated for one non-zero byte: holes not kept", st.Blocks*512)
	}
}

// A tree whose names could climb out of the target is refused.
func TestUnsafeNames(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"..", ".", "a/b", "", "nul\x00"} {
		tr := &repo.Tree{Nodes: []*repo.Node{{Name: name, Type: repo.NodeFile, Content: []repo.ID{}}}}
		b, err := tr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := r.SaveBlob(ctx, repo.TreeBlob, b, repo.ID{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		target := t.TempDir()
		_, err = Restore(ctx, r, id, target, Options{})
		if err == nil || !strings.Contains(err.Error(), "unsafe name") {
			t.Errorf("name %q: restore said %v", name, err)
		}
	}
}
