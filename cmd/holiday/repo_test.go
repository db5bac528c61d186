package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/internal/testenv"
)

// holidayBin builds the binary once per test run.
func holidayBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "holiday")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type result struct {
	code           int
	stdout, stderr string
}

// runHoliday runs the binary with env added to the test's environment;
// a binary that cannot be started ends the test.
func runHoliday(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	r, err := execHoliday(bin, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runHolidayNoFatal is runHoliday for goroutines (no t.Fatal): a binary
// that cannot be started is exit code -1 with the error on stderr.
func runHolidayNoFatal(bin string, env []string, args ...string) result {
	r, err := execHoliday(bin, env, args...)
	if err != nil {
		return result{-1, "", err.Error()}
	}
	return r
}

func execHoliday(bin string, env []string, args ...string) (result, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{}, err
	}
	return result{code, so.String(), se.String()}, nil
}

// errorLine checks an operator sees exactly one error line (plus at most
// a hint) that says what went wrong.
func errorLine(t *testing.T, r result, wantCode int, want string) {
	t.Helper()
	t.Logf("exit %d, stderr: %s", r.code, strings.TrimSpace(r.stderr))
	if r.code != wantCode {
		t.Errorf("exit code %d, want %d; stderr:\n%s", r.code, wantCode, r.stderr)
	}
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		if strings.HasPrefix(l, "holiday: error:") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], want) {
		t.Errorf("want one error line containing %q, got:\n%s", want, r.stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRepoOperatorErrors(t *testing.T) {
	testenv.Short(t, "builds the binary and runs scrypt")
	bin := holidayBin(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, "right\n")
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "wrong\n")
	repoDir := filepath.Join(dir, "repo")
	if r := runHoliday(t, bin, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); r.code != 0 {
		t.Fatalf("init: %+v", r)
	} else if !strings.Contains(r.stderr, "second key") {
		t.Errorf("init does not urge a second key:\n%s", r.stderr)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"wrong password", nil, []string{"repo", "snapshots", "--repo", repoDir, "--password-file", bad}, 1, "wrong password"},
		{"missing repository", nil, []string{"repo", "snapshots", "--repo", filepath.Join(dir, "nope"), "--password-file", pw}, 1, "does not exist"},
		{"not a repository", nil, []string{"repo", "snapshots", "--repo", dir, "--password-file", pw}, 1, "no repository here"},
		{"no repository given", []string{"HOLIDAY_REPOSITORY="}, []string{"repo", "snapshots", "--password-file", pw}, 1, "no repository given"},
		{"no password given", []string{"HOLIDAY_PASSWORD_FILE=", "HOLIDAY_PASSWORD="}, []string{"repo", "snapshots", "--repo", repoDir}, 1, "no repository password given"},
		{"password from env", []string{"HOLIDAY_REPOSITORY=" + repoDir, "HOLIDAY_PASSWORD=wrong"}, []string{"repo", "snapshots"}, 1, "wrong password"},
		{"unknown snapshot", nil, []string{"repo", "ls", "--repo", repoDir, "--password-file", pw, "deadbeef"}, 1, "no snapshot matches"},
		{"tiny block size", nil, []string{"repo", "backup", "--repo", repoDir, "--password-file", pw, "--block-size", "4K", dir}, 1, "below the minimum of 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errorLine(t, runHoliday(t, bin, tc.env, tc.args...), tc.code, tc.want)
		})
	}
	// init, keys and env round trip
	env := []string{"HOLIDAY_REPOSITORY=" + repoDir, "HOLIDAY_PASSWORD=right"}
	second := filepath.Join(dir, "second")
	writeFile(t, second, "second\n")
	if r := runHoliday(t, bin, env, "repo", "key", "add", "--new-password-file", second); r.code != 0 {
		t.Fatalf("key add: %+v", r)
	}
	if r := runHoliday(t, bin, []string{"HOLIDAY_REPOSITORY=" + repoDir, "HOLIDAY_PASSWORD_FILE=" + second}, "repo", "key", "list"); r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("key list with the second key: %+v", r)
	}
}

// TestUnreadableSourceFile: a file the backup cannot read is named on one
// line, left out, and the snapshot of everything else is written.
func TestUnreadableSourceFile(t *testing.T) {
	testenv.Short(t, "builds the binary and runs a backup as another user")
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root to run the backup as another user (setpriv)")
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		testenv.Skip(t, "needs setpriv (util-linux)")
	}
	bin := holidayBin(t)
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "ok"), "readable")
	writeFile(t, filepath.Join(src, "secret"), "not for nobody")
	if err := os.Chmod(filepath.Join(src, "secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, "pw")
	repoDir := filepath.Join(dir, "repo")
	if r := runHoliday(t, bin, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	if out, err := exec.Command("chown", "-R", "65534:65534", repoDir, pw).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "repo", "backup", "-q", "--repo", repoDir, "--password-file", pw, src)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("backup with an unreadable file: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "secret") || !strings.Contains(s, "permission denied") || strings.Count(s, "holiday: error:") != 1 {
		t.Errorf("the unreadable file is not named clearly:\n%s", s)
	}
	if !strings.Contains(s, "snapshot") {
		t.Errorf("no snapshot of the rest:\n%s", s)
	}
	r := runHoliday(t, bin, nil, "repo", "ls", "--repo", repoDir, "--password-file", pw, "latest")
	if r.code != 0 || !strings.Contains(r.stdout, "/ok") || strings.Contains(r.stdout, "/secret") {
		t.Errorf("snapshot contents: %+v", r)
	}
}

// TestFullDisk: a repository on a small loop-mounted filesystem that fills
// up reports one clear line, and the repository is left consistent.
func TestFullDisk(t *testing.T) {
	testenv.Short(t, "builds the binary and fills a loop-mounted filesystem")
	if os.Geteuid() != 0 {
		testenv.Skip(t, "needs root to loop-mount a small filesystem")
	}
	bin := holidayBin(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("truncate", "-s", "24M", img).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		testenv.Skip(t, "mkfs.ext4: "+err.Error()+" "+string(out))
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		testenv.Skip(t, "loop mount not possible here: "+err.Error()+" "+string(out))
	}
	t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, "pw")
	repoDir := filepath.Join(mnt, "repo")
	if r := runHoliday(t, bin, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	src := filepath.Join(dir, "src")
	b := make([]byte, 40<<20)
	_, _ = rand.Read(b)
	writeFile(t, filepath.Join(src, "big"), string(b))
	r := runHoliday(t, bin, nil, "repo", "backup", "-q", "--repo", repoDir, "--password-file", pw, src)
	errorLine(t, r, 2, "no space left on device")
	// nothing half-written: no snapshot, no temporary file, and the check
	// passes (packs that made it are merely unreferenced)
	if ents, _ := os.ReadDir(filepath.Join(repoDir, "snapshots")); len(ents) != 0 {
		t.Errorf("a snapshot was written on a full disk")
	}
	if ents, _ := os.ReadDir(filepath.Join(repoDir, "tmp")); len(ents) != 0 {
		t.Errorf("%d temporary files left in tmp/", len(ents))
	}
	if r := runHoliday(t, bin, nil, "repo", "unlock", "--repo", repoDir, "--password-file", pw); r.code != 0 {
		t.Errorf("unlock: %+v", r)
	}
	if r := runHoliday(t, bin, nil, "repo", "check", "-q", "--read-data", "--repo", repoDir, "--password-file", pw); r.code != 0 {
		t.Errorf("check after a full disk: %+v", r)
	}
	if _, err := exec.LookPath("restic"); err == nil {
		out, err := exec.Command("restic", "-r", repoDir, "--no-cache", "--password-file", pw, "check").CombinedOutput()
		if err != nil {
			t.Errorf("restic check after a full disk: %v\n%s", err, out)
		}
	}
}
