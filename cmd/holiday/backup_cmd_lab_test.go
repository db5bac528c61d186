package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// TestBackupCommandLab: `holiday backup` of a plan whose host would also
// have a service stopped and its firewall tightened by lockdown takes the
// host's snapshot only: tagged with the run, its kind and the plan, not
// pinned; the service still runs, the firewall and the host's journal
// copies are as before; the run is journaled here as a "backup" run, which
// restore does not pick. A second run reads no file again.
func TestBackupCommandLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	plan, repoDir, pw, state := backupLab(t, "      - {files: [/etc], exclude: [\"*.log\"]}\n")
	text, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	// what lockdown would also do: stop lab-worker, tighten the firewall
	withMore := strings.Replace(string(text), "    backup:\n", "    stop: [lab-worker]\n    firewall: {allow: [{tcp: 22, from: [10.213.0.0/24]}], ipv6: drop-all}\n    backup:\n", 1)
	if err := os.WriteFile(plan, []byte(withMore), 0o600); err != nil {
		t.Fatal(err)
	}
	const look = `service lab-worker status >/dev/null && echo running; iptables -S; ip6tables -S; ls -1 /var/lib/holiday/journal 2>/dev/null; true`
	hostState := func() string {
		t.Helper()
		out, err := h.SSH(context.Background(), "root", look)
		if err != nil {
			t.Fatalf("reading the host's state: %v", err)
		}
		return out.Stdout
	}
	before := hostState()
	if !strings.HasPrefix(before, "running\n") {
		t.Fatalf("lab-worker is not running before the test: %q", before)
	}

	backup := func() actions.RunResult {
		t.Helper()
		stdout, stderr, code := runPlanBinary(t, "backup", "-f", plan, "sysv1", "--json", "--state-dir", state, "--journal-key", filepath.Join(state, "journal.key"))
		var res actions.RunResult
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("backup --json: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		if code != 0 || res.Command != "backup" || len(res.Hosts) != 1 || res.Hosts[0].Status != actions.HostDone {
			t.Fatalf("backup: exit %d, %+v\n%s", code, res, stderr)
		}
		if st := res.Hosts[0].Steps; len(st) != 1 || st[0].ID != "backup:host" {
			t.Errorf("steps %+v; want the backup step alone", st)
		}
		if res.Offsite != nil {
			t.Errorf("a backup run saved journals to the repository: %+v", res.Offsite)
		}
		return res
	}
	res := backup()
	snaps := res.Hosts[0].Snapshots
	if len(snaps) != 1 || snaps[0].Kind != "files" || snaps[0].Files == 0 {
		t.Fatalf("snapshots %+v; want one of /etc", snaps)
	}
	if after := hostState(); after != before {
		t.Errorf("holiday backup changed the host:\n%s", lineDiff(before, after))
	}

	var listed []struct {
		ID   string   `json:"id"`
		Host string   `json:"hostname"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(restic(t, repoDir, pw, "snapshots", "--json")), &listed); err != nil || len(listed) != 1 {
		t.Fatalf("restic snapshots: %v, %+v", err, listed)
	}
	tags := listed[0].Tags
	for _, want := range []string{"holiday", "run:" + res.Run, "kind:files", "plan:plan-lab-test"} {
		if !slices.Contains(tags, want) {
			t.Errorf("snapshot tags %v: %s missing", tags, want)
		}
	}
	for _, tg := range tags {
		if strings.HasPrefix(tg, "holiday-pin") {
			t.Errorf("snapshot tags %v: a backup run's snapshot is pinned", tags)
		}
	}
	var info actions.RunInfo
	if b, err := os.ReadFile(filepath.Join(actions.RunDir(state, res.Run), "run.json")); err != nil || json.Unmarshal(b, &info) != nil || info.Command != "backup" {
		t.Errorf("run.json: %+v, %v; want command backup", info, err)
	}
	if _, err := os.Stat(actions.JournalPath(state, res.Run, "sysv1")); err != nil {
		t.Errorf("the run's journal: %v", err)
	}

	// unchanged: the first run's snapshot is the parent
	res2 := backup()
	if s := res2.Hosts[0].Snapshots; len(s) != 1 || s[0].Unchanged != s[0].Files || s[0].BytesSent != 0 {
		t.Errorf("second backup %+v; want every file unchanged, nothing sent", s)
	}
	if after := hostState(); after != before {
		t.Errorf("the second holiday backup changed the host:\n%s", lineDiff(before, after))
	}
	// restore's "latest run" is not a backup run
	_, stderr, code := runPlanBinary(t, "restore", "-f", plan, "--json", "--state-dir", state, "--journal-key", filepath.Join(state, "journal.key"))
	if code == 0 || strings.Contains(stderr, res2.Run) || !strings.Contains(stderr, "no lockdown or isolate run") {
		t.Errorf("restore after backup runs only: exit %d, %s; want no run to restore", code, stderr)
	}
	restic(t, repoDir, pw, "check")
}
