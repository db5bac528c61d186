package plans

import (
	"fmt"
	"strings"
	"testing"
)

// TestLintObjectLockCoversPins: the warning starts exactly where the
// retention from the window's start ends before the pins (window end + 30
// days), for the repository and its copy_to alike, and a plan without a
// window (pins without an end date) draws none.
func TestLintObjectLockCoversPins(t *testing.T) {
	// start 2027-02-05 18:00, end 2027-02-17 09:00: pinned until
	// 2027-03-19 09:00, 41.6 days after the start
	const window = "window: {start: 2027-02-05T18:00:00+08:00, end: 2027-02-17T09:00:00+08:00}\n"
	for _, tc := range []struct {
		name, window   string
		days, copyDays int
		want           []string // paths warned about
	}{
		{"covers", window, 42, 0, nil},
		{"short by hours", window, 41, 0, []string{"repository.object_lock.days"}},
		{"copy short", window, 60, 10, []string{"repository.copy_to.object_lock.days"}},
		{"no window", "", 1, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := "version: 1\nmanagement: [10.0.0.0/24]\n" + tc.window +
				fmt.Sprintf("repository:\n  url: s3:https://s3.example.com/b/p\n  password_env: P\n  object_lock: {days: %d}\n", tc.days)
			if tc.copyDays > 0 {
				plan += fmt.Sprintf("  copy_to: {url: s3:https://s3.other.example/b/p, password_env: P, object_lock: {days: %d, mode: compliance}}\n", tc.copyDays)
			}
			plan += "hosts:\n  - {name: web1, address: 10.0.1.10, backup: [{files: [/etc]}]}\n"
			p, err := Parse("p.yaml", []byte(plan), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range Lint(p) {
				if e.Severity != SevWarning || !strings.Contains(e.Msg, "pinned until 2027-03-19") {
					t.Errorf("unexpected finding: %v", e)
					continue
				}
				got = append(got, e.Path)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("warnings on %v, want %v", got, tc.want)
			}
		})
	}
}
