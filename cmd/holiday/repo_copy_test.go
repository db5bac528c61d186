package main

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// TestRepoCopyToS3: holiday repo copy from a local repository to one on
// the lab's versitygw with another password: the run's snapshots cross
// (pins and original kept), both are checked, a second copy sends
// nothing, and restic reads the copy byte for byte.
func TestRepoCopyToS3(t *testing.T) {
	testenv.Short(t, "builds the binary, runs scrypt and the lab's S3 server")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	rp := newS3Repo(t, lab, "copy", "first\n")
	bin, dir, pw, remote := rp.bin, rp.dir, rp.pw, rp.url
	pw2 := filepath.Join(dir, "pw2")
	writeFile(t, pw2, "second copy\n")
	local := filepath.Join(dir, "repo")
	env := append(rp.env, "HOLIDAY_PASSWORD_FILE="+pw, "HOLIDAY_REPOSITORY="+local)
	holiday := func(args ...string) string {
		t.Helper()
		r := runHoliday(t, bin, env, append([]string{"repo"}, args...)...)
		if r.code != 0 {
			t.Fatalf("holiday repo %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	holiday("init")
	holiday("init", "--repo", remote, "--password-file", pw2)
	src := filepath.Join(dir, "src")
	big := make([]byte, 4<<20)
	_, _ = rand.Read(big)
	writeFile(t, filepath.Join(src, "big"), string(big))
	writeFile(t, filepath.Join(src, "etc", "hosts"), "127.0.0.1 localhost\n")
	holiday("backup", "-q", "--host", "web1", "--tag", "run:r1", "--tag", "holiday-pin", "--tag", "pin-until:2999-01-01", src)
	holiday("backup", "-q", "--host", "web1", "--tag", "run:r0", src)

	out := holiday("copy", "--to-repo", remote, "--to-password-file", pw2, "--tag", "run:r1", "--check")
	t.Logf("copy:\n%s", out)
	if !strings.Contains(out, "1 snapshots copied") || strings.Count(out, "no errors were found") != 2 {
		t.Errorf("copy --check output:\n%s", out)
	}
	if out := holiday("copy", "--to-repo", remote, "--to-password-file", pw2, "--tag", "run:r1"); !strings.Contains(out, "0 snapshots copied, 1 already there; 0 blobs") {
		t.Errorf("second copy:\n%s", out)
	}
	// the other run's snapshot shares every file's data: only its trees
	// (times differ) cross
	var st struct {
		Snapshots int   `json:"snapshots"`
		Bytes     int64 `json:"bytes"`
	}
	if out := holiday("copy", "--json", "--to-repo", remote, "--to-password-file", pw2, "--tag", "run:r0"); json.Unmarshal([]byte(out), &st) != nil || st.Snapshots != 1 || st.Bytes > 64<<10 {
		t.Errorf("copy of a snapshot whose data is there sent more than its trees:\n%s", out)
	}
	var sns []snapJSON
	if err := json.Unmarshal([]byte(holiday("snapshots", "--json", "--repo", remote, "--password-file", pw2)), &sns); err != nil || len(sns) != 2 {
		t.Fatalf("target snapshots: %v %+v", err, sns)
	}
	for _, s := range sns {
		if s.Original == "" || s.Original == s.ID {
			t.Errorf("copied snapshot %s has original %q", s.ID, s.Original)
		}
	}
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed; the copy is not checked by the oracle")
		return
	}
	cmd := exec.Command("restic", "-r", remote, "--no-cache", "--password-file", pw2, "check", "--read-data")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "no errors were found") {
		t.Errorf("restic check of the copy: %v\n%s", err, out)
	}
}
