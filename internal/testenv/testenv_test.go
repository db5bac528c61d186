package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// recordingTB catches Skip and Fatalf instead of ending the goroutine, so
// the helpers' choice can be seen.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestHelpers(t *testing.T) {
	const reason = "needs frobnicate (apt-get install frobnicate)"
	shortSkip := "" // what Short says in this run: it follows this run's -short
	if testing.Short() {
		shortSkip = "slow: not with -short"
	}
	for _, tc := range []struct {
		name          string
		ci            string
		call          func(testing.TB)
		skip, failure string // what the helper must have said; "" for nothing
	}{
		{"Skip outside CI", "", func(t testing.TB) { Skip(t, reason) }, reason, ""},
		{"Skip under CI=true", "true", func(t testing.TB) { Skip(t, reason) }, "", reason + " [CI=true: a missing component is a failure, not a skip]"},
		{"Skip under CI=1 (only true counts)", "1", func(t testing.TB) { Skip(t, reason) }, reason, ""},
		{"Skipf under CI=true", "true", func(t testing.TB) { Skipf(t, "needs %s", "x") }, "", "needs x [CI=true: a missing component is a failure, not a skip]"},
		{"Skipf outside CI", "", func(t testing.TB) { Skipf(t, "needs %s", "x") }, "needs x", ""},
		{"OptIn unset under CI=true", "true", func(t testing.TB) { OptIn(t, "HOLIDAY_TESTENV_UNSET") }, "HOLIDAY_TESTENV_UNSET is not set (opt-in)", ""},
		{"Short under CI=true", "true", func(t testing.TB) { Short(t, "slow") }, shortSkip, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv("HOLIDAY_TESTENV_UNSET", "")
			r := &recordingTB{TB: t}
			tc.call(r)
			if r.skipped != tc.skip || r.failed != tc.failure {
				t.Errorf("skipped %q, failed %q; want skipped %q, failed %q", r.skipped, r.failed, tc.skip, tc.failure)
			}
		})
	}
	t.Run("OptIn set", func(t *testing.T) {
		t.Setenv("HOLIDAY_TESTENV_SET", "/some/image")
		r := &recordingTB{TB: t}
		if v := OptIn(r, "HOLIDAY_TESTENV_SET"); v != "/some/image" || r.skipped != "" || r.failed != "" {
			t.Errorf("OptIn = %q, skipped %q, failed %q", v, r.skipped, r.failed)
		}
	})
}

// childEnv names the helper TestChild calls when this test binary runs
// itself as a child; TestChild does nothing (and passes) otherwise.
const childEnv = "HOLIDAY_TESTENV_CHILD"

func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
		return
	case "skip":
		Skip(t, "needs frobnicate")
	case "short":
		Short(t, "slow")
	case "optin":
		OptIn(t, "HOLIDAY_TESTENV_UNSET")
	}
	t.Log("not skipped")
}

// TestSkipFailsUnderCI runs this test binary again with a real
// testing.T: under CI=true a skip for a missing component must make
// `go test` fail, not report a skip; -short and an unset opt-in must not.
func TestSkipFailsUnderCI(t *testing.T) {
	for _, tc := range []struct {
		helper, ci string
		short      bool
		wantFail   bool
		want       string // in the child's -test.v output
	}{
		{"skip", "true", false, true, "--- FAIL: TestChild"},
		{"skip", "", false, false, "--- SKIP: TestChild"},
		{"short", "true", true, false, "--- SKIP: TestChild"},
		{"short", "true", false, false, "not skipped"},
		{"optin", "true", false, false, "--- SKIP: TestChild"},
	} {
		t.Run(fmt.Sprintf("%s/CI=%s/short=%v", tc.helper, tc.ci, tc.short), func(t *testing.T) {
			args := []string{"-test.run=^TestChild$", "-test.v", "-test.count=1"}
			if tc.short {
				args = append(args, "-test.short")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), childEnv+"="+tc.helper, "CI="+tc.ci, "HOLIDAY_TESTENV_UNSET=")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			switch {
			case err != nil && !errors.As(err, &ee):
				t.Fatalf("running the child: %v", err)
			case tc.wantFail && err == nil:
				t.Errorf("the child passed; want it to fail:\n%s", out)
			case !tc.wantFail && err != nil:
				t.Errorf("the child failed (%v); want it to pass:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("child output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}
