package actions_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/labtest"
)

// While a host is locked down, a reboot brings the lockdown firewall back
// (the boot-time unit, before sshd starts); restore removes the unit and
// leaves the rules and the unit list as they were.
func TestFirewallSurvivesReboot(t *testing.T) {
	lab := labtest.Require(t)
	str := stranger(t, lab)
	hs := lockHosts(t, lab, "sys1")
	h := hs[0]
	fwSafetyNet(t, hs)
	before, units := fwSaves(t, h), snapshot(t, h)
	c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
	t.Cleanup(func() {
		h.SSH(context.Background(), "root", "systemctl start lab-worker.service") // up.sh's, not the boot's
		if hasHolidayChain(t, h) {
			c.run(t, nil, "restore")
		}
	})
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	if out := h.MustSSH(t, "root", "systemctl is-enabled holiday-firewall.service; true"); strings.TrimSpace(out) != "enabled" {
		t.Fatalf("the boot-time unit after lockdown: %q, want enabled", out)
	}
	ps := []probe{
		{"", h.Addr, 22, "tcp"}, {"", h.Addr6, 22, "tcp"},
		{str.Netns(), h.Addr, 22, "tcp"}, {str.Netns(), h.Addr, 80, "tcp"},
		{str.Netns(), h.Addr6, 22, "tcp"}, {str.Netns(), h.Addr6, 80, "tcp"},
	}
	want := func(p probe) string {
		if p.from == "" {
			return "open"
		}
		return "dropped"
	}
	for p, got := range reachAll(t, ps) {
		if got != want(p) {
			t.Fatalf("before the reboot %s → %s:%d: %s, want %s", orMachine(p.from), p.addr, p.port, got, want(p))
		}
	}
	h.Reboot(t)
	if !hasHolidayChain(t, h) {
		t.Fatal("no HOLIDAY-IN after the reboot")
	}
	for p, got := range reachAll(t, ps) {
		if got != want(p) {
			t.Errorf("after the reboot %s → %s:%d: %s, want %s", orMachine(p.from), p.addr, p.port, got, want(p))
		}
	}
	// Back before sshd started: the unit was active before ssh.service's process.
	ts := h.MustSSH(t, "root", "systemctl show -p ActiveEnterTimestampMonotonic --value holiday-firewall.service; systemctl show -p ExecMainStartTimestampMonotonic --value ssh.service")
	if f := strings.Fields(ts); len(f) != 2 {
		t.Errorf("timestamps: %q", ts)
	} else {
		fw, _ := strconv.ParseUint(f[0], 10, 64)
		ssh, _ := strconv.ParseUint(f[1], 10, 64)
		if fw == 0 || ssh == 0 || fw > ssh {
			t.Errorf("holiday-firewall.service active at %d µs, sshd started at %d µs: want the firewall first", fw, ssh)
		}
	}
	deadmanLog(t, h, "boot: re-applied the lockdown firewall")
	if out, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status after the reboot: exit %d, want 0\n%s", code, out)
	}
	restoreExact(t, c, h, before)
	h.MustSSH(t, "root", "systemctl start lab-worker.service")
	if d := diffLines(units, snapshot(t, h)); d != "" {
		t.Errorf("units after lockdown, reboot and restore differ:\n%s", d)
	}
	if out := h.MustSSH(t, "root", "ls /etc/systemd/system/holiday-firewall.service /var/lib/holiday/firewall 2>&1; true"); strings.Count(out, "No such file") != 2 {
		t.Errorf("left on the host after restore:\n%s", out)
	}
}

// isolate: a stranger (a lab host outside management) can no longer reach
// the host, nor the host the stranger or anything but replies to the
// control node; the control node still reaches it; isolate --undo
// restores both families' saves and the unit list exactly.
func TestIsolate(t *testing.T) {
	lab := labtest.Require(t)
	str := stranger(t, lab)
	str.RLock(t) // its nginx answers throughout (light1 < sys1: the lock order)
	hs := lockHosts(t, lab, "sys1")
	h := hs[0]
	fwSafetyNet(t, hs)
	before, units := fwSaves(t, h), snapshot(t, h)
	// The plan's firewall: plays no part in isolate.
	c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
	t.Cleanup(func() {
		if hasHolidayChain(t, h) {
			c.run(t, nil, "restore")
		}
	})
	in := []probe{
		{"", h.Addr, 22, "tcp"}, {"", h.Addr6, 22, "tcp"}, {"", h.Addr, 80, "tcp"}, {"", h.Addr6, 80, "tcp"},
		{str.Netns(), h.Addr, 22, "tcp"}, {str.Netns(), h.Addr, 80, "tcp"},
		{str.Netns(), h.Addr6, 22, "tcp"}, {str.Netns(), h.Addr6, 80, "tcp"},
	}
	// Outgoing, from the host: to the stranger and a new connection to
	// the control node's S3 server (not a reply to management).
	out := []probe{
		{h.Netns(), str.Addr, 80, "tcp"}, {h.Netns(), str.Addr6, 80, "tcp"}, {h.Netns(), lab.ControlAddr, 7070, "tcp"},
	}
	all := append(append([]probe{}, in...), out...)
	pre := reachAll(t, all)
	for _, p := range all {
		if p.from == str.Netns() && p.port == 22 {
			continue // sys1's own rules decide; only "not open" matters during isolate
		}
		if pre[p] != "open" {
			t.Fatalf("before isolate %s → %s:%d: %s, want open (the lab's seeded state)", orMachine(p.from), p.addr, p.port, pre[p])
		}
	}
	res, code := c.runRaw(t, nil, "isolate", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, h.Name)
	if code != 0 {
		t.Fatalf("isolate exit %d\n%s", code, res)
	}
	if !strings.Contains(res, "isolate run") {
		t.Errorf("isolate's summary does not name the run:\n%s", res)
	}
	during := reachAll(t, all)
	for _, p := range all {
		got := during[p]
		switch {
		case p.from == "":
			if got != "open" {
				t.Errorf("isolated: control node → %s:%d: %s, want open", p.addr, p.port, got)
			}
		case p.from == str.Netns():
			if got != "dropped" {
				t.Errorf("isolated: stranger → %s:%d: %s, want dropped", p.addr, p.port, got)
			}
		default: // outgoing: refused locally (EPERM) or dropped, never open
			if got == "open" {
				t.Errorf("isolated: %s → %s:%d: open, want cut", h.Name, p.addr, p.port)
			}
		}
	}
	if out, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status while isolated: exit %d\n%s", code, out)
	}
	res, code = c.runRaw(t, nil, "isolate", "--undo", "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, h.Name)
	if code != 0 {
		t.Fatalf("isolate --undo exit %d\n%s", code, res)
	}
	if got := fwSaves(t, h); got != before {
		t.Errorf("after isolate --undo the saves differ:\n%s", diffLines(before, got))
	}
	if d := diffLines(units, snapshot(t, h)); d != "" {
		t.Errorf("units after isolate and undo differ:\n%s", d)
	}
	after := reachAll(t, all)
	for _, p := range all {
		if after[p] != pre[p] {
			t.Errorf("after undo %s → %s:%d: %s, before isolate %s", orMachine(p.from), p.addr, p.port, after[p], pre[p])
		}
	}
}

// deadmanLog waits, up to 15 s, until the host's dead-man log holds
// every want (the dead-man writes its last line after the revert's
// clean-up, a moment after the rules are back), removes the log and
// returns it; a want missing is a test error.
func deadmanLog(t *testing.T, h *labtest.Host, want ...string) string {
	t.Helper()
	var log string
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		log = h.MustSSH(t, "root", "cat /var/lib/holiday/firewall-deadman.log 2>/dev/null; true")
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(log, w)
		}
		if !missing {
			break
		}
		if time.Now().After(end) {
			t.Errorf("the dead-man's log on %s does not say %q:\n%s", h.Name, want, log)
			break
		}
	}
	h.MustSSH(t, "root", "rm -f /var/lib/holiday/firewall-deadman.log")
	return log
}

// waitReverted waits until the host's saves equal before (the dead-man
// reverted by itself), at most secs + 30 s after t0.
func waitReverted(t *testing.T, h *labtest.Host, before string, t0 time.Time, secs int) time.Duration {
	t.Helper()
	for fwSaves(t, h) != before {
		if time.Since(t0) > time.Duration(secs)*time.Second+30*time.Second {
			t.Fatalf("the host did not revert within %ds + 30s:\n%s", secs, diffLines(before, fwSaves(t, h)))
		}
		time.Sleep(300 * time.Millisecond)
	}
	return time.Since(t0)
}

// The confirmation fails for real: the applied rules (test hook: a DROP
// of the control node first in holiday's chain, what a lint gap would
// let through) block the new SSH connection, and the old one with it.
// Nothing is disarmed; the host reverts by itself within the window, the
// run reports the failure, and the rules are the saved ones.
func TestFirewallConfirmBlocked(t *testing.T) {
	lab := labtest.Require(t)
	h, before := fwHost(t, lab, "sys1")
	c := fwCLI(t, h, fwPlan(t, lab, controlOnly, h.Name))
	const secs = 8
	t0 := time.Now()
	out, code := c.run(t, []string{"HOLIDAY_TEST_FIREWALL=block-control", "HOLIDAY_TEST_DEADMAN_SECS=" + strconv.Itoa(secs)}, "lockdown", "--revert-timeout", "90s")
	if code == 0 {
		t.Fatalf("lockdown with the control node blocked: exit 0")
	}
	if !strings.Contains(out, "cannot reach the host over a new SSH connection") {
		t.Errorf("the run does not report the failed confirmation:\n%s", out)
	}
	took := waitReverted(t, h, before, t0, secs)
	t.Logf("reverted %v after lockdown started (dead-man %ds)", took.Round(100*time.Millisecond), secs)
	deadmanLog(t, h, "not disarmed in time", "reverted: ")
	if o := h.MustSSH(t, "root", "ls /etc/systemd/system/holiday-firewall.service /var/lib/holiday/firewall 2>&1; true"); strings.Count(o, "No such file") != 2 {
		t.Errorf("left on the host:\n%s", o)
	}
}

// A lockdown killed with -9 after the firewall is applied and before it
// is disarmed (test hook firewall:before-disarm): the host reverts by
// itself within the window; restore afterwards is a no-op that succeeds.
func TestFirewallKilledBeforeDisarm(t *testing.T) {
	lab := labtest.Require(t)
	for _, name := range []string{"sys1", "sysv1"} {
		t.Run(name, func(t *testing.T) {
			h, before := fwHost(t, lab, name)
			c := fwCLI(t, h, fwPlan(t, lab, controlOnly, h.Name))
			const secs = 6
			t0 := time.Now()
			if _, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=firewall:before-disarm", "HOLIDAY_TEST_DEADMAN_SECS=" + strconv.Itoa(secs)}, "lockdown"); code != -1 {
				t.Fatalf("lockdown with the crash hook: exit %d, want killed", code)
			}
			if !hasHolidayChain(t, h) {
				t.Fatal("no HOLIDAY-IN right after the kill: the hook fired before the apply")
			}
			took := waitReverted(t, h, before, t0, secs)
			t.Logf("%s reverted by itself %v after lockdown started (dead-man %ds)", name, took.Round(100*time.Millisecond), secs)
			deadmanLog(t, h, "reverted: ")
			restoreExact(t, c, h, before)
		})
	}
}

// The SysV boot script, short of a reboot (the lab cannot reboot a SysV
// host): its rc2.d link sorts after the host's own rule loader and before
// ssh; the loader alone takes holiday's chains with it (so the order
// matters); the boot's sequence run by hand in rc2.d's order (the
// loader, then holiday's script, as lab-sysv-init and /etc/init.d/rc run
// them) ends with the lockdown firewall in place; restore removes script
// and links, and rc links and rules are as before.
func TestFirewallBootScriptSysV(t *testing.T) {
	lab := labtest.Require(t)
	str := stranger(t, lab)
	str.RLock(t)
	hs := lockHosts(t, lab, "sysv1")
	h := hs[0]
	fwSafetyNet(t, hs)
	before, links := fwSaves(t, h), snapshot(t, h)
	c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
	t.Cleanup(func() {
		if hasHolidayChain(t, h) {
			c.run(t, nil, "restore")
		}
	})
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	if out := h.MustSSH(t, "root", "head -1 /etc/init.d/holiday-firewall"); !strings.Contains(out, "#!/bin/sh") {
		t.Fatalf("the boot script after lockdown:\n%s", out)
	}
	// rc2.d in the order its S links run.
	order := strings.Fields(h.MustSSH(t, "root", "cd /etc/rc2.d && ls -d S*"))
	pos := func(suffix string) int {
		for i, l := range order {
			if len(l) > 3 && l[3:] == suffix {
				return i
			}
		}
		return -1
	}
	loader, ssh := pos("lab-firewall"), pos("ssh")
	ours := -1
	for i, l := range order {
		if strings.HasSuffix(l, "holiday-firewall") {
			ours = i
		}
	}
	if loader < 0 || ssh < 0 || ours < 0 || !(loader < ours && ours < ssh) {
		t.Fatalf("rc2.d order %v: want the host's loader (S..lab-firewall), then holiday's link, then ssh", order)
	}
	h.MustSSH(t, "root", "/etc/init.d/lab-firewall start >/dev/null 2>&1; true") // the host's own loader alone
	if hasHolidayChain(t, h) {
		t.Fatal("the host's own loader did not take holiday's chains: the test proves nothing")
	}
	if _, code := c.run(t, nil, "status"); code != 4 {
		t.Errorf("status with the chains gone: exit %d, want 4 (drift)", code)
	}
	// The boot's firewall steps, by hand, in rc2.d's order.
	ran := h.MustSSH(t, "root", `for l in /etc/rc2.d/S*; do case "$l" in *lab-firewall|*holiday-firewall) echo "$l"; "$l" start >/dev/null 2>&1 || echo "$l failed";; esac; done`)
	if got := strings.Fields(ran); len(got) != 2 || !strings.HasSuffix(got[0], "lab-firewall") || !strings.HasSuffix(got[1], "holiday-firewall") {
		t.Errorf("ran, in rc2.d's order: %q, want the loader then holiday's script", ran)
	}
	if out, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status after the boot sequence: exit %d, want 0\n%s", code, out)
	}
	ps := []probe{{"", h.Addr, 22, "tcp"}, {"", h.Addr6, 22, "tcp"}, {str.Netns(), h.Addr, 80, "tcp"}, {str.Netns(), h.Addr6, 80, "tcp"}}
	for p, got := range reachAll(t, ps) {
		want := "dropped"
		if p.from == "" {
			want = "open"
		}
		if got != want {
			t.Errorf("after the boot script %s → %s:%d: %s, want %s", orMachine(p.from), p.addr, p.port, got, want)
		}
	}
	restoreExact(t, c, h, before)
	if d := diffLines(links, snapshot(t, h)); d != "" {
		t.Errorf("services and rc links after restore differ:\n%s", d)
	}
	if out := h.MustSSH(t, "root", "ls /etc/init.d/holiday-firewall 2>&1; ls /etc/rc?.d | grep holiday; true"); !strings.Contains(out, "No such file") || strings.Contains(out, "holiday-firewall\n") {
		t.Errorf("left on the host after restore:\n%s", out)
	}
}
