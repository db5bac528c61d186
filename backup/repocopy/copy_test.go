package repocopy

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/testenv"
)

func initRepo(t *testing.T, dir, pw string) *repo.Repository {
	t.Helper()
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, pw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func write(t *testing.T, p string, n int) {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func packBytes(t *testing.T, r *repo.Repository) int64 {
	var n int64
	if err := r.List(context.Background(), backend.PackFile, func(_ repo.ID, size int64) error { n += size; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCopy: snapshots copied into a repository with another key keep
// their tags and record their original; a second copy sends nothing; a
// later snapshot sends only its new data; holiday's and restic's checks
// pass on the target and it restores exactly.
func TestCopy(t *testing.T) {
	testenv.Short(t, "backs up and copies 12 MiB")
	ctx := context.Background()
	dir := t.TempDir()
	src := initRepo(t, filepath.Join(dir, "src"), "source pw")
	dstDir := filepath.Join(dir, "dst")
	dst := initRepo(t, dstDir, "target pw")
	data := filepath.Join(dir, "data")
	write(t, filepath.Join(data, "a"), 5<<20)
	write(t, filepath.Join(data, "sub", "b"), 3<<20)
	pin := repo.PinTags(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s1, _, err := archiver.Backup(ctx, src, []string{data}, archiver.Options{Tags: append([]string{"run:r1"}, pin...), Hostname: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := archiver.Backup(ctx, src, []string{filepath.Join(data, "sub")}, archiver.Options{Tags: []string{"run:r0"}, Hostname: "web1"})
	if err != nil {
		t.Fatal(err)
	}

	onlyRun := func(run string) func(*repo.Snapshot) bool {
		return func(sn *repo.Snapshot) bool { return slices.Contains(sn.Tags, "run:"+run) }
	}
	copied, st, err := Copy(ctx, src, dst, onlyRun("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(copied) != 1 || copied[0].From != s1.ID || st.Snapshots != 1 || st.Bytes < 8<<20 {
		t.Fatalf("first copy: %v %+v", copied, st)
	}
	got, err := dst.LoadSnapshot(ctx, copied[0].To)
	if err != nil {
		t.Fatal(err)
	}
	if got.Original == nil || *got.Original != s1.ID || !slices.Equal(got.Tags, s1.Tags) || !got.Pinned(time.Now()) || got.Hostname != "web1" {
		t.Errorf("copied snapshot %+v: want original %s, the source's tags and pin", got, s1.ID.Str())
	}
	if _, err := dst.LoadSnapshot(ctx, other.ID); err == nil {
		t.Error("a snapshot outside the filter was copied")
	}
	size1 := packBytes(t, dst)

	// again: nothing crosses
	copied, st, err = Copy(ctx, src, dst, onlyRun("r1"))
	if err != nil || len(copied) != 0 || st.Skipped != 1 || st.Blobs != 0 {
		t.Fatalf("second copy: %v %+v %v", copied, st, err)
	}
	// a new snapshot with 1 MiB new: about 1 MiB crosses
	write(t, filepath.Join(data, "c"), 1<<20)
	src.SetIndex(repo.NewIndex())
	if err := src.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	s2, _, err := archiver.Backup(ctx, src, []string{data}, archiver.Options{Tags: []string{"run:r2"}, Hostname: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	dst.SetIndex(repo.NewIndex())
	_, st, err = Copy(ctx, src, dst, onlyRun("r2"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshots != 1 || st.Bytes > 1<<20+64<<10 || st.Bytes < 1<<20 {
		t.Errorf("incremental copy sent %d bytes for 1 MiB of new data: %+v", st.Bytes, st)
	}
	if grew := packBytes(t, dst) - size1; grew > 1<<20+128<<10 {
		t.Errorf("target grew by %d bytes for 1 MiB of new data", grew)
	}

	// the target: checks clean (holiday, restic), restores exactly
	dst.SetIndex(repo.NewIndex())
	rep, err := checker.Check(ctx, dst, checker.Options{ReadData: true})
	if err != nil || !rep.OK() || rep.Snapshots != 2 {
		t.Fatalf("holiday check of the target: %v %+v", err, rep)
	}
	if _, err := exec.LookPath("restic"); err == nil {
		out, err := exec.Command("restic", "-r", dstDir, "--no-cache", "--password-command", "echo target pw", "check", "--read-data").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "no errors were found") {
			t.Errorf("restic check of the target: %v\n%s", err, out)
		}
	} else if testenv.CI() {
		t.Fatal("restic is not installed but CI=true")
	}
	if err := dst.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	sns, _ := dst.Snapshots(ctx, nil)
	for _, sn := range sns {
		if *sn.Original != s2.ID {
			continue
		}
		target := t.TempDir()
		if _, err := restorer.Restore(ctx, dst, *sn.Tree, target, restorer.Options{}); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("diff", "-r", data, filepath.Join(target, data)).CombinedOutput(); err != nil {
			t.Errorf("the copy restores differently: %v\n%s", err, out)
		}
		return
	}
	t.Errorf("no copy of %s in the target", s2.ID.Str())
}
