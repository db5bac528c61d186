package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
)

func TestLatestRun(t *testing.T) {
	dir := t.TempDir()
	journal := func(run, host string) {
		p := actions.JournalPath(dir, run, host)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	journal("20261127T100000Z-aaaaaa", "web1")
	journal("20261127T100000Z-aaaaaa", "db1")
	journal("20261127T120000Z-bbbbbb", "web1") // a later run of web1 alone
	// Two runs in the same second: the one whose name sorts first
	// started last (run.json's start, in nanoseconds).
	journal("20261127T130000Z-ffffff", "app1")
	journal("20261127T130000Z-111111", "app1")
	started := func(run, at string) {
		b := []byte(`{"run":"` + run + `","started":"` + at + `"}`)
		if err := os.WriteFile(filepath.Join(actions.RunDir(dir, run), "run.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	started("20261127T130000Z-ffffff", "2026-11-27T13:00:00.100Z")
	started("20261127T130000Z-111111", "2026-11-27T13:00:00.900Z")
	// A later rollback of web1 is undone by its own pre-rollback
	// snapshot, never by restore's revert: restore's latest skips it.
	journal("20261128T090000Z-cccccc", "web1")
	if err := os.WriteFile(filepath.Join(actions.RunDir(dir, "20261128T090000Z-cccccc"), "run.json"),
		[]byte(`{"run":"20261128T090000Z-cccccc","command":"rollback","started":"2026-11-28T09:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		hosts []string
		want  string
		err   string
	}{
		{"newest run with any of the hosts, not a rollback", []string{"web1", "db1"}, "20261127T120000Z-bbbbbb", ""},
		{"a host's own newest", []string{"db1"}, "20261127T100000Z-aaaaaa", ""},
		{"same second: by start time, not by name", []string{"app1"}, "20261127T130000Z-111111", ""},
		{"no run has the host", []string{"mail1"}, "", "no run in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := latestRun(dir, tc.hosts, "")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("latestRun = %q, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("latestRun = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := latestRun(filepath.Join(dir, "missing"), []string{"web1"}, ""); err == nil || !strings.Contains(err.Error(), "no runs in") {
		t.Fatalf("missing state dir: %v", err)
	}
}
