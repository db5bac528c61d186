package prune

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/forget"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/testenv"
)

const pw = "prune"

// TestMain doubles as the child of TestPruneCrash: with
// HOLIDAY_PRUNE_CHILD set it prunes that repository and kills itself
// with SIGKILL at the HOLIDAY_PRUNE_KILL_AT-th point where prune has
// changed the repository (0: never; the count is printed at the end).
func TestMain(m *testing.M) {
	if dir := os.Getenv("HOLIDAY_PRUNE_CHILD"); dir != "" {
		at, _ := strconv.Atoi(os.Getenv("HOLIDAY_PRUNE_KILL_AT"))
		os.Exit(pruneChild(dir, at))
	}
	os.Exit(m.Run())
}

func pruneChild(dir string, killAt int) int {
	ctx := context.Background()
	r, err := openRepo(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h, err := r.Lock(ctx, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n := 0
	st, err := Prune(ctx, r, Options{MaxUnused: 0, hook: func(point string) {
		n++
		if n == killAt {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
	}})
	_ = h.Unlock(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("points=%d repacked=%d deleted=%d\n", n, st.RepackPacks, st.DeletePacks)
	return 0
}

func openRepo(ctx context.Context, dir string) (*repo.Repository, error) {
	be, err := local.Open(dir)
	if err != nil {
		return nil, err
	}
	return repo.Open(ctx, be, pw)
}

func writeRandom(t *testing.T, p string, n int) {
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

// fixture is a repository with five snapshots of one path whose files
// change between them, the oldest pinned: forget keeps the newest two
// and the pinned one, so that prune finds packs unused, partly used
// and fully used. sources holds a copy of each kept snapshot's tree.
type fixture struct {
	repoDir string
	kept    map[repo.ID]string // snapshot → copy of what it saved
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{repoDir: filepath.Join(dir, "repo"), kept: map[repo.ID]string{}}
	be, err := local.Create(f.repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, pw)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	var sns []*repo.Snapshot
	copies := map[repo.ID]string{}
	for i := range 5 {
		// each round replaces two files and adds one
		for j := range 3 {
			writeRandom(t, filepath.Join(src, fmt.Sprintf("d%d", j), fmt.Sprintf("f%d", (i*2+j)%6)), (1+j)<<20+i*4096)
		}
		writeRandom(t, filepath.Join(src, "small", fmt.Sprintf("s%d", i)), 3000)
		var tags []string
		if i == 0 {
			tags = repo.PinTags(time.Time{})
		}
		sn, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Tags: tags, Hostname: "node1"})
		if err != nil {
			t.Fatal(err)
		}
		sns = append(sns, sn)
		cp := filepath.Join(dir, fmt.Sprintf("copy%d", i))
		if out, err := exec.Command("cp", "-a", src, cp).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		copies[sn.ID] = cp
		if i == 2 {
			_ = os.RemoveAll(filepath.Join(src, "d2"))
		}
	}
	groups := forget.Apply(sns, forget.Policy{Last: 2}, time.Now())
	for _, g := range groups {
		for _, d := range g.Decisions {
			if d.Keep {
				f.kept[d.Snapshot.ID] = copies[d.Snapshot.ID]
			}
		}
	}
	if n, err := forget.Remove(ctx, r, groups, time.Now()); err != nil || n != 2 {
		t.Fatalf("forget removed %d snapshots (want 2): %v", n, err)
	}
	// and a pack no index lists, as a killed backup leaves one: stored
	// and indexed, then its index file removed
	before := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(f.repoDir, "index"))
	for _, e := range ents {
		before[e.Name()] = true
	}
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("orphan"), repo.ID{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(filepath.Join(f.repoDir, "index"))
	for _, e := range ents {
		if !before[e.Name()] {
			if err := os.Remove(filepath.Join(f.repoDir, "index", e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// verify checks the repository with holiday's check --read-data and
// restic's, and restores every kept snapshot and compares it.
func (f *fixture) verify(t *testing.T, dir, what string) {
	t.Helper()
	ctx := context.Background()
	r, err := openRepo(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RemoveStaleLocks(ctx, false); err != nil {
		t.Fatal(err)
	}
	rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("%s: holiday check: %+v", what, rep.Problems)
	}
	if _, err := exec.LookPath("restic"); err == nil {
		out, err := exec.Command("restic", "-r", dir, "--no-cache", "--password-command", "echo "+pw, "check", "--read-data").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "no errors were found") {
			t.Errorf("%s: restic check: %v\n%s", what, err, out)
		}
	} else if testenv.CI() {
		t.Fatal("restic is not installed but CI=true")
	}
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for id, cp := range f.kept {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			t.Errorf("%s: kept snapshot %s: %v", what, id.Str(), err)
			continue
		}
		target := t.TempDir()
		if _, err := restorer.Restore(ctx, r, *sn.Tree, target, restorer.Options{}); err != nil {
			t.Errorf("%s: restore %s: %v", what, id.Str(), err)
			continue
		}
		if out, err := exec.Command("diff", "-r", cp, filepath.Join(target, sn.Paths[0])).CombinedOutput(); err != nil {
			t.Errorf("%s: snapshot %s restores differently: %v\n%s", what, id.Str(), err, out)
		}
	}
}

func TestPrune(t *testing.T) {
	testenv.Short(t, "backs up and prunes 30 MiB")
	ctx := context.Background()
	f := newFixture(t)
	r, err := openRepo(ctx, f.repoDir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	dry, err := Prune(ctx, r, Options{MaxUnused: 0, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	r.SetIndex(repo.NewIndex())
	st, err := Prune(ctx, r, Options{MaxUnused: 0})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.Unlock(ctx)
	t.Logf("dry run: %+v", dry)
	t.Logf("prune:   %+v", st)
	if dry.DeletePacks != st.DeletePacks || dry.RepackPacks != st.RepackPacks {
		t.Errorf("the dry run planned %d/%d packs to delete/repack, prune did %d/%d", dry.DeletePacks, dry.RepackPacks, st.DeletePacks, st.RepackPacks)
	}
	if st.RepackPacks == 0 || st.DeletePacks <= st.RepackPacks || st.Unreferenced != 1 || st.UnusedAfter != 0 {
		t.Errorf("want partly used packs repacked, unused ones and the orphan deleted, nothing unused left: %+v", st)
	}
	f.verify(t, f.repoDir, "after prune")
	// a second prune finds nothing to do
	r, _ = openRepo(ctx, f.repoDir)
	again, err := Prune(ctx, r, Options{MaxUnused: 0})
	if err != nil {
		t.Fatal(err)
	}
	if again.DeletePacks != 0 || again.UnusedBytes != 0 {
		t.Errorf("a second prune still finds work: %+v", again)
	}
}

// TestPruneCrash kills prune (SIGKILL, from inside at each point where it
// has just changed the repository, and from outside at timed moments)
// and checks after each kill that the repository is valid for holiday
// and restic and that every kept and pinned snapshot restores exactly;
// then a prune run to the end leaves it valid too.
func TestPruneCrash(t *testing.T) {
	testenv.Short(t, "kills prune at many points")
	f := newFixture(t)
	base := filepath.Join(t.TempDir(), "base")
	if out, err := exec.Command("cp", "-a", f.repoDir, base).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	run := func(dir string, killAt int, after time.Duration) string {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HOLIDAY_PRUNE_CHILD="+dir, "HOLIDAY_PRUNE_KILL_AT="+strconv.Itoa(killAt))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if after > 0 {
			time.Sleep(after)
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		_ = cmd.Wait()
		return out.String()
	}
	fresh := func(name string) string {
		dir := filepath.Join(t.TempDir(), name)
		if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
		return dir
	}
	// how many points a whole prune has
	out := run(fresh("count"), 0, 0)
	var points, repacked, deleted int
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "points=%d repacked=%d deleted=%d", &points, &repacked, &deleted); err != nil || points < 5 {
		t.Fatalf("the uninterrupted prune said %q (%v)", out, err)
	}
	t.Logf("a whole prune has %d points (%d packs repacked, %d deleted)", points, repacked, deleted)
	var kills []int
	for k := 1; k <= points; k++ {
		if points <= 16 || k <= 4 || k >= points-3 || k%(points/8) == 0 {
			kills = append(kills, k)
		}
	}
	for _, k := range kills {
		dir := fresh(fmt.Sprintf("kill%d", k))
		if out := run(dir, k, 0); strings.Contains(out, "points=") {
			t.Fatalf("kill at point %d: the child finished: %s", k, out)
		}
		f.verify(t, dir, fmt.Sprintf("killed at point %d of %d", k, points))
		// and the next prune finishes the job
		if out := run(dir, 0, 0); !strings.Contains(out, "points=") {
			t.Fatalf("prune after the kill at point %d failed: %s", k, out)
		}
		f.verify(t, dir, fmt.Sprintf("pruned again after the kill at point %d", k))
	}
	// from outside, wherever it happens to be (the child spends ~0.5 s
	// on scrypt first)
	for _, d := range []time.Duration{600, 750, 900, 1100} {
		dir := fresh(fmt.Sprintf("timed%d", d))
		run(dir, 0, d*time.Millisecond)
		f.verify(t, dir, fmt.Sprintf("killed after %v", d*time.Millisecond))
	}
}
