package actions_test

// Lab tests for the power and hook kinds, the --json output of lockdown,
// restore and status, and a reboot of a locked-down systemd host.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/labtest"
)

// runJSON runs holiday with --json and decodes stdout (stderr apart).
func (c *cli) runJSON(t *testing.T, env []string, args ...string) (map[string]any, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	full := append([]string{args[0], "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key, "--json"}, args[1:]...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Env = append(os.Environ(), env...)
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
	t.Logf("holiday %s --json → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out.String(), errb.String())
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("holiday %s --json: stdout is not one JSON object: %v", args[0], err)
	}
	return v, errb.String(), code
}

// checkShape checks the --json result's structure: the keys, their
// types, one entry per host with its steps.
func checkShape(t *testing.T, v map[string]any, command string, hosts map[string][]string) map[string]map[string]any {
	t.Helper()
	if v["command"] != command {
		t.Errorf("command %v, want %s", v["command"], command)
	}
	if r, _ := v["run"].(string); !strings.Contains(r, "T") || !strings.Contains(r, "Z-") {
		t.Errorf("run %v: not a run ID", v["run"])
	}
	if _, ok := v["elapsed_ns"].(float64); !ok {
		t.Errorf("elapsed_ns missing")
	}
	hs, _ := v["hosts"].([]any)
	if len(hs) != len(hosts) {
		t.Fatalf("%d hosts, want %d", len(hs), len(hosts))
	}
	byName := map[string]map[string]any{}
	for _, x := range hs {
		h, _ := x.(map[string]any)
		name, _ := h["host"].(string)
		byName[name] = h
		want, ok := hosts[name]
		if !ok {
			t.Errorf("unexpected host %q", name)
			continue
		}
		if _, ok := h["status"].(string); !ok {
			t.Errorf("%s: no status", name)
		}
		if h["status"] != "powered-off" { // a host not reached gets no journal entry
			if hd, _ := h["chain_head"].(string); len(hd) != 64 {
				t.Errorf("%s: chain_head %q, want 64 hex digits", name, hd)
			}
		}
		if j, _ := h["journal"].(string); !strings.HasSuffix(j, "/"+name+".journal") {
			t.Errorf("%s: journal %q", name, j)
		}
		steps, _ := h["steps"].([]any)
		var ids []string
		for _, s := range steps {
			m, _ := s.(map[string]any)
			for _, k := range []string{"id", "kind", "target", "status"} {
				if _, ok := m[k].(string); !ok {
					t.Errorf("%s: step without %s: %v", name, k, m)
				}
			}
			ids = append(ids, fmt.Sprint(m["id"]))
		}
		if strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("%s: steps %v, want %v", name, ids, want)
		}
	}
	return byName
}

func stepStatus(h map[string]any) map[string]string {
	out := map[string]string{}
	steps, _ := h["steps"].([]any)
	for _, s := range steps {
		m, _ := s.(map[string]any)
		out[fmt.Sprint(m["id"])] = fmt.Sprint(m["status"])
	}
	return out
}

// TestPowerOffHooksAndJSON: light1 has hooks before and after, a service
// and power off (on: wol); light2's before-hook fails. The poweroff runs
// under HOLIDAY_TEST_POWEROFF=record: the agent schedules it from a
// detached process exactly as for real, but that process writes a marker
// instead of running the poweroff command — the real poweroff is NOT
// exercised here (a light host is a pid namespace that poweroff would
// end for good; only lab/up.sh brings it back). "Powered off" at restore
// is then shown by pointing the plan at an address where nothing answers.
func TestPowerOffHooksAndJSON(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "light1", "light2")
	before := map[string]string{}
	for _, h := range hs {
		before[h.Name] = snapshot(t, h)
		h.MustSSH(t, "root", "rm -f /root/hook.log /var/lib/holiday/poweroff-test")
	}
	t.Cleanup(func() {
		for _, h := range hs {
			h.SSH(context.Background(), "root", "rm -f /root/hook.log /var/lib/holiday/poweroff-test")
		}
	})
	const mac = "52:54:00:12:34:56"
	writePlan := func(addr1 string) string {
		l1, l2 := lab.Host("light1"), lab.Host("light2")
		var b strings.Builder
		fmt.Fprintf(&b, "version: 1\nname: power-hooks\nmanagement: [10.213.0.0/24]\n")
		fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 3s}\n", lab.SSHKey, lab.KnownHosts)
		fmt.Fprintf(&b, "defaults: {backup: none}\nhosts:\n")
		fmt.Fprintf(&b, "  - name: light1\n    address: %s\n    stop: [nginx]\n", addr1)
		fmt.Fprintf(&b, "    hooks: {before: [\"echo before-1 >> /root/hook.log\", \"echo before-2 >> /root/hook.log; printf 'api_%%s=hunt%%s\\n' token er2\"], after: [\"echo after-1 >> /root/hook.log\", \"echo after-2 >> /root/hook.log\"]}\n")
		fmt.Fprintf(&b, "    power: {off: true, on: wol, mac: \"%s\", contact: \"night desk, ext. 42\"}\n", mac)
		fmt.Fprintf(&b, "  - name: light2\n    address: %s\n    stop: [nginx]\n", l2.Addr)
		fmt.Fprintf(&b, "    hooks: {before: [\"echo maintenance-on >> /root/hook.log\", \"echo cannot drain >&2; exit 3\", \"echo never >> /root/hook.log\"], after: [\"echo after >> /root/hook.log\"]}\n")
		_ = l1
		p := filepath.Join(t.TempDir(), "plan.yaml")
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plan := writePlan(lab.Host("light1").Addr)
	c := newCLI(t, plan)
	restoreOnCleanup(t, c, hs, before)
	rec := []string{"HOLIDAY_TEST_POWEROFF=record"}
	l1, l2 := lab.Host("light1"), lab.Host("light2")
	hookLog := func(h *labtest.Host) string {
		return h.MustSSH(t, "root", "cat /root/hook.log 2>/dev/null || true")
	}

	// Lockdown: light1 done, light2 stopped by its hook and reverted.
	v, _, code := c.runJSON(t, rec, "lockdown")
	if code != 3 {
		t.Errorf("lockdown exit %d, want 3 (light2 aborted and reverted)", code)
	}
	wantSteps := map[string][]string{
		"light1": {"hook:after", "hook:before", "service:nginx", "power:off"},
		"light2": {"hook:after", "hook:before", "service:nginx"},
	}
	byName := checkShape(t, v, "lockdown", wantSteps)
	if byName["light1"]["status"] != "done" || byName["light2"]["status"] != "reverted" {
		t.Errorf("statuses %v / %v, want done / reverted", byName["light1"]["status"], byName["light2"]["status"])
	}
	if po, _ := byName["light1"]["power_on"].(map[string]any); po["on"] != "wol" || po["mac"] != mac || po["contact"] != "night desk, ext. 42" {
		t.Errorf("light1 power_on %v", byName["light1"]["power_on"])
	}
	// The failed step is reverted with the rest (a before-hook has no undo).
	if st := stepStatus(byName["light2"]); st["hook:before"] != "reverted" || st["service:nginx"] != "not-run" || st["hook:after"] != "reverted" {
		t.Errorf("light2 steps %v", st)
	}
	if e := fmt.Sprint(byName["light2"]["error"]); !strings.Contains(e, `exited 3`) || !strings.Contains(e, "cannot drain") {
		t.Errorf("light2's error does not show the hook's exit code and output: %s", e)
	}
	// light2: the failing hook stopped the list; nginx untouched; the
	// after list ran as part of the revert.
	if got := hookLog(l2); got != "maintenance-on\nafter\n" {
		t.Errorf("light2 hook.log %q", got)
	}
	if !running(t, l2, "nginx") {
		t.Errorf("light2: nginx stopped although its before-hook failed")
	}
	if got := hookLog(l1); got != "before-1\nbefore-2\n" {
		t.Errorf("light1 hook.log after lockdown %q", got)
	}
	if running(t, l1, "nginx") {
		t.Errorf("light1: nginx runs after lockdown")
	}
	// The journal keeps the hook's command and output, the secret redacted.
	j, _ := os.ReadFile(fmt.Sprint(byName["light1"]["journal"]))
	if bytes.Contains(j, []byte("hunter2")) {
		t.Errorf("the journal holds the hook's secret")
	}
	if !bytes.Contains(j, []byte(`api_token=\u003credacted\u003e`)) && !bytes.Contains(j, []byte("api_token=<redacted>")) {
		t.Errorf("the journal lacks the hook's redacted output")
	}
	// The detached process records the poweroff after its delay, while
	// the agent's answer came back at once.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := l1.MustSSH(t, "root", "cat /var/lib/holiday/poweroff-test 2>/dev/null || true")
		if strings.Contains(out, "would run: ") {
			if !strings.Contains(out, "shutdown -h now") {
				t.Errorf("SysV host's poweroff command: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no poweroff recorded on light1 within 15 s")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// status: light1 holds (the marker stands for "off"); light2 has
	// nothing applied.
	sv, _, code := c.runJSON(t, nil, "status", "--host", "light1")
	if code != 0 {
		t.Errorf("status exit %d, want 0", code)
	}
	checkShape(t, sv, "status", map[string][]string{"light1": wantSteps["light1"]})

	// restore with light1 "off": nothing answers at its address.
	off := &cli{bin: c.bin, plan: writePlan("10.213.0.250"), stateDir: c.stateDir, key: c.key}
	out, code := off.run(t, nil, "restore", "--host", "light1")
	if code != 0 {
		t.Errorf("restore with light1 powered off: exit %d, want 0 (powered off as planned is not a failure)", code)
	}
	for _, want := range []string{"light1", "powered-off", "Switch these on", "Wake-on-LAN to " + mac, "night desk, ext. 42"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q", want)
		}
	}
	sv, _, code = off.runJSON(t, nil, "status", "--host", "light1")
	if code != 0 || !strings.Contains(fmt.Sprint(sv), "powered-off") {
		t.Errorf("status of the powered-off host: exit %d, %v", code, sv)
	}
	rv, _, code := off.runJSON(t, nil, "restore", "--host", "light1")
	if code != 0 {
		t.Errorf("restore --json with light1 off: exit %d", code)
	}
	rb := checkShape(t, rv, "restore", map[string][]string{"light1": wantSteps["light1"]})
	if rb["light1"]["status"] != "powered-off" {
		t.Errorf("restore status %v, want powered-off", rb["light1"]["status"])
	}
	if po, _ := rb["light1"]["power_on"].(map[string]any); po["mac"] != mac {
		t.Errorf("restore --json power_on %v", rb["light1"]["power_on"])
	}

	// Switched on again: the real restore reverts everything, the after
	// hooks last.
	rv, _, code = c.runJSON(t, nil, "restore")
	if code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	// Restore lists the journaled steps: light2 never got to its service.
	rb = checkShape(t, rv, "restore", map[string][]string{"light1": wantSteps["light1"], "light2": {"hook:after", "hook:before"}})
	for _, h := range []string{"light1", "light2"} {
		for id, st := range stepStatus(rb[h]) {
			if st != "reverted" {
				t.Errorf("%s %s: %s after restore", h, id, st)
			}
		}
	}
	if got := hookLog(l1); got != "before-1\nbefore-2\nafter-1\nafter-2\n" {
		t.Errorf("light1 hook.log after restore %q", got)
	}
	if got := hookLog(l2); got != "maintenance-on\nafter\n" {
		t.Errorf("light2 hook.log after restore %q (the after list ran once, at lockdown's revert)", got)
	}
	if out := l1.MustSSH(t, "root", "ls /var/lib/holiday/poweroff-test 2>&1 || true"); !strings.Contains(out, "No such file") {
		t.Errorf("marker left after restore: %q", out)
	}
	assertAsBefore(t, hs, before, "differs after restore")
}

// TestRebootKeepsServicesStopped locks down sys1 (nginx, redis-server,
// lab-echo.socket), reboots it from inside (the lab boots it again on the
// same root) and checks the services stay stopped and disabled; status
// still holds; restore brings them back. lab-worker is started by
// lab/up.sh, not at boot, so after the reboot it is inactive: the test
// starts it again before comparing with the state before.
func TestRebootKeepsServicesStopped(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1")
	h := hs[0]
	before := map[string]string{"sys1": snapshot(t, h)}
	stops := []string{"nginx", "redis-server", "lab-echo.socket"}
	c := newCLI(t, planFor(t, lab, map[string][]string{"sys1": stops}))
	t.Cleanup(func() { h.SSH(context.Background(), "root", "systemctl start lab-worker.service") })
	restoreOnCleanup(t, c, hs, before)
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	h.Reboot(t)
	for _, u := range []string{"nginx.service", "redis-server.service", "lab-echo.socket"} {
		out := h.MustSSH(t, "root", "systemctl is-active "+u+"; systemctl is-enabled "+u+"; true")
		if f := strings.Fields(out); len(f) != 2 || f[0] != "inactive" || f[1] != "disabled" {
			t.Errorf("%s after the reboot: %q, want inactive disabled", u, out)
		}
	}
	if _, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status after the reboot: exit %d, want 0", code)
	}
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	for _, u := range []string{"nginx", "redis-server", "lab-echo.socket"} {
		if !running(t, h, u) {
			t.Errorf("%s not running after restore", u)
		}
	}
	h.MustSSH(t, "root", "systemctl start lab-worker.service") // up.sh's, not the boot's
	if d := diffLines(before["sys1"], snapshot(t, h)); d != "" {
		t.Errorf("sys1 after lockdown, reboot and restore differs:\n%s", d)
	}
}

// waitBooted waits until h answers over SSH on a boot other than was and
// its systemd says running (or degraded), then settles the boot.
func waitBooted(t *testing.T, h *labtest.Host, was string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := h.SSH(context.Background(), "root", "cat /proc/sys/kernel/random/boot_id; systemctl is-system-running")
		if f := strings.Fields(r.Stdout); err == nil || len(f) == 2 {
			if len(f) == 2 && f[0] != was && (f[1] == "running" || f[1] == "degraded") {
				h.SettleBoot(t)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not boot within %s", h.Name, timeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestRealPowerOff: lockdown's power step really switches sys2 off (no
// test hook: `systemctl poweroff`, after the agent answered). status and
// restore list it to switch on, without calling it a failure; after the
// lab's power button it boots on its own root with mariadb still stopped
// and disabled, and restore brings everything back as it was.
func TestRealPowerOff(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys2")
	h := hs[0]
	before := map[string]string{"sys2": snapshot(t, h)}
	boot := strings.TrimSpace(h.MustSSH(t, "root", "cat /proc/sys/kernel/random/boot_id"))
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: real-poweroff\nmanagement: [10.213.0.0/24]\n")
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 3s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {backup: none}\nhosts:\n")
	fmt.Fprintf(&b, "  - {name: sys2, address: %s, stop: [mariadb], power: {off: true, on: manual, contact: \"rack 4, night desk\"}}\n", h.Addr)
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, plan)
	t.Cleanup(func() { h.SSH(context.Background(), "root", "systemctl start lab-worker.service") })
	restoreOnCleanup(t, c, hs, before)
	t.Cleanup(func() { // runs first: a host left off is switched on for the cleanup restore
		if h.WaitOff(0) {
			h.PowerOn(t)
			waitBooted(t, h, boot, 90*time.Second)
		}
	})

	out, code := c.run(t, nil, "lockdown")
	if code != 0 {
		t.Fatalf("lockdown: exit %d", code)
	}
	if !strings.Contains(out, "sys2: powered off last; it comes back by hand; contact: rack 4, night desk") {
		t.Errorf("lockdown does not say how sys2 comes back:\n%s", out)
	}
	if !h.WaitOff(60 * time.Second) {
		t.Fatalf("sys2 is not off 60 s after lockdown; see %s/hosts/sys2/console.log", lab.Dir)
	}
	for _, cmd := range []string{"status", "restore"} {
		out, code := c.run(t, nil, cmd)
		if code != 0 {
			t.Errorf("%s with sys2 off: exit %d, want 0 (powered off as planned is not a failure)", cmd, code)
		}
		if !strings.Contains(out, "Powered off by holiday lockdown, as the plan says (not failures). Switch these on, then run "+cmd+" again:") ||
			!strings.Contains(out, "sys2: by hand; contact: rack 4, night desk") {
			t.Errorf("%s does not list sys2 to switch on:\n%s", cmd, out)
		}
	}

	h.PowerOn(t)
	waitBooted(t, h, boot, 90*time.Second)
	for _, u := range []string{"mariadb.service", "mariadb.socket"} {
		out := h.MustSSH(t, "root", "systemctl is-active "+u+"; systemctl is-enabled "+u+"; true")
		if f := strings.Fields(out); len(f) != 2 || f[0] != "inactive" || f[1] != "disabled" {
			t.Errorf("%s after the power cycle: %q, want inactive disabled", u, out)
		}
	}
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore after switching sys2 on: exit %d", code)
	}
	h.MustSSH(t, "root", "systemctl start lab-worker.service") // up.sh's, not the boot's
	if d := diffLines(before["sys2"], snapshot(t, h)); d != "" {
		t.Errorf("sys2 after lockdown, power off, power on and restore differs:\n%s", d)
	}
}

// TestCrashHooksAndPower: the crash points for the hook and power kinds
// (the service kind has TestCrashThenRestore), restored from the same
// control node and from a second one. light4 runs a before and an after
// hook, stops nginx and powers off (the test hook records it). A crash
// right after the power step was applied leaves a poweroff pending on
// the host; the restore cancels it, so no poweroff happens afterwards.
func TestCrashHooksAndPower(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "light4")
	h := hs[0]
	clean := "rm -f /root/hook.log /var/lib/holiday/poweroff-test"
	h.MustSSH(t, "root", clean)
	t.Cleanup(func() { h.SSH(context.Background(), "root", clean) })
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: crash-hooks-power\nmanagement: [10.213.0.0/24]\n")
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 5s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {backup: none}\nhosts:\n")
	fmt.Fprintf(&b, "  - name: light4\n    address: %s\n    stop: [nginx]\n", h.Addr)
	fmt.Fprintf(&b, "    hooks: {before: [\"echo before >> /root/hook.log\"], after: [\"echo after >> /root/hook.log\"]}\n")
	fmt.Fprintf(&b, "    power: {off: true, on: manual, contact: \"night desk\"}\n")
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"hook", "power"} {
		for _, point := range []string{"after-intent", "after-apply", "after-record"} {
			for _, fromHost := range []bool{false, true} {
				name := kind + ":" + point
				if fromHost {
					name += "/from-host-copy"
				}
				t.Run(name, func(t *testing.T) {
					before := snapshot(t, h)
					h.MustSSH(t, "root", clean)
					c := newCLI(t, plan)
					restoreOnCleanup(t, c, hs, map[string]string{"light4": before})
					env := []string{"HOLIDAY_TEST_CRASH=" + kind + ":" + point, "HOLIDAY_TEST_POWEROFF=record"}
					if _, code := c.run(t, env, "lockdown"); code != -1 {
						t.Fatalf("lockdown with the crash hook: exit %d, want killed", code)
					}
					r, args := c, []string{"restore"}
					if fromHost {
						r = &cli{bin: c.bin, plan: plan, stateDir: filepath.Join(t.TempDir(), "state2"), key: c.key}
						args = append(args, "--from-host")
					}
					if _, code := r.run(t, []string{"HOLIDAY_TEST_POWEROFF=record"}, args...); code != 0 {
						t.Fatalf("restore: exit %d", code)
					}
					if d := diffLines(before, snapshot(t, h)); d != "" {
						t.Errorf("after crash %s:%s + restore differs:\n%s", kind, point, d)
					}
					// The after hook ran at restore (the before hook, which
					// has no undo, ran at lockdown unless the crash came first).
					log := h.MustSSH(t, "root", "cat /root/hook.log 2>/dev/null || true")
					if !strings.HasSuffix(log, "after\n") {
						t.Errorf("hook.log %q: the after hook did not run at restore", log)
					}
					if kind == "power" && point != "after-intent" {
						// The recorded poweroff was due 5 s after it was
						// scheduled; the restore cancelled it.
						time.Sleep(6 * time.Second)
						if out := h.MustSSH(t, "root", "cat /var/lib/holiday/poweroff-test 2>&1 || true"); !strings.Contains(out, "No such file") {
							t.Errorf("a poweroff happened after the restore (marker: %q)", out)
						}
					}
				})
			}
		}
	}
}
