package checker_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
)

const pw = "pw"

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixture is one backed-up repository, copied per damage case.
type fixture struct {
	src, repoDir string
	snap         repo.ID
}

func makeFixture(t *testing.T) fixture {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandom(t, filepath.Join(src, "big"), 3<<20)
	writeRandom(t, filepath.Join(src, "small"), 1000)
	writeRandom(t, filepath.Join(src, "d", "inner"), 5000)
	repoDir := filepath.Join(dir, "repo")
	be, err := local.Create(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, pw)
	if err != nil {
		t.Fatal(err)
	}
	sn, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{src: src, repoDir: repoDir, snap: sn.ID}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		_ = os.Chmod(path, 0o600)
		if f, err = os.OpenFile(path, os.O_RDWR, 0); err != nil {
			t.Fatal(err)
		}
	}
	defer f.Close()
	if off < 0 {
		fi, _ := f.Stat()
		off += fi.Size()
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, dir string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), be, pw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func firstFile(t *testing.T, dir string, typ backend.FileType) string {
	t.Helper()
	be, _ := local.Open(dir)
	var name string
	_ = be.List(context.Background(), typ, func(fi backend.FileInfo) error { name = fi.Name; return nil })
	return be.Filename(backend.Handle{Type: typ, Name: name})
}

// locate finds where a snapshot path's first blob (or a folder's tree)
// lives.
func locate(t *testing.T, dir string, snap repo.ID, p string, tree bool) (string, repo.PackedBlob) {
	t.Helper()
	ctx := context.Background()
	r := open(t, dir)
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	sn, err := r.LoadSnapshot(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	n, err := restorer.FindNode(ctx, r, *sn.Tree, p)
	if err != nil {
		t.Fatal(err)
	}
	h := repo.BlobHandle{Type: repo.DataBlob}
	if tree {
		h = repo.BlobHandle{ID: *n.Subtree, Type: repo.TreeBlob}
	} else {
		h.ID = n.Content[0]
	}
	pb, ok := r.Index().Lookup(h)
	if !ok {
		t.Fatal("blob not indexed")
	}
	be, _ := local.Open(dir)
	return be.Filename(backend.Handle{Type: backend.PackFile, Name: pb.Pack.String()}), pb
}

func TestDamageIsFoundAndAttributed(t *testing.T) {
	fx := makeFixture(t)
	big := filepath.Join(fx.src, "big")
	inner := filepath.Join(fx.src, "d")
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, dir string)
		kind     string
		affects  string // a substring of one of the problem's hits ("" for none)
		restores []string
	}{
		{"data blob", func(t *testing.T, dir string) {
			pack, pb := locate(t, dir, fx.snap, big, false)
			flip(t, pack, int64(pb.Offset)+100)
		}, "blob", big, []string{"small", "d/inner"}},
		{"tree blob", func(t *testing.T, dir string) {
			pack, pb := locate(t, dir, fx.snap, inner, true)
			flip(t, pack, int64(pb.Offset)+20)
		}, "blob", inner + " (whole directory)", []string{"big", "small"}},
		{"pack header", func(t *testing.T, dir string) {
			pack, _ := locate(t, dir, fx.snap, big, false)
			flip(t, pack, -10)
		}, "pack", big, []string{"big", "small", "d/inner"}},
		{"header length", func(t *testing.T, dir string) {
			pack, _ := locate(t, dir, fx.snap, big, false)
			flip(t, pack, -2)
		}, "pack", big, []string{"big", "small", "d/inner"}},
		{"index file", func(t *testing.T, dir string) {
			flip(t, firstFile(t, dir, backend.IndexFile), 40)
		}, "index", "", nil},
		{"snapshot file", func(t *testing.T, dir string) {
			flip(t, firstFile(t, dir, backend.SnapshotFile), 40)
		}, "snapshot", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := filepath.Join(t.TempDir(), "repo")
			copyTree(t, fx.repoDir, dir)
			tc.damage(t, dir)
			rep, err := checker.Check(ctx, open(t, dir), checker.Options{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			var found *checker.Problem
			for i, p := range rep.Problems {
				if p.Kind == tc.kind {
					found = &rep.Problems[i]
				}
			}
			if found == nil {
				t.Fatalf("no %s problem reported; got %+v", tc.kind, rep.Problems)
			}
			if tc.affects != "" {
				ok := false
				for _, p := range rep.Problems {
					for _, h := range p.Hits {
						ok = ok || (strings.Contains(h, tc.affects) && strings.Contains(h, fx.snap.Str()))
					}
				}
				if !ok {
					t.Errorf("damage not attributed to snapshot %s %s: %+v", fx.snap.Str(), tc.affects, rep.Problems)
				}
			}
			// everything undamaged still restores
			if tc.restores == nil {
				return
			}
			r := open(t, dir)
			if err := r.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			sn, err := r.LoadSnapshot(ctx, fx.snap)
			if err != nil {
				t.Fatal(err)
			}
			var inc []string
			for _, f := range tc.restores {
				inc = append(inc, filepath.Join(fx.src, f))
			}
			target := t.TempDir()
			if _, err := restorer.Restore(ctx, r, *sn.Tree, target, restorer.Options{Include: inc}); err != nil {
				t.Fatalf("restore of the undamaged files: %v", err)
			}
			for _, f := range tc.restores {
				want, _ := os.ReadFile(filepath.Join(fx.src, f))
				got, err := os.ReadFile(filepath.Join(target, fx.src, f))
				if err != nil || string(got) != string(want) {
					t.Errorf("%s not restored intact: %v", f, err)
				}
			}
		})
	}
}

func TestCleanRepositoryChecksClean(t *testing.T) {
	fx := makeFixture(t)
	for _, opts := range []checker.Options{{}, {ReadData: true}, {ReadData: true, SubsetN: 1, SubsetT: 2}, {ReadData: true, SubsetN: 2, SubsetT: 2}} {
		rep, err := checker.Check(context.Background(), open(t, fx.repoDir), opts)
		if err != nil || !rep.OK() {
			t.Errorf("%+v: %v %+v", opts, err, rep)
		}
	}
	_ = binary.LittleEndian
}
