package archiver_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/testenv"
)

const pw = "crash"

// TestMain doubles as the child of TestCrashSafety: with
// HOLIDAY_CRASH_CHILD set it runs one locked backup and exits, so that
// the parent can kill -9 it wherever it happens to be.
func TestMain(m *testing.M) {
	if dir := os.Getenv("HOLIDAY_CRASH_CHILD"); dir != "" {
		os.Exit(crashChild(dir, os.Getenv("HOLIDAY_CRASH_SRC")))
	}
	os.Exit(m.Run())
}

func crashChild(repoDir, src string) int {
	ctx := context.Background()
	be, err := local.Open(repoDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := repo.Open(ctx, be, pw)
	if err == nil {
		err = r.LoadIndex(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	h, err := r.Lock(ctx, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer h.Unlock(ctx)
	if _, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestCrashSafety(t *testing.T) {
	testenv.Short(t, "kills backups at many points")
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	for i := 0; i < 12; i++ {
		b := make([]byte, (i+1)*3<<20)
		_, _ = rand.Read(b)
		p := filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repoDir := filepath.Join(dir, "repo")
	be, err := local.Create(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, be, pw); err != nil {
		t.Fatal(err)
	}
	_, haveRestic := exec.LookPath("restic")
	if haveRestic != nil && testenv.CI() {
		t.Fatal("restic is not installed but CI=true")
	}
	// the child opens the repository (~0.5 s of scrypt) before it writes
	for i, delay := range []time.Duration{400, 700, 900, 1000, 1100, 1200, 1300, 1450, 1600, 1800, 2100, 2500} {
		// each round adds new data so that every kill lands in fresh writes
		b := make([]byte, 5<<20)
		_, _ = rand.Read(b)
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("new%d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HOLIDAY_CRASH_CHILD="+repoDir, "HOLIDAY_CRASH_SRC="+src)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()

		// no temporary file outside tmp/
		_ = filepath.Walk(repoDir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && strings.Contains(fi.Name(), "-tmp-") && filepath.Base(filepath.Dir(p)) != "tmp" {
				t.Errorf("kill after %v: temporary file %s left outside tmp/", delay*time.Millisecond, p)
			}
			return nil
		})
		r, err := repo.Open(ctx, be, pw)
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
			t.Errorf("kill after %v: holiday check: %+v", delay*time.Millisecond, rep.Problems)
		}
		if haveRestic == nil {
			out, err := exec.Command("restic", "-r", repoDir, "--no-cache", "--password-command", "echo "+pw, "check", "--read-data").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "no errors were found") {
				t.Errorf("kill after %v: restic check: %v\n%s", delay*time.Millisecond, err, out)
			}
		}
		t.Logf("kill after %v: %d snapshots, %d packs, %d unreferenced", delay*time.Millisecond, rep.Snapshots, rep.Packs, len(rep.Unreferenced))
	}
	// and the next backup works and restores
	r, err := repo.Open(ctx, be, pw)
	if err == nil {
		err = r.LoadIndex(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	sn, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(ctx, r, *sn.Tree, target, restorer.Options{}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("diff", "-r", src, filepath.Join(target, src)).CombinedOutput()
	if err != nil {
		t.Errorf("restore after the crashes differs: %v\n%s", err, out)
	}
}
