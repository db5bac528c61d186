package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/testenv"
	"github.com/holiday-ops/holiday/plans"
)

// TestLockdownCopy: what lockdown calls after its hosts: the run's
// snapshots go to repository.copy_to and both repositories are checked;
// a copy_to that cannot be opened is an error with the command that
// finishes the job; no copy_to, nothing.
func TestLockdownCopy(t *testing.T) {
	testenv.Short(t, "builds the binary and runs scrypt")
	bin := holidayBin(t)
	dir := t.TempDir()
	pw, pw2 := filepath.Join(dir, "pw"), filepath.Join(dir, "pw2")
	writeFile(t, pw, "first\n")
	writeFile(t, pw2, "second\n")
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	env := []string{"HOLIDAY_PASSWORD_FILE=" + pw}
	for _, args := range [][]string{
		{"repo", "init", "--repo", first},
		{"repo", "init", "--repo", second, "--password-file", pw2},
		{"repo", "backup", "-q", "--repo", first, "--tag", "run:r1", filepath.Join(dir, "pw")},
		{"repo", "backup", "-q", "--repo", first, "--tag", "run:r0", filepath.Join(dir, "pw2")},
	} {
		if r := runHoliday(t, bin, env, args...); r.code != 0 {
			t.Fatalf("%v: %s", args, r.stderr)
		}
	}
	p := &plans.Plan{Repository: &plans.Repository{URL: first, PasswordFile: pw,
		CopyTo: &plans.Repository{URL: second, PasswordFile: pw2}}}
	run := func(p *plans.Plan) (string, error) {
		var out bytes.Buffer
		cmd := &cobra.Command{}
		cmd.SetContext(context.Background())
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := lockdownCopy(cmd, p, "r1", false)
		return out.String(), err
	}
	out, err := run(p)
	t.Logf("lockdown copy:\n%s", out)
	if err != nil || !strings.Contains(out, "1 snapshots copied") || strings.Count(out, "no errors were found") != 2 {
		t.Fatalf("copy_to: %v\n%s", err, out)
	}
	r := runHoliday(t, bin, []string{"HOLIDAY_PASSWORD_FILE=" + pw2}, "repo", "snapshots", "--repo", second)
	if !strings.Contains(r.stdout, "run:r1") || strings.Contains(r.stdout, "run:r0") || !strings.Contains(r.stdout, "1 snapshots") {
		t.Errorf("second repository holds:\n%s", r.stdout)
	}
	p.Repository.CopyTo.PasswordFile = pw // the wrong one
	out, err = run(p)
	if err == nil || exitcode.Of(err) != exitcode.HostsFailed || !strings.Contains(exitcode.HintOf(err), "holiday repo copy --to-repo "+second+" --tag run:r1") {
		t.Errorf("copy_to with the wrong password: %v (hint %q)\n%s", err, exitcode.HintOf(err), out)
	}
	p.Repository.CopyTo = nil
	if out, err := run(p); err != nil || out != "" {
		t.Errorf("no copy_to: %v %q", err, out)
	}
}
