package actions_test

// Lab tests of isolation on top of the lockdown firewall (issue 13 item
// 5, issue 9 item 5): restore's gate isolates a host it keeps closed for
// indicators when the plan says on_compromise: isolate, and `holiday
// isolate` does the same by hand on a locked-down host. Each way between
// the lockdown firewall and isolation is exact: iptables-save of every
// table equals what it was.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// isoPlan writes a plan for sys1 alone: nginx stopped, /etc/ssh backed
// up, port 80 open to anyone under the lockdown firewall (so isolation's
// difference shows), the control node as management; with repoDir a
// repository (and so a baseline and restore's gate), and onCompromise.
func isoPlan(t *testing.T, lab *labtest.Lab, repoDir, pw, onCompromise string) string {
	return isoPlanFor(t, lab, "sys1", repoDir, pw, onCompromise)
}

// isoPlanFor is isoPlan for the named host.
func isoPlanFor(t *testing.T, lab *labtest.Lab, name, repoDir, pw, onCompromise string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: isolate-test\nmanagement: [%s]\n", controlOnly)
	fmt.Fprintf(&b, "window: {start: 2027-02-05T18:00:00+08:00, end: 2027-02-17T09:00:00+08:00}\n")
	if repoDir != "" {
		fmt.Fprintf(&b, "repository: {url: %s, password_file: %s}\n", repoDir, pw)
	}
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {on_compromise: %s, firewall: {ipv6: drop-all, allow: [{tcp: 80}]}}\nhosts:\n", onCompromise)
	backup := "[{files: [/etc/ssh]}]"
	if repoDir == "" {
		backup = "none"
	}
	fmt.Fprintf(&b, "  - {name: %s, address: %s, stop: [nginx], web_roots: [/var/www], backup: %s}\n", name, lab.Host(name).Addr, backup)
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// isoProbes are the connections isolation decides: in from the control
// node (SSH) and from a stranger (SSH and the web port lockdown leaves
// open), both families; out from sys1 to the stranger's web server.
func isoProbes(h, str *labtest.Host) (in, out []probe) {
	in = []probe{
		{"", h.Addr, 22, "tcp"}, {"", h.Addr6, 22, "tcp"},
		{str.Netns(), h.Addr, 22, "tcp"}, {str.Netns(), h.Addr, 80, "tcp"},
		{str.Netns(), h.Addr6, 22, "tcp"}, {str.Netns(), h.Addr6, 80, "tcp"},
	}
	out = []probe{{h.Netns(), str.Addr, 80, "tcp"}, {h.Netns(), str.Addr6, 80, "tcp"}}
	return in, out
}

// assertIsolated: the control node still reaches SSH, the stranger
// reaches nothing (dropped, not refused), sys1 reaches nothing outside.
func assertIsolated(t *testing.T, what string, h, str *labtest.Host) {
	t.Helper()
	in, out := isoProbes(h, str)
	got := reachAll(t, append(append([]probe{}, in...), out...))
	for _, p := range in {
		want := "dropped"
		if p.from == "" {
			want = "open"
		}
		if got[p] != want {
			t.Errorf("%s: %s → %s:%d: %s, want %s", what, orMachine(p.from), p.addr, p.port, got[p], want)
		}
	}
	for _, p := range out {
		if got[p] == "open" {
			t.Errorf("%s: %s → %s:%d: open, want cut", what, h.Name, p.addr, p.port)
		}
	}
}

// holidayPresent is the host's holiday firewall files and units, for the
// exactness checks beside the rules.
func holidayPresent(t *testing.T, h *labtest.Host) string {
	t.Helper()
	return h.MustSSH(t, "root", "ls /var/lib/holiday/firewall 2>/dev/null; systemctl is-enabled holiday-firewall.service 2>/dev/null; true")
}

// TestRestoreGateIsolates: sys1 locked down with on_compromise: isolate
// and compromised during the break; restore exits 5 and isolates it on
// top of the lockdown firewall (a stranger reaches no port, sys1 reaches
// no stranger, the control node still logs in), and says so; status
// holds; a second restore leaves it isolated. isolate --undo puts the
// lockdown firewall back exactly, restore --accept-findings then reopens
// sys1 exactly as before lockdown.
func TestRestoreGateIsolates(t *testing.T) {
	lab := labtest.Require(t)
	if _, err := os.Stat("../lab/plant.sh"); err != nil {
		testenv.Skip(t, "lab/plant.sh is missing")
	}
	str := stranger(t, lab)
	str.RLock(t) // its nginx answers throughout (light1 < sys1: the lock order)
	hs := lockHosts(t, lab, "sys1")
	sys1 := hs[0]
	fwSafetyNet(t, hs)
	plantOn(t, sys1, "undo")
	before := hostStates(t, hs)
	dir := t.TempDir()
	repoDir, pw := filepath.Join(dir, "repo"), filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("isolate test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, isoPlan(t, lab, repoDir, pw, "isolate"))
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
	if out, code := c.runPlan(t); !strings.Contains(out, "on_compromise: isolate") {
		t.Errorf("holiday plan (exit %d) does not show on_compromise:\n%s", code, out)
	}

	lock, code := c.runResult(t, "lockdown", "--without-devices")
	if code != 0 {
		t.Fatalf("lockdown: exit %d: %+v", code, lock)
	}
	run := lock.Run
	locked, lockedFiles := fwSaves(t, sys1), holidayPresent(t, sys1)
	if got := reach(t, str.Netns(), sys1.Addr, 80); got == "dropped" {
		t.Fatalf("locked down: stranger → sys1:80 %s; the plan allows it (the test needs it open to show isolation)", got)
	}
	plantOn(t, sys1, "plant")

	out, code := c.run(t, nil, "restore")
	if code != 5 {
		t.Errorf("restore with sys1 compromised: exit %d, want 5\n%s", code, out)
	}
	for _, want := range []string{
		`sys1: gate: \d+ compromise indicator\(s\) found: KEPT CLOSED`,
		`sys1: isolated: only the management path reaches it; its own outgoing connections are dropped \(on_compromise: isolate\)`,
		`sys1: back to the lockdown firewall alone: holiday isolate --undo -f \S+ sys1`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("restore's summary lacks %q:\n%s", want, out)
		}
	}
	assertIsolated(t, "isolated by restore's gate", sys1, str)
	isolated := fwSaves(t, sys1)
	if !strings.Contains(isolated, ":HOLIDAY-OUT ") || strings.Count(isolated, "-A INPUT -j HOLIDAY-IN") != 2 {
		t.Errorf("isolation is not on top of the lockdown's jump (one HOLIDAY-IN jump per family, HOLIDAY-OUT):\n%s", isolated)
	}
	if out, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status while isolated on top of the lockdown: exit %d\n%s", code, out)
	}
	j, err := os.ReadFile(actions.JournalPath(c.stateDir, run, "sys1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"step":"firewall:isolate"`) || !strings.Contains(string(j), `"isolate":true`) {
		t.Errorf("the run's journal of sys1 does not hold the gate's isolation")
	}

	// Restoring again: still kept closed, still isolated, nothing re-applied.
	res, code := c.runResult(t, "restore")
	if g := byHost(res)["sys1"]; code != 5 || g.Status != actions.HostKeptClosed || g.Gate == nil || g.Gate.Isolated != actions.IsolatedAlready {
		t.Errorf("second restore: exit %d, %s %+v", code, g.Status, g.Gate)
	}
	if got := fwSaves(t, sys1); got != isolated {
		t.Errorf("the second restore changed the rules:\n%s", diffLines(isolated, got))
	}

	// The boot-time re-apply while isolated: the host's own loader takes
	// holiday's chains away, holiday's boot unit puts isolation back.
	flushHoliday(t, sys1)
	bootReapply(t, sys1)
	if got := fwSaves(t, sys1); got != isolated {
		t.Errorf("the boot-time re-apply did not bring isolation back:\n%s", diffLines(isolated, got))
	}

	plantOn(t, sys1, "undo")
	if out, code := c.runRaw(t, nil, "isolate", "--undo", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, "sys1"); code != 0 {
		t.Fatalf("isolate --undo: exit %d\n%s", code, out)
	}
	if got := fwSaves(t, sys1); got != locked {
		t.Errorf("after isolate --undo the rules are not the lockdown's:\n%s", diffLines(locked, got))
	}
	if got := holidayPresent(t, sys1); got != lockedFiles {
		t.Errorf("after isolate --undo holiday's files differ from the lockdown's:\n%s", diffLines(lockedFiles, got))
	}
	if got := reach(t, str.Netns(), sys1.Addr, 80); got == "dropped" {
		t.Errorf("back under the lockdown firewall: stranger → sys1:80 %s, as the plan allows it", got)
	}

	res, _ = c.runResult(t, "restore", "--accept-findings", "lab test: planted and removed on purpose")
	if g := byHost(res)["sys1"]; g.Status != actions.HostDone {
		t.Fatalf("restore --accept-findings: %s %s", g.Status, g.Error)
	}
	assertStates(t, hs, before, "after isolate --undo and restore --accept-findings")
}

// TestIsolateOnLockdown: `holiday isolate` by hand on a locked-down host
// (the on-call engineer during the break) goes on top of the lockdown
// firewall instead of refusing; while isolated the boot-time re-apply
// brings isolation back; isolate --undo puts the lockdown firewall back
// exactly, and a plain restore then restores the lockdown's run (not the
// undone isolate run), exactly as before lockdown.
func TestIsolateOnLockdown(t *testing.T) {
	lab := labtest.Require(t)
	str := stranger(t, lab)
	str.RLock(t)
	for _, name := range []string{"sys1", "sysv1"} {
		t.Run(name, func(t *testing.T) { testIsolateOnLockdown(t, lab, str, name) })
	}
}

func testIsolateOnLockdown(t *testing.T, lab *labtest.Lab, str *labtest.Host, name string) {
	hs := lockHosts(t, lab, name)
	h := hs[0]
	fwSafetyNet(t, hs)
	before := hostStates(t, hs)
	c := newCLI(t, isoPlanFor(t, lab, name, "", "", "keep"))
	t.Cleanup(func() {
		if hasHolidayChain(t, h) {
			c.runRaw(t, nil, "isolate", "--undo", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, name)
			c.run(t, nil, "restore")
		}
	})
	if out, code := c.run(t, nil, "lockdown", "--without-devices"); code != 0 {
		t.Fatalf("lockdown: exit %d\n%s", code, out)
	}
	locked := fwSaves(t, h)
	if out, code := c.runRaw(t, nil, "isolate", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, name); code != 0 {
		t.Fatalf("isolate on a locked-down host: exit %d\n%s", code, out)
	}
	assertIsolated(t, "isolated by hand on the lockdown", h, str)
	isolated := fwSaves(t, h)
	if out, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status while isolated: exit %d\n%s", code, out)
	}
	// A second isolate is refused, nothing changed.
	if out, code := c.runRaw(t, nil, "isolate", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, name); code == 0 || !strings.Contains(out, "already isolated") {
		t.Errorf("a second isolate: exit %d, want a refusal saying it is already isolated\n%s", code, out)
	}
	if got := fwSaves(t, h); got != isolated {
		t.Errorf("the refused isolate changed the rules:\n%s", diffLines(isolated, got))
	}
	flushHoliday(t, h)
	bootReapply(t, h)
	if got := fwSaves(t, h); got != isolated {
		t.Errorf("the boot-time re-apply did not bring isolation back:\n%s", diffLines(isolated, got))
	}
	if out, code := c.runRaw(t, nil, "isolate", "--undo", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, name); code != 0 {
		t.Fatalf("isolate --undo: exit %d\n%s", code, out)
	}
	if got := fwSaves(t, h); got != locked {
		t.Errorf("after isolate --undo the rules are not the lockdown's:\n%s", diffLines(locked, got))
	}
	if out, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	assertStates(t, hs, before, "after isolate, isolate --undo and restore")
}

// flushHoliday takes holiday's jumps and chains away from outside, as a
// host's own rule loader does at boot.
func flushHoliday(t *testing.T, h *labtest.Host) {
	t.Helper()
	h.MustInNetns(t, "sh", "-c", `for t in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do while $t -w -D INPUT -j HOLIDAY-IN 2>/dev/null; do :; done; $t -w -F HOLIDAY-IN 2>/dev/null; $t -w -X HOLIDAY-IN 2>/dev/null; while $t -w -D OUTPUT -j HOLIDAY-OUT 2>/dev/null; do :; done; $t -w -F HOLIDAY-OUT 2>/dev/null; $t -w -X HOLIDAY-OUT 2>/dev/null; done; true`)
}

// TestIsolateOnLockdownDeadman: isolation on top of the lockdown whose
// confirmation fails for real (test hook: the control node dropped first
// in isolate's chain) is taken off by the host's own dead-man — back to
// the lockdown firewall exactly, not further; the lockdown's files stay,
// the layer's go. Restore then reopens the host exactly.
func TestIsolateOnLockdownDeadman(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1")
	sys1 := hs[0]
	fwSafetyNet(t, hs)
	before := hostStates(t, hs)
	c := newCLI(t, isoPlan(t, lab, "", "", "keep"))
	t.Cleanup(func() {
		if hasHolidayChain(t, sys1) {
			c.run(t, nil, "restore", "--accept-findings", "test cleanup")
		}
	})
	if out, code := c.run(t, nil, "lockdown", "--without-devices"); code != 0 {
		t.Fatalf("lockdown: exit %d\n%s", code, out)
	}
	locked, lockedFiles := fwSaves(t, sys1), holidayPresent(t, sys1)
	const secs = 8
	t0 := time.Now()
	out, code := c.runRaw(t, []string{"HOLIDAY_TEST_FIREWALL=block-control", "HOLIDAY_TEST_DEADMAN_SECS=" + strconv.Itoa(secs)},
		"isolate", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, "--revert-timeout", "90s", "sys1")
	if code == 0 {
		t.Fatalf("isolate with the control node blocked: exit 0\n%s", out)
	}
	if !strings.Contains(out, "cannot reach the host over a new SSH connection") {
		t.Errorf("the run does not report the failed confirmation:\n%s", out)
	}
	took := waitReverted(t, sys1, locked, t0, secs)
	t.Logf("back under the lockdown firewall %v after isolate started (dead-man %ds)", took.Round(100*time.Millisecond), secs)
	deadmanLog(t, sys1, "not disarmed in time; taking isolation off", "reverted: the lockdown firewall is as it was before isolation")
	if got := holidayPresent(t, sys1); got != lockedFiles {
		t.Errorf("after the dead-man holiday's files differ from the lockdown's:\n%s", diffLines(lockedFiles, got))
	}
	if got := fwSaves(t, sys1); got != locked {
		t.Errorf("after the dead-man the rules are not the lockdown's:\n%s", diffLines(locked, got))
	}
	if out, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore: exit %d\n%s", code, out)
	}
	assertStates(t, hs, before, "after the dead-man and restore")
}

// bootReapply runs holiday's boot-time re-apply as the boot does: the
// systemd unit, or the init script on SysV.
func bootReapply(t *testing.T, h *labtest.Host) {
	t.Helper()
	if h.Kind == labtest.Systemd {
		h.MustSSH(t, "root", "systemctl restart holiday-firewall.service")
		return
	}
	h.MustSSH(t, "root", "/etc/init.d/holiday-firewall start")
}
