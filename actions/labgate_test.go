package actions_test

// Lab tests of the compromise response wired into lockdown and restore
// (issue 13, items 1 and 5): lockdown takes each host's integrity
// baseline once its services are stopped and its firewall is in place;
// restore checks every host against it before reverting anything, keeps a
// host with indicators closed (services stopped, firewall held), takes
// evidence and names the snapshot to roll back to; --accept-findings
// reopens it and journals why. A clean break with churn reopens every
// host: the baseline's timing raises no false alarm.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// gatePlan writes a plan locking down sys1 (nginx stopped, /etc/ssh
// backed up, /var/www its web root) and sysv1 (nginx stopped, no
// backups), both behind holiday's firewall, with a fresh local
// repository.
func gatePlan(t *testing.T, lab *labtest.Lab) (plan, repoDir, pw string) {
	t.Helper()
	dir := t.TempDir()
	repoDir, pw = filepath.Join(dir, "repo"), filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("gate test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: gate-test\nmanagement: [%s]\n", controlOnly)
	fmt.Fprintf(&b, "window: {start: 2027-02-05T18:00:00+08:00, end: 2027-02-17T09:00:00+08:00}\n")
	fmt.Fprintf(&b, "repository: {url: %s, password_file: %s}\n", repoDir, pw)
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {backup: none, firewall: {log_drops: true, ipv6: drop-all, allow: [{tcp: 80, from: [%s]}]}}\nhosts:\n", lab.Host("sysv1").Addr)
	fmt.Fprintf(&b, "  - {name: sys1, address: %s, stop: [nginx], web_roots: [/var/www], backup: [{files: [/etc/ssh]}]}\n", lab.Host("sys1").Addr)
	fmt.Fprintf(&b, "  - {name: sysv1, address: %s, stop: [nginx]}\n", lab.Host("sysv1").Addr)
	plan = filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return plan, repoDir, pw
}

// plantOn runs lab/plant.sh VERB inside h as root.
func plantOn(t *testing.T, h *labtest.Host, verb string) {
	t.Helper()
	script, err := os.ReadFile("../lab/plant.sh")
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for _, a := range h.SSHArgs("root", h.Addr) {
		if a != "-n" {
			argv = append(argv, a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--", "bash -s "+verb)...)
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plant.sh %s on %s: %v\n%s", verb, h.Name, err, out)
	}
}

// runResult runs holiday CMD --json and decodes its result.
func (c *cli) runResult(t *testing.T, args ...string) (actions.RunResult, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	full := append([]string{args[0], "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, "--json"}, args[1:]...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("holiday %v: %v", args, err)
	}
	var res actions.RunResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("holiday %s --json: %v\nstdout:\n%s\nstderr:\n%s", args[0], err, out.String(), errb.String())
	}
	return res, code
}

func byHost(res actions.RunResult) map[string]actions.HostResult {
	m := map[string]actions.HostResult{}
	for _, h := range res.Hosts {
		m[h.Host] = h
	}
	return m
}

// closedState is what must hold on a host kept closed: the planned
// service stopped and disabled, and every firewall save as lockdown left
// it.
func closedState(t *testing.T, h *labtest.Host) string {
	t.Helper()
	return h.MustSSH(t, "root", "systemctl is-active nginx; systemctl is-enabled nginx; true") + "\n" + fwSaves(t, h)
}

// TestRestoreGateKeepsCompromisedClosed: lockdown of sys1 and sysv1
// takes a baseline of each (after the firewall); the compromise planted
// into sys1 keeps it closed at restore — nginx still stopped, the
// firewall still lockdown's, an evidence snapshot in the repository, the
// summary naming the backup to roll back to and exit 5 — while sysv1 is
// reopened exactly. --accept-findings then reopens sys1 and its journal
// records the reason.
func TestRestoreGateKeepsCompromisedClosed(t *testing.T) {
	lab := labtest.Require(t)
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); it is the format oracle")
	}
	hs := lockHosts(t, lab, "sys1", "sysv1")
	sys1 := hs[0]
	fwSafetyNet(t, hs)
	plantOn(t, sys1, "undo")
	before := hostStates(t, hs)
	plan, repoDir, pw := gatePlan(t, lab)
	c := newCLI(t, plan)
	if out, code := c.runRaw(t, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); code != 0 {
		t.Fatalf("repo init: exit %d\n%s", code, out)
	}
	t.Cleanup(func() {
		plantOn(t, sys1, "undo")
		if t.Failed() {
			c.run(t, nil, "restore", "--accept-findings", "test cleanup")
			assertStates(t, hs, before, "still differs after the cleanup restore")
		}
	})

	lock, code := c.runResult(t, "lockdown", "--without-devices")
	if code != 0 {
		t.Fatalf("lockdown: exit %d: %+v", code, lock)
	}
	run := lock.Run
	var backup string
	for _, h := range lock.Hosts {
		if h.Baseline == nil || h.Baseline.Snapshot == "" {
			t.Errorf("%s: lockdown took no baseline", h.Host)
		}
		ids := stepIDs(h)
		if i, j := slices.Index(ids, "firewall:lockdown"), slices.Index(ids, "baseline:integrity"); i < 0 || j < i {
			t.Errorf("%s: steps %v: the baseline is not taken after the firewall", h.Host, ids)
		}
		if h.Host == "sys1" && len(h.Snapshots) == 1 {
			backup = h.Snapshots[0].Snapshot
		}
	}
	if backup == "" {
		t.Fatalf("sys1: no backup snapshot in %+v", byHost(lock)["sys1"])
	}
	closed := closedState(t, sys1)
	plantOn(t, sys1, "plant")

	// The summary a tired operator reads.
	out, code := c.run(t, nil, "restore")
	if code != 5 {
		t.Errorf("restore with sys1 compromised: exit %d, want 5\n%s", code, out)
	}
	for _, want := range []string{
		`sys1: gate: \d+ compromise indicator\(s\) found: KEPT CLOSED`,
		`sys1:   changed-binary /usr/bin/ps: content changed`,
		`sys1: evidence: snapshot [0-9a-f]{8} \(kind:evidence\)`,
		`sys1: roll back: holiday rollback -f \S+ sys1 --snapshot ` + backup[:8],
		`sys1: report: holiday report --check \S+gate-check.json --evidence \S+gate-evidence-sys1.json --run ` + run,
		`sys1: to reopen it anyway: holiday restore -f \S+ --host sys1 --accept-findings "WHY"`,
		`sysv1: gate: no indicators found \(against baseline [0-9a-f]{8}\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("restore's summary lacks %q:\n%s", want, out)
		}
	}
	if got := closedState(t, sys1); got != closed {
		t.Errorf("sys1 changed although kept closed:\n%s", diffLines(closed, got))
	}
	assertStates(t, hs[1:], before, "not reopened exactly")

	// --json carries each host's verdict; a second restore gates again.
	res, code := c.runResult(t, "restore")
	if code != 5 {
		t.Errorf("restore --json: exit %d, want 5", code)
	}
	g := byHost(res)["sys1"]
	if g.Status != actions.HostKeptClosed || g.Gate == nil || g.Gate.Reopen || g.Gate.Indicators < 12 || g.Gate.Evidence == "" || g.Gate.Rollback != backup {
		t.Errorf("sys1's verdict: %s %+v", g.Status, g.Gate)
	}
	if v := byHost(res)["sysv1"]; v.Gate != nil {
		t.Errorf("sysv1 is open: nothing to gate, yet %+v", v.Gate)
	}
	// The evidence is in the repository, as stock restic sees it.
	snaps := resticSnapshots(t, repoDir, pw, "kind:evidence")
	if n := countHost(snaps, "sys1", "run:"+run); n < 2 {
		t.Errorf("%d evidence snapshots of sys1 tagged run:%s, want one per gated restore (2)", n, run)
	}

	// --accept-findings reopens it, and the journal says why.
	const why = "lab test: planted on purpose"
	res, code = c.runResult(t, "restore", "--accept-findings", why)
	if code != 5 {
		t.Errorf("restore --accept-findings: exit %d, want 5 (the indicators were there)", code)
	}
	acc := byHost(res)["sys1"]
	if acc.Status != actions.HostDone || acc.Gate == nil || acc.Gate.AcceptedFindings != why || acc.Gate.Evidence == "" || acc.Gate.CheckJSON == "" {
		t.Fatalf("sys1 after --accept-findings: %s %s %+v", acc.Status, acc.Error, acc.Gate)
	}
	j, err := os.ReadFile(actions.JournalPath(c.stateDir, run, "sys1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(j, []byte(`"accepted_findings":"`+why+`"`)) || !bytes.Contains(j, []byte(`"step":"kept-closed"`)) {
		t.Errorf("sys1's journal does not record the kept-closed restores and the accepted findings:\n%s", j)
	}
	// The report, with the command the summary printed: the gate's
	// verdicts and the operator's reason are in its handling.
	rep, code := c.runRaw(t, nil, "report", "--check", acc.Gate.CheckJSON, "--evidence", acc.Gate.EvidenceJSON, "--run", run,
		"--state-dir", c.stateDir, "--journal-key", c.key, "--format", "json")
	var r struct {
		Handling []string `json:"handling"`
		Hosts    []struct {
			Evidence *struct{ Snapshot string } `json:"evidence"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(rep), &r); err != nil || code != 0 {
		t.Fatalf("holiday report: exit %d, %v\n%s", code, err, rep)
	}
	h := strings.Join(r.Handling, "\n")
	if !strings.Contains(h, "sys1: restore (run "+run+")") || !strings.Contains(h, "kept it closed") || !strings.Contains(h, `the operator accepted the findings: "`+why+`"`) {
		t.Errorf("the report's handling lacks the gate's verdicts:\n%s", h)
	}
	if len(r.Hosts) != 1 || r.Hosts[0].Evidence == nil || r.Hosts[0].Evidence.Snapshot != acc.Gate.Evidence {
		t.Errorf("the report does not name the evidence snapshot %s: %+v", acc.Gate.Evidence, r.Hosts)
	}
	plantOn(t, sys1, "undo")
	assertStates(t, hs, before, "after restore --accept-findings")
}

// TestRestoreGateCleanBreak: a break with churn only (logs growing and
// rotating, tmp files, apt caches, a journal rotation) reopens every host:
// the baseline taken after the firewall matches the closed host, so no
// stopped service, closed listener or holiday unit is a false alarm.
func TestRestoreGateCleanBreak(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1", "sysv1")
	fwSafetyNet(t, hs)
	for _, h := range hs {
		plantOn(t, h, "unchurn")
	}
	before := hostStates(t, hs)
	plan, repoDir, pw := gatePlan(t, lab)
	c := newCLI(t, plan)
	if out, code := c.runRaw(t, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); code != 0 {
		t.Fatalf("repo init: exit %d\n%s", code, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.run(t, nil, "restore", "--accept-findings", "test cleanup")
		}
		for _, h := range hs {
			plantOn(t, h, "unchurn")
		}
	})
	for _, h := range hs {
		plantOn(t, h, "prechurn")
	}
	if out, code := c.run(t, nil, "lockdown", "--without-devices"); code != 0 {
		t.Fatalf("lockdown: exit %d\n%s", code, out)
	}
	for _, h := range hs {
		plantOn(t, h, "churn")
	}
	res, code := c.runResult(t, "restore")
	if code != 0 {
		t.Errorf("restore after a clean break: exit %d", code)
	}
	for _, h := range res.Hosts {
		if h.Status != actions.HostDone || h.Gate == nil || !h.Gate.Checked || !h.Gate.Reopen || h.Gate.Indicators != 0 {
			t.Errorf("%s: %s %s, gate %+v: want reopened with no indicators", h.Host, h.Status, h.Error, h.Gate)
		}
	}
	for _, h := range hs {
		plantOn(t, h, "unchurn")
	}
	assertStates(t, hs, before, "after a clean break's restore")
}

func stepIDs(h actions.HostResult) []string {
	var ids []string
	for _, s := range h.Steps {
		ids = append(ids, s.ID)
	}
	return ids
}

type resticSnap struct {
	Hostname string   `json:"hostname"`
	Tags     []string `json:"tags"`
}

func resticSnapshots(t *testing.T, repoDir, pw, tag string) []resticSnap {
	t.Helper()
	out, err := exec.Command("restic", "-r", repoDir, "--password-file", pw, "--no-cache", "snapshots", "--json", "--tag", tag).Output()
	if err != nil {
		t.Fatalf("restic snapshots: %v", err)
	}
	var s []resticSnap
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func countHost(s []resticSnap, host, tag string) int {
	n := 0
	for _, x := range s {
		if x.Hostname == host && slices.Contains(x.Tags, tag) {
			n++
		}
	}
	return n
}

// TestRollbackAfterCompromise: the way back from a compromised host. The
// restore gate keeps sys1 closed and names its pre-break backup; holiday
// rollback writes that snapshot back; a second check then finds no
// indicator but what a rollback cannot undo: the processes the intruder
// left running (and the sockets they hold, and their executables on
// tmpfs, which no backup holds), each reported as a process. sys1 stops
// nothing and keeps its firewall here: a rollback of a directory
// lockdown itself changed (/etc/systemd/system, where it disables units
// and installs its boot-time firewall unit) would bring back the
// pre-lockdown files, which the check rightly reports (DESIGN §8).
func TestRollbackAfterCompromise(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1")
	sys1 := hs[0]
	plantOn(t, sys1, "undo")
	before := hostStates(t, hs)
	dir := t.TempDir()
	repoDir, pw := filepath.Join(dir, "repo"), filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("rollback test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(dir, "plan.yaml")
	y := fmt.Sprintf(`version: 1
name: rollback-test
management: [%s]
window: {start: 2027-02-05T18:00:00+08:00, end: 2027-02-17T09:00:00+08:00}
repository: {url: %s, password_file: %s}
ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}
hosts:
  - name: sys1
    address: %s
    web_roots: [/var/www]
    backup: [{files: [/etc, /root/.ssh, /var/spool/cron, /var/tmp, /var/www, /var/log, /usr/bin/ps, /usr/bin/ss]}]
`, controlOnly, repoDir, pw, lab.SSHKey, lab.KnownHosts, sys1.Addr)
	if err := os.WriteFile(plan, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, plan)
	if out, code := c.runRaw(t, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); code != 0 {
		t.Fatalf("repo init: exit %d\n%s", code, out)
	}
	t.Cleanup(func() {
		plantOn(t, sys1, "undo")
		c.run(t, nil, "restore", "--accept-findings", "test cleanup: rolled back, the planted processes killed")
		assertStates(t, hs, before, "after the cleanup restore")
	})
	lock, code := c.runResult(t, "lockdown", "--without-devices")
	if code != 0 || len(lock.Hosts) != 1 || len(lock.Hosts[0].Snapshots) != 1 {
		t.Fatalf("lockdown: exit %d: %+v", code, lock)
	}
	backup := lock.Hosts[0].Snapshots[0].Snapshot
	plantOn(t, sys1, "plant")

	res, code := c.runResult(t, "restore")
	g := byHost(res)["sys1"]
	if code != 5 || g.Status != actions.HostKeptClosed || g.Gate == nil || g.Gate.Rollback != backup || g.Gate.Indicators < 12 {
		t.Fatalf("restore: exit %d, %s %+v; want sys1 kept closed naming snapshot %s", code, g.Status, g.Gate, backup)
	}
	if out, code := c.run(t, nil, "rollback", "sys1", "--snapshot", g.Gate.Rollback); code != 0 {
		t.Fatalf("rollback sys1 --snapshot %s: exit %d\n%s", g.Gate.Rollback, code, out)
	}

	cmd := exec.Command(c.bin, "check", "-f", plan, "sys1", "--json")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	code = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 5 {
		t.Errorf("check after rollback: exit %d, want 5 (the processes still run)", code)
	}
	var cs []struct {
		Result struct {
			Findings []struct{ Class, Kind, Object, Detail string }
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("check --json: %v\n%s", err, stdout.String())
	}
	// What a rollback cannot undo: live processes and what they hold.
	processKinds := map[string]bool{"suspicious-process": true, "hidden-process": true, "new-listener": true, "hidden-socket": true, "listener-owner-changed": true}
	var left, procs []string
	for _, f := range cs[0].Result.Findings {
		switch {
		case f.Class != "indicator":
		case processKinds[f.Kind], f.Kind == "executable-in-tmp" && strings.HasPrefix(f.Object, "/dev/shm/"):
			procs = append(procs, f.Kind+" "+f.Object)
		default:
			left = append(left, f.Kind+" "+f.Object+": "+f.Detail)
		}
	}
	if len(left) > 0 {
		t.Errorf("after rollback, indicators a rollback should have undone:\n%s", strings.Join(left, "\n"))
	}
	if len(procs) == 0 {
		t.Errorf("the planted processes still run, yet no process indicator is reported")
	}
	t.Logf("left after rollback (running processes): %s", strings.Join(procs, "; "))
}

// TestExamplePlanGate: the lab's example plan (what `make demo` runs:
// backups, stops, firewalls on sys1, sys2 with its databases, sysv1),
// with a repository of its own, locks down and restores with the gate
// checking every host: none is kept closed, every host is back exactly.
func TestExamplePlanGate(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1", "sys2", "sysv1")
	fwSafetyNet(t, hs)
	before := hostStates(t, hs)
	ex, err := os.ReadFile("../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	repoDir, pw := filepath.Join(dir, "repo"), filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("example plan gate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(ex), "url: /var/tmp/holiday-lab/repo\n  password_file: /var/tmp/holiday-lab/repo.pass",
		"url: "+repoDir+"\n  password_file: "+pw, 1)
	y = strings.ReplaceAll(y, "/var/tmp/holiday-lab/", lab.Dir+"/")
	if !strings.Contains(y, repoDir) {
		t.Fatal("examples/lab.yaml no longer names its repository as this test expects")
	}
	plan := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(plan, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, plan)
	if out, code := c.runRaw(t, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); code != 0 {
		t.Fatalf("repo init: exit %d\n%s", code, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.run(t, nil, "restore", "--accept-findings", "test cleanup")
			assertStates(t, hs, before, "still differs after the cleanup restore")
		}
	})
	if out, code := c.run(t, nil, "lockdown", "--without-devices"); code != 0 {
		t.Fatalf("lockdown: exit %d\n%s", code, out)
	}
	res, code := c.runResult(t, "restore")
	if code != 0 {
		t.Errorf("restore: exit %d", code)
	}
	for _, h := range res.Hosts {
		if h.Status != actions.HostDone || h.Gate == nil || !h.Gate.Checked || h.Gate.Indicators != 0 {
			t.Errorf("%s: %s %s, gate %+v: want reopened with no indicators", h.Host, h.Status, h.Error, h.Gate)
		}
	}
	assertStates(t, hs, before, "after restore")
}
