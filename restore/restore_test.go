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

// isolate --undo picks the newest run holding an isolation not undone:
// here the lockdown run whose restore isolated web1 (its gate kept it
// closed), not the newer isolate run already undone; plain restore skips
// that undone isolate run too and finds the lockdown run under it. The
// entries are read only to choose; reverting verifies them.
func TestLatestRunIsolation(t *testing.T) {
	dir := t.TempDir()
	run := func(id, command, started string, lines ...string) {
		p := actions.JournalPath(dir, id, "web1")
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		b := []byte(`{"run":"` + id + `","command":"` + command + `","started":"` + started + `"}`)
		if err := os.WriteFile(filepath.Join(actions.RunDir(dir, id), "run.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const (
		intent   = `{"seq":1,"step":"firewall:isolate","kind":"firewall","phase":"intent"}`
		applied  = `{"seq":2,"step":"firewall:isolate","kind":"firewall","phase":"result"}`
		failed   = `{"seq":2,"step":"firewall:isolate","kind":"firewall","phase":"result","error":"confirm failed"}`
		reverted = `{"seq":3,"step":"firewall:isolate","kind":"firewall","phase":"revert-result"}`
		lockdown = `{"seq":1,"step":"firewall:lockdown","kind":"firewall","phase":"result"}`
	)
	run("20261201T100000Z-llllll", "lockdown", "2026-12-01T10:00:00Z", lockdown, intent, applied)
	run("20261201T110000Z-iiiiii", "isolate", "2026-12-01T11:00:00Z", intent, applied, reverted)
	run("20261201T120000Z-ffffff", "isolate", "2026-12-01T12:00:00Z", intent, failed)
	for _, tc := range []struct{ command, want string }{
		{"isolate", "20261201T100000Z-llllll"},
		{"", "20261201T100000Z-llllll"},
	} {
		if got, err := latestRun(dir, []string{"web1"}, tc.command); err != nil || got != tc.want {
			t.Errorf("latestRun(command %q) = %q, %v; want %q", tc.command, got, err, tc.want)
		}
	}
	// Once that isolation is undone too, isolate --undo falls back to the
	// newest isolate run (nothing left to undo: restore says so).
	run("20261201T100000Z-llllll", "lockdown", "2026-12-01T10:00:00Z", lockdown, intent, applied, reverted)
	if got, _ := latestRun(dir, []string{"web1"}, "isolate"); got != "20261201T120000Z-ffffff" {
		t.Errorf("nothing isolated: latestRun(isolate) = %q, want the newest isolate run", got)
	}
}
