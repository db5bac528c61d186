package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/backend/s3/s3test"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// TestPlanLabRepository: `holiday repo init -f PLAN` makes the plan's
// repository on the lab's versitygw with the plan's object_lock (a new
// bucket with Object Lock) and its copy_to; `holiday plan` then reports
// the repository reachable and immutable until about now + the days,
// warns that the retention ends before the pins, and reports a copy_to
// that does not exist yet, or a directory, without failing the plan; a
// wrong password on the repository lockdown backs up into makes the
// plan not ready (exit 2), as lockdown would stop. No secret is printed.
func TestPlanLabRepository(t *testing.T) {
	testenv.Short(t, "builds the binary, checks a lab host and uses the lab's S3 server")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	h := lab.MustHost(t, "light1")
	h.RLock(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, "plan repository\n")
	t.Setenv(s3test.AccessKeyEnv, lab.S3AccessKey)
	t.Setenv(s3test.SecretKeyEnv, lab.S3SecretKey)
	bucket := s3test.BucketName(t)
	t.Cleanup(func() {
		be, err := s3be.Open(context.Background(), s3be.Config{Endpoint: lab.S3Endpoint, Bucket: bucket, Region: lab.S3Region,
			AccessKeyIDEnv: s3test.AccessKeyEnv, SecretAccessKeyEnv: s3test.SecretKeyEnv})
		if err != nil {
			return // never made
		}
		s3test.Remove(t, be.Client(), bucket) // governance: lifted with the bypass
	})
	now := time.Now()
	repoURL := "s3:" + lab.S3Endpoint + "/" + bucket + "/spring"
	copyDir := filepath.Join(dir, "copy")
	repoYAML := fmt.Sprintf(`window: {start: %s, end: %s}
repository:
  url: %s
  password_file: %s
  s3: {access_key_id_env: %s, secret_access_key_env: %s, region: %s}
  object_lock: {days: 2, mode: governance}
  copy_to: {url: %s, password_file: %s}
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(24*time.Hour).Format(time.RFC3339),
		repoURL, pw, s3test.AccessKeyEnv, s3test.SecretKeyEnv, lab.S3Region, copyDir, pw)
	plan := strings.Replace(planHeader(lab, "10.213.0.0/24", "ops", "", ""), "hosts:\n", repoYAML+"hosts:\n", 1) +
		fmt.Sprintf("  - {name: light1, address: %s, backup: [{files: [/etc/hostname]}]}\n", h.Addr)
	planFile := writeTestPlan(t, plan)

	// init: refused beside --repo, then the plan's repository with its lock
	if _, stderr, code := runPlanBinary(t, "repo", "init", "-f", planFile, "--repo", copyDir); code != 1 || !strings.Contains(stderr, "--repo and -f PLAN") {
		t.Errorf("init -f with --repo: exit %d, %s", code, stderr)
	}
	if stdout, stderr, code := runPlanBinary(t, "repo", "init", "-f", planFile); code != 0 {
		t.Fatalf("repo init -f PLAN: exit %d\n%s%s", code, stdout, stderr)
	}

	type planRepos struct {
		Repositories []*preflight.Repository `json:"repositories"`
		Summary      map[string]int          `json:"summary"`
	}
	run := func(wantCode int, args ...string) (planRepos, string) {
		t.Helper()
		stdout, stderr, code := runPlanBinary(t, append([]string{"plan", "-f", planFile}, args...)...)
		for _, secret := range []string{lab.S3SecretKey, "plan repository"} {
			if strings.Contains(stdout+stderr, secret) {
				t.Errorf("a secret is in the output:\n%s%s", stdout, stderr)
			}
		}
		if code != wantCode {
			t.Fatalf("plan %v: exit %d, want %d\n%s%s", args, code, wantCode, stdout, stderr)
		}
		var out planRepos
		if len(args) > 0 && args[0] == "--json" {
			if err := json.Unmarshal([]byte(stdout), &out); err != nil {
				t.Fatalf("plan --json: %v\n%s", err, stdout)
			}
			if len(out.Repositories) != 2 {
				t.Fatalf("repositories: %+v", out.Repositories)
			}
		}
		return out, stdout + stderr
	}
	codes := func(r *preflight.Repository) string {
		var c []string
		for _, f := range r.Findings {
			c = append(c, f.Severity+":"+f.Code)
		}
		return strings.Join(c, " ")
	}

	out, all := run(0, "--json")
	r, c := out.Repositories[0], out.Repositories[1]
	if !r.Reachable || r.URL != repoURL || r.ObjectLock == nil || !r.ObjectLock.Bucket || r.ObjectLock.Days != 2 || r.ObjectLock.Mode != "GOVERNANCE" {
		t.Fatalf("repository: %+v %+v", r, r.ObjectLock)
	}
	// the config was written at init, moments ago: retained two days
	if d := r.ObjectLock.ImmutableUntil.Sub(now.Add(48 * time.Hour)); d < -time.Minute || d > 5*time.Minute {
		t.Errorf("immutable until %v, want about %v", r.ObjectLock.ImmutableUntil, now.Add(48*time.Hour))
	}
	if codes(r) != "warning:object-lock-short" {
		t.Errorf("repository findings %q, want the retention-before-pins warning", codes(r))
	}
	if c.Reachable || c.Hint != "`holiday repo init -f PLAN --copy-to` creates it" || codes(c) != "warning:copy-unreachable" {
		t.Errorf("copy_to: %+v", c)
	}
	if !strings.Contains(all, "repository.object_lock.days: warning: snapshots are protected until") {
		t.Errorf("no lint warning on stderr:\n%s", all)
	}

	// the second copy made from the plan: a directory, not immutable
	if stdout, stderr, code := runPlanBinary(t, "repo", "init", "-f", planFile, "--copy-to"); code != 0 {
		t.Fatalf("repo init -f PLAN --copy-to: exit %d\n%s%s", code, stdout, stderr)
	}
	_, table := run(0)
	t.Logf("holiday plan:\n%s", table)
	until := r.ObjectLock.ImmutableUntil.UTC().Format("2006-01-02 15:04 MST")
	for _, want := range []string{
		"repository:  " + repoURL + "  reachable, immutable until " + until + " (the config, written first; new files are retained 2 days (governance)",
		"copy_to:     " + copyDir + "  reachable, not immutable (a directory",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}

	// a wrong password: lockdown would stop before any host
	writeFile(t, pw, "not the password\n")
	out, all = run(2, "--json")
	if r := out.Repositories[0]; r.Reachable || codes(r) != "error:repository-unreachable" || !strings.Contains(r.Error, "wrong password") {
		t.Errorf("wrong password: %+v", r)
	}
	if !strings.Contains(all, "lockdown would stop before any host: the plan's repository cannot be opened") {
		t.Errorf("exit 2 without saying why:\n%s", all)
	}
	if out.Summary[preflight.StatusFailed]+out.Summary[preflight.StatusRefused] != 0 {
		t.Errorf("the host itself should be ready: %v", out.Summary)
	}
	_ = os.Remove(pw)
}
