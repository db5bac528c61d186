package torture_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/backup/torture"
	"github.com/holiday-ops/holiday/internal/testenv"
)

const password = "correct horse battery staple"

// needRestic returns the path of stock restic, skipping the test with a
// reason when it is absent — and failing instead when CI=true, where a
// skipped oracle would be a hole in the proof.
func needRestic(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("restic")
	if err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); the interop tests need it as the format oracle")
	}
	return p
}

func restic(t *testing.T, repoDir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("restic", append([]string{"-r", repoDir, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func corpus(t *testing.T) (string, map[string]torture.Entry) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "corpus")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	size := int64(1 << 30)
	if testing.Short() {
		size = 64 << 20
	}
	skipped, err := torture.Generate(dir, torture.Options{SparseSize: size})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		if testenv.CI() {
			t.Errorf("corpus incomplete in CI: %s", s)
		}
		t.Logf("corpus without %s", s)
	}
	m, err := torture.Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

func compare(t *testing.T, what string, want map[string]torture.Entry, dir string) {
	t.Helper()
	got, err := torture.Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d := torture.Diff(want, got); len(d) > 0 {
		t.Errorf("%s differs from the corpus in %d entries:\n%s", what, len(d), strings.Join(d, "\n"))
	}
}

func holidayCheck(t *testing.T, ctx context.Context, dir string) {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, password)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("holiday check --read-data found problems: %+v", rep.Problems)
	}
}

func openRepo(t *testing.T, ctx context.Context, dir string) *repo.Repository {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, password)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func countBlobs(r *repo.Repository, typ repo.BlobType) int {
	n := 0
	r.Index().Each(func(pb repo.PackedBlob) bool {
		if pb.Type == typ {
			n++
		}
		return true
	})
	return n
}

func backup(t *testing.T, ctx context.Context, r *repo.Repository, dir string) *repo.Snapshot {
	t.Helper()
	sn, _, err := archiver.Backup(ctx, r, []string{dir}, archiver.Options{Tags: []string{"torture"}})
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// TestHolidayToRestic: a repository holiday writes passes restic's check
// --read-data and restic restore reproduces the corpus; holiday's own
// restore does too, with the sparse file's holes kept.
func TestHolidayToRestic(t *testing.T) {
	needRestic(t)
	ctx := context.Background()
	src, want := corpus(t)
	repoDir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, password)
	if err != nil {
		t.Fatal(err)
	}
	sn := backup(t, ctx, r, src)
	// a second, incremental run must add nothing but a snapshot
	r = openRepo(t, ctx, repoDir)
	dataBefore := countBlobs(r, repo.DataBlob)
	_, st, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// only trees may change (atimes moved when the first run read the
	// corpus, as with restic); no file content may be stored again
	if n := countBlobs(r, repo.DataBlob); n != dataBefore {
		t.Errorf("unchanged re-run stored %d new data blobs (%d bytes added)", n-dataBefore, st.BytesAdded)
	}

	out := restic(t, repoDir, "check", "--read-data")
	if !strings.Contains(out, "no errors were found") {
		t.Fatalf("restic check:\n%s", out)
	}
	target := t.TempDir()
	restic(t, repoDir, "restore", sn.ID.String(), "--target", target)
	compare(t, "restic's restore of holiday's snapshot", want, filepath.Join(target, src))

	holidayCheck(t, ctx, repoDir)
	target2 := t.TempDir()
	if _, err := restorer.Restore(ctx, r, *sn.Tree, target2, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(target2, src)
	compare(t, "holiday's restore of holiday's snapshot", want, restored)
	var st1 syscall.Stat_t
	if err := syscall.Stat(filepath.Join(restored, "sparse"), &st1); err != nil {
		t.Fatal(err)
	}
	if alloc := st1.Blocks * 512; alloc > 1<<20 {
		t.Errorf("the sparse file was restored with %d bytes allocated: holes not kept", alloc)
	}
}

// TestResticToHoliday: a repository restic writes is listed, dumped and
// restored by holiday, backed up into by holiday, and still checks clean
// in restic, which also restores holiday's snapshot in it.
func TestResticToHoliday(t *testing.T) {
	needRestic(t)
	ctx := context.Background()
	src, want := corpus(t)
	repoDir := filepath.Join(t.TempDir(), "repo")
	restic(t, repoDir, "init")
	restic(t, repoDir, "backup", "--tag", "restic", src)

	r := openRepo(t, ctx, repoDir)
	sn, err := r.FindSnapshot(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := restorer.Walk(ctx, r, *sn.Tree, func(p string, _ *repo.Node) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n < len(want) {
		t.Errorf("holiday lists %d entries, the corpus has %d", n, len(want))
	}
	node, err := restorer.FindNode(ctx, r, *sn.Tree, filepath.Join(src, "a/eight-mib-plus-one"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if err := restorer.Dump(ctx, r, node, h); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want["a/eight-mib-plus-one"].SHA256 {
		t.Errorf("dump of a restic snapshot: sha256 %s, want %s", got, want["a/eight-mib-plus-one"].SHA256)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, *sn.Tree, target, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	compare(t, "holiday's restore of restic's snapshot", want, filepath.Join(target, src))

	hsn := backup(t, ctx, r, src)
	out := restic(t, repoDir, "check", "--read-data")
	if !strings.Contains(out, "no errors were found") {
		t.Fatalf("restic check after holiday's backup:\n%s", out)
	}
	target2 := t.TempDir()
	restic(t, repoDir, "restore", hsn.ID.String(), "--target", target2)
	compare(t, "restic's restore of holiday's snapshot in restic's repository", want, filepath.Join(target2, src))
	holidayCheck(t, ctx, repoDir)
}
