// Package testenv is test support: the one way a holiday test skips.
//
// A test skips for one of two reasons, and the difference matters in CI:
//
//   - Something it needs is missing (root, a tool, the lab, a lab host):
//     Skip and Skipf. Under CI=true they fail the test instead, because CI
//     installs every component (scripts/check.sh, lab/setup.sh) and a skip
//     there is a test that silently never ran. So `CI=true go test ./...`
//     fails on its own, without anything reading the log.
//   - The run did not ask for it: Short (the run passed -short) and OptIn
//     (an opt-in variable, such as a benchmark's input, is unset). These stay
//     plain skips under CI=true: an explicit request is not a missing
//     component, and CI runs neither -short nor benchmarks.
//
// Every skip in holiday's tests and test helpers goes through here; a bare
// t.Skip is a bug. scripts/check.sh's grep for "--- SKIP" in the test log
// is a second guard.
//
// It imports nothing of holiday's, so any package's tests may use it.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// CI reports whether the tests run in CI (CI=true), where every component
// a test needs is present.
func CI() bool { return os.Getenv("CI") == "true" }

// Skip skips t because something it needs is missing; reason says what and
// how to get it ("needs restic (apt-get install restic)"). Under CI=true it
// fails t with the same reason instead.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s [CI=true: a missing component is a failure, not a skip]", reason)
		return // a real testing.TB does not return from Fatalf; a fake may
	}
	t.Skip(reason)
}

// Skipf is Skip with a format.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, fmt.Sprintf(format, args...))
}

// Short skips t when the run passed -short; why says what makes the test
// too long for that ("kills backups at many points"). A plain skip under
// CI=true too: -short is the caller's request.
func Short(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why + ": not with -short")
	}
}

// OptIn returns the value of the environment variable name, and skips t
// when it is unset or empty: the test (typically a benchmark needing an
// input file) runs only when asked for. A plain skip under CI=true too.
func OptIn(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skip(name + " is not set (opt-in)")
	}
	return v
}
