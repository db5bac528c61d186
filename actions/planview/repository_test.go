package planview

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/plans"
)

// TestPinGraceAgrees: plans lints Object Lock against the pins with its
// own copy of the grace (it may not import backup).
func TestPinGraceAgrees(t *testing.T) {
	if plans.PinGrace != repo.PinGrace {
		t.Fatalf("plans.PinGrace %v != repo.PinGrace %v", plans.PinGrace, repo.PinGrace)
	}
}

// TestJudge: what each state of a repository makes of the plan's
// verdict: only a repository lockdown needs and cannot open is an error.
func TestJudge(t *testing.T) {
	now := time.Date(2027, 2, 1, 12, 0, 0, 0, time.UTC)
	pin := time.Date(2027, 3, 19, 1, 0, 0, 0, time.UTC)
	s3 := &plans.Repository{URL: "s3:https://s3.example.com/b/p"}
	want60 := &plans.Repository{URL: s3.URL, ObjectLock: &plans.ObjectLock{Days: 60, Mode: "compliance"}}
	locked := func(days int, mode string, cfg time.Time) *repo.Immutability {
		return &repo.Immutability{Supported: true, Enabled: true, Setting: &repo.ObjectLock{Days: days, Mode: mode}, ConfigUntil: cfg}
	}
	refused := exitcode.WithHint(exitcode.Usage, errors.New("open repository x: wrong password"), "check the password file")
	missing := fmt.Errorf("open repository x: %w", repo.ErrNoRepository)
	for _, tc := range []struct {
		name  string
		role  string
		r     *plans.Repository
		im    *repo.Immutability
		err   error
		need  int
		pin   time.Time
		codes string // the findings' severity:code, in order
		hint  string
		state string // a piece of the rendered line
	}{
		{"needed and refused", "repository", s3, nil, refused, 3, pin, "error:repository-unreachable", "check the password file", "NOT REACHABLE: open repository x: wrong password"},
		{"not needed", "repository", s3, nil, refused, 0, pin, "warning:repository-unreachable", "check the password file", "NOT REACHABLE"},
		{"copy missing", "copy_to", s3, nil, missing, 3, pin, "warning:copy-unreachable", "`holiday repo init -f PLAN --copy-to` creates it", "NOT REACHABLE"},
		{"repository missing", "repository", s3, nil, missing, 1, pin, "error:repository-unreachable", "`holiday repo init -f PLAN` creates it", "NOT REACHABLE"},
		{"directory", "repository", &plans.Repository{URL: "/srv/r"}, &repo.Immutability{}, nil, 3, pin, "", "", "not immutable (a directory"},
		{"bucket without lock", "repository", s3, &repo.Immutability{Supported: true}, nil, 3, pin, "", "", "no Object Lock"},
		{"plan asks, repository has none", "repository", want60, &repo.Immutability{Supported: true, Enabled: true}, nil, 3, pin, "warning:object-lock-missing", "", "gives new files no retention"},
		{"covers the pins", "repository", want60, locked(60, "COMPLIANCE", now.Add(24*time.Hour)), nil, 3, pin, "", "", "immutable until 2027-02-02 12:00 UTC"},
		{"differs and short", "repository", want60, locked(30, "GOVERNANCE", now.Add(24*time.Hour)), nil, 3, pin, "warning:object-lock-differs warning:object-lock-short", "", "retained 30 days (governance), a snapshot taken now until 2027-03-03 12:00 UTC"},
		{"short without a window is fine", "repository", s3, locked(1, "GOVERNANCE", now.Add(time.Hour)), nil, 3, time.Time{}, "", "", "immutable until 2027-02-01 13:00 UTC"},
		{"config retention over", "copy_to", s3, locked(60, "GOVERNANCE", now.Add(-time.Hour)), nil, 3, pin, "", "", "not immutable: the config's retention ended 2027-02-01 11:00 UTC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Judge(tc.role, tc.r, tc.im, tc.err, tc.need, tc.pin, now)
			var codes []string
			for _, f := range got.Findings {
				codes = append(codes, f.Severity+":"+f.Code)
			}
			if strings.Join(codes, " ") != tc.codes {
				t.Errorf("findings %v, want %q: %+v", codes, tc.codes, got.Findings)
			}
			if got.Hint != tc.hint {
				t.Errorf("hint %q, want %q", got.Hint, tc.hint)
			}
			if got.Reachable != (tc.err == nil) || got.Role != tc.role || got.URL != tc.r.URL {
				t.Errorf("reachable %v role %s url %s", got.Reachable, got.Role, got.URL)
			}
			o := &preflight.Output{Repositories: []*preflight.Repository{got}}
			var b strings.Builder
			if err := o.WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), tc.state) {
				t.Errorf("line lacks %q:\n%s", tc.state, b.String())
			}
			if o.Blocked() != (tc.codes == "error:repository-unreachable") {
				t.Errorf("Blocked = %v", o.Blocked())
			}
		})
	}
}

// TestRepositoriesLocal: the real path on local directories: a
// repository made with its password is reachable and not immutable; a
// copy_to that does not exist is a warning with the init hint; a wrong
// password on the repository lockdown backs up into is an error.
func TestRepositoriesLocal(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("planview\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rdir := filepath.Join(dir, "repo")
	e := &repocmd.Env{Repo: rdir, PasswordFile: pw, Stdout: new(strings.Builder), Stderr: new(strings.Builder)}
	if err := repocmd.Init(context.Background(), e, repocmd.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	plan := func(pwFile string) *plans.Plan {
		text := fmt.Sprintf(`version: 1
management: [10.0.0.0/24]
repository:
  url: %s
  password_file: %s
  copy_to: {url: %s, password_file: %s}
hosts:
  - {name: web1, address: 10.0.1.10, backup: [{files: [/etc]}]}
`, rdir, pwFile, filepath.Join(dir, "copy"), pw)
		p, err := plans.Parse("p.yaml", []byte(text), plans.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rs := Repositories(context.Background(), plan(pw), false, false)
	if len(rs) != 2 || !rs[0].Reachable || rs[0].ObjectLock == nil || rs[0].ObjectLock.Supported || len(rs[0].Findings) != 0 {
		t.Fatalf("repository: %+v", rs[0])
	}
	if rs[1].Reachable || rs[1].Hint != "`holiday repo init -f PLAN --copy-to` creates it" || len(rs[1].Findings) != 1 || rs[1].Findings[0].Severity != preflight.SevWarning {
		t.Errorf("copy_to: %+v", rs[1])
	}
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs = Repositories(context.Background(), plan(wrong), false, false)
	if rs[0].Reachable || !strings.Contains(rs[0].Error, "wrong password") || len(rs[0].Findings) != 1 || rs[0].Findings[0].Severity != preflight.SevError {
		t.Errorf("wrong password: %+v", rs[0])
	}
	// --without-backups: lockdown still keeps the baselines there, so it
	// would stop all the same
	rs = Repositories(context.Background(), plan(wrong), true, false)
	if f := rs[0].Findings[0]; f.Severity != preflight.SevError || !strings.Contains(f.Message, "integrity baselines of 1 host") {
		t.Errorf("wrong password, without backups: %+v", rs[0].Findings)
	}
	// and --without-baseline too: lockdown does not need it, a warning
	rs = Repositories(context.Background(), plan(wrong), true, true)
	if rs[0].Findings[0].Severity != preflight.SevWarning {
		t.Errorf("wrong password, without backups and baselines: %+v", rs[0].Findings)
	}
}
