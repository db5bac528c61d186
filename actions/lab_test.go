package actions_test

// Lab tests: the service action and the lockdown/restore/status commands
// against the real lab hosts (lab/README.md), through the real holiday
// binary (the agent is that binary, so the test process can't be it).
// Every test holds the exclusive lock of each host it changes and leaves
// the host as it found it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func holidayBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "holiday-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "holiday")
		cmd := exec.Command("go", "build", "-tags", "holidaytest", "-o", binPath, "github.com/holiday-ops/holiday/cmd/holiday")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// planFor writes a plan stopping stops[host] on each host.
func planFor(t *testing.T, lab *labtest.Lab, stops map[string][]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: actions-test\nmanagement: [10.213.0.0/24, \"fd00:213::/64\"]\n")
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {backup: none}\nhosts:\n")
	var names []string
	for n := range stops {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := lab.Host(n)
		risk := "normal"
		if n == "sys1" {
			risk = "high"
		}
		fmt.Fprintf(&b, "  - {name: %s, address: %s, risk: %s, stop: [%s]}\n", n, h.Addr, risk, strings.Join(stops[n], ", "))
	}
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type cli struct {
	bin, plan, stateDir, key string
}

func newCLI(t *testing.T, plan string) *cli {
	d := t.TempDir()
	return &cli{bin: holidayBin(t), plan: plan, stateDir: filepath.Join(d, "state"), key: filepath.Join(d, "journal.key")}
}

// run runs holiday CMD -f plan with the CLI's state dir and key; it
// returns stdout+stderr and the exit code.
func (c *cli) run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	return c.runRaw(t, env, append([]string{args[0], "-f", c.plan, "--state-dir", c.stateDir, "--journal-key", c.key}, args[1:]...)...)
}

// runRaw runs holiday with exactly args.
func (c *cli) runRaw(t *testing.T, env []string, full ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode() // -1 when killed by a signal
	} else if err != nil {
		t.Fatalf("holiday %v: %v", full, err)
	}
	t.Logf("holiday %s → exit %d\n%s", strings.Join(full[:1], " "), code, out.String())
	return out.String(), code
}

// volatile are units that come and go with our own SSH logins and with
// connections to socket-activated services, not with lockdown: the slice
// of lab-echo's per-connection services appears with the first
// connection after a boot (internal/labtest's seed tests make one) and
// is gone after a reboot.
var volatile = regexp.MustCompile(`^(session-[0-9]+\.scope|user@[0-9]+\.service|user-[0-9]+\.slice|user-runtime-dir@[0-9]+\.service|lab-echo@.*\.service|system-lab\\x2decho\.slice|run-.*\.mount)\s`)

// snapshot is the host's whole service state, normalized: systemctl
// list-units --all and list-unit-files, or service --status-all and the
// rc links.
func snapshot(t *testing.T, h *labtest.Host) string {
	t.Helper()
	var cmd string
	if h.Kind == labtest.Systemd {
		cmd = "systemctl list-units --all --no-legend --plain --full --no-pager; echo ==; systemctl list-unit-files --no-legend --plain --full --no-pager"
	} else {
		cmd = "service --status-all 2>&1; echo ==; for d in /etc/rc?.d; do for l in $d/*; do echo \"$l -> $(readlink $l)\"; done; done"
	}
	out := h.MustSSH(t, "root", cmd)
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if volatile.MatchString(l) {
			continue
		}
		keep = append(keep, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(keep, "\n")
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	in := func(l []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range l {
			m[x] = true
		}
		return m
	}
	am, bm := in(al), in(bl)
	var d []string
	for _, x := range al {
		if !bm[x] {
			d = append(d, "- "+x)
		}
	}
	for _, x := range bl {
		if !am[x] {
			d = append(d, "+ "+x)
		}
	}
	return strings.Join(d, "\n")
}

// running reports whether a service runs on the host, in the host's own
// words.
func running(t *testing.T, h *labtest.Host, unit string) bool {
	t.Helper()
	var cmd string
	if h.Kind == labtest.Systemd {
		cmd = "systemctl is-active --quiet " + unit
	} else {
		cmd = "service " + unit + " status >/dev/null 2>&1"
	}
	_, err := h.SSH(context.Background(), "root", cmd)
	return err == nil
}

type unitCase struct {
	host, unit, state string
}

// The seeded states (lab/README.md) each case covers.
var unitCases = []unitCase{
	{"sys1", "nginx", "active+enabled"},
	{"sys1", "rsync", "inactive+enabled"},
	{"sys1", "lab-worker", "active+disabled"},
	{"sys1", "lab-masked", "masked"},
	{"sys1", "lab-static", "static"},
	{"sys1", "lab-echo.socket", "socket-activated (the socket)"},
	{"sys1", "lab-tick", "static, timer-triggered"},
	{"sys2", "mariadb", "active+enabled, socket-activated (mariadb.socket)"},
	{"sys2", "postgresql", "active+enabled"},
	{"sys2", "redis-server", "inactive+disabled"},
	{"sysv1", "nginx", "running+enabled"},
	{"sysv1", "rsync", "stopped+enabled"},
	{"sysv1", "lab-worker", "running+disabled"},
	{"sysv1", "postgresql", "stopped+disabled"},
}

func lockHosts(t *testing.T, lab *labtest.Lab, names ...string) []*labtest.Host {
	sort.Strings(names) // one order for every test: no deadlock between them
	var hs []*labtest.Host
	for _, n := range names {
		h := lab.MustHost(t, n)
		h.Lock(t)
		hs = append(hs, h)
	}
	return hs
}

// restoreOnCleanup makes sure the hosts get back to their state even when
// the test fails half-way: holiday restore, then a check.
// snapshots takes snapshot of every host, by name.
func snapshots(t *testing.T, hs []*labtest.Host) map[string]string {
	t.Helper()
	before := map[string]string{}
	for _, h := range hs {
		before[h.Name] = snapshot(t, h)
	}
	return before
}

// assertAsBefore fails for every host whose snapshot now differs from
// before; what says when ("after restore").
func assertAsBefore(t *testing.T, hs []*labtest.Host, before map[string]string, what string) {
	t.Helper()
	for _, h := range hs {
		if d := diffLines(before[h.Name], snapshot(t, h)); d != "" {
			t.Errorf("%s %s:\n%s", h.Name, what, d)
		}
	}
}

func restoreOnCleanup(t *testing.T, c *cli, hs []*labtest.Host, before map[string]string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		c.run(t, nil, "restore")
		assertAsBefore(t, hs, before, "still differs after cleanup restore")
	})
}

func TestLockdownRestoreEveryUnitState(t *testing.T) {
	lab := labtest.Require(t)
	stops := map[string][]string{}
	for _, c := range unitCases {
		stops[c.host] = append(stops[c.host], c.unit)
	}
	hs := lockHosts(t, lab, "sys1", "sys2", "sysv1")
	before := map[string]string{}
	wasRunning := map[unitCase]bool{}
	for _, h := range hs {
		before[h.Name] = snapshot(t, h)
	}
	for _, c := range unitCases {
		wasRunning[c] = running(t, lab.Host(c.host), c.unit)
	}
	c := newCLI(t, planFor(t, lab, stops))
	restoreOnCleanup(t, c, hs, before)

	t0 := time.Now()
	out, code := c.run(t, nil, "lockdown")
	lockdownTime := time.Since(t0)
	if code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	if !strings.Contains(out, "backups: NOT TAKEN") {
		t.Errorf("summary does not say backups: NOT TAKEN")
	}
	for _, uc := range unitCases {
		t.Run("break/"+uc.host+"/"+uc.unit, func(t *testing.T) {
			if running(t, lab.Host(uc.host), uc.unit) {
				t.Errorf("%s on %s (%s) runs during the break", uc.unit, uc.host, uc.state)
			}
		})
	}
	t.Run("break/socket-does-not-bring-it-back", func(t *testing.T) {
		sys1, sys2 := lab.Host("sys1"), lab.Host("sys2")
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(sys1.Addr, "7777"), 2*time.Second); err == nil {
			conn.Close()
			t.Errorf("sys1:7777 (lab-echo.socket) accepts connections during the break")
		}
		// mariadb.socket: connect from inside sys2 (its DROP policy hides it).
		sys2.SSH(context.Background(), "root", "timeout 2 bash -c 'echo > /dev/tcp/127.0.0.1/3306' 2>/dev/null; sleep 1")
		if running(t, sys2, "mariadb") || running(t, sys2, "mariadb.socket") {
			t.Errorf("mariadb came back through its socket during the break")
		}
	})
	t.Run("status-holds", func(t *testing.T) {
		if _, code := c.run(t, nil, "status"); code != 0 {
			t.Errorf("status exit %d, want 0", code)
		}
	})

	t0 = time.Now()
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	restoreTime := time.Since(t0)
	t.Logf("lockdown %v, restore %v (3 hosts, %d units)", lockdownTime, restoreTime, len(unitCases))
	for _, uc := range unitCases {
		t.Run("after/"+uc.host+"/"+uc.unit, func(t *testing.T) {
			if got := running(t, lab.Host(uc.host), uc.unit); got != wasRunning[uc] {
				t.Errorf("%s on %s (%s): running=%v after restore, want %v", uc.unit, uc.host, uc.state, got, wasRunning[uc])
			}
		})
	}
	for _, h := range hs {
		if d := diffLines(before[h.Name], snapshot(t, h)); d != "" {
			t.Errorf("%s: unit state after lockdown+restore differs from before:\n%s", h.Name, d)
		}
	}
	// A second restore has nothing left to do and changes nothing.
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Errorf("second restore exit %d", code)
	}
}

func TestStatusCatchesServiceStartedByHand(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1", "sysv1")
	before := snapshots(t, hs)
	c := newCLI(t, planFor(t, lab, map[string][]string{"sys1": {"nginx"}, "sysv1": {"nginx"}}))
	restoreOnCleanup(t, c, hs, before)
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	if _, code := c.run(t, nil, "status"); code != 0 {
		t.Fatalf("status right after lockdown: exit %d, want 0", code)
	}
	lab.Host("sys1").MustSSH(t, "root", "systemctl start nginx")
	lab.Host("sysv1").MustSSH(t, "root", "service nginx start >/dev/null")
	out, code := c.run(t, nil, "status")
	if code != 4 {
		t.Errorf("status after a hand start: exit %d, want 4 (drift)", code)
	}
	for _, want := range []string{"sys1: service:nginx drift", "sysv1: service:nginx drift", "port 80"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q", want)
		}
	}
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	assertAsBefore(t, hs, before, "differs after restore")
}

// TestFromHostLeavesOlderRunsAlone: a second control node restores from
// the hosts' copies after a run that reached only sysv1 crashed. sys1's
// latest copy is an older, already restored run of another control node
// (another key): restore must not touch it again, and must say why.
func TestFromHostLeavesOlderRunsAlone(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1", "sysv1")
	before := snapshots(t, hs)
	plan := planFor(t, lab, map[string][]string{"sys1": {"nginx"}, "sysv1": {"nginx"}})
	old := newCLI(t, plan)
	restoreOnCleanup(t, old, hs, before)
	if _, code := old.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("first lockdown: exit %d", code)
	}
	if _, code := old.run(t, nil, "restore"); code != 0 {
		t.Fatalf("first restore: exit %d", code)
	}
	time.Sleep(1100 * time.Millisecond) // run IDs are per second
	c := newCLI(t, plan)
	restoreOnCleanup(t, c, hs, before)
	if _, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=service:after-apply"}, "lockdown", "--host", "sysv1"); code != -1 {
		t.Fatalf("lockdown of sysv1 with the crash hook: exit %d, want killed", code)
	}
	second := &cli{bin: c.bin, plan: plan, stateDir: filepath.Join(t.TempDir(), "state2"), key: c.key}
	out, code := second.run(t, nil, "restore", "--from-host")
	if code != 0 {
		t.Fatalf("restore --from-host: exit %d", code)
	}
	if !strings.Contains(out, "sys1: this run has no journal of it here") {
		t.Errorf("restore does not say the run never reached sys1:\n%s", out)
	}
	assertAsBefore(t, hs, before, "after restore --from-host differs")
}

// TestRestoreKilledHalfway: the control node dies after the first revert
// of a host's batch is journaled (the agent goes on with the others); a
// second restore finds the rest unjournaled, reverts them again (no
// change twice) and the hosts are as before the lockdown.
func TestRestoreKilledHalfway(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1", "sysv1")
	before := snapshots(t, hs)
	c := newCLI(t, planFor(t, lab, map[string][]string{"sys1": {"nginx", "rsync"}, "sysv1": {"nginx", "rsync", "lab-worker"}}))
	restoreOnCleanup(t, c, hs, before)
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown: exit %d", code)
	}
	if _, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=service:mid-revert"}, "restore"); code != -1 {
		t.Fatalf("restore with the crash hook: exit %d, want killed", code)
	}
	out, code := c.run(t, nil, "restore")
	if code != 0 {
		t.Fatalf("second restore: exit %d", code)
	}
	if !strings.Contains(out, "reverted") {
		t.Errorf("the second restore reverted nothing:\n%s", out)
	}
	assertAsBefore(t, hs, before, "after a restore killed half-way and another: differs")
}

func TestCrashThenRestore(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1", "sysv1")
	stops := map[string][]string{"sys1": {"nginx", "lab-echo.socket", "rsync"}, "sysv1": {"nginx", "rsync"}}
	for _, point := range []string{"after-intent", "after-apply", "after-record"} {
		for _, fromHost := range []bool{false, true} {
			name := point
			if fromHost {
				name += "/from-host-copy"
			}
			t.Run(name, func(t *testing.T) {
				before := snapshots(t, hs)
				plan := planFor(t, lab, stops)
				c := newCLI(t, plan)
				restoreOnCleanup(t, c, hs, before)
				_, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=service:" + point}, "lockdown")
				if code != -1 {
					t.Fatalf("lockdown with the crash hook: exit %d, want killed", code)
				}
				r := c
				args := []string{"restore"}
				if fromHost {
					// A second control node: fresh state dir, the same key.
					r = &cli{bin: c.bin, plan: plan, stateDir: filepath.Join(t.TempDir(), "state2"), key: c.key}
					args = append(args, "--from-host")
				}
				if _, code := r.run(t, nil, args...); code != 0 {
					t.Fatalf("restore exit %d", code)
				}
				assertAsBefore(t, hs, before, fmt.Sprintf("after crash %s + restore differs", point))
			})
		}
	}
}

// TestLightFleet locks down and restores every light host (two services
// each) in one run, checks each comes back identical, and logs the times.
func TestLightFleet(t *testing.T) {
	lab := labtest.Require(t)
	var names []string
	for _, h := range lab.Hosts {
		if strings.HasPrefix(h.Name, "light") {
			names = append(names, h.Name)
		}
	}
	if len(names) == 0 {
		testenv.Skip(t, "no light hosts (LIGHT_HOSTS=N lab/up.sh)")
	}
	hs := lockHosts(t, lab, names...)
	before := map[string]string{}
	stops := map[string][]string{}
	for _, h := range hs {
		before[h.Name] = snapshot(t, h)
		stops[h.Name] = []string{"nginx", "redis-server"}
	}
	c := newCLI(t, planFor(t, lab, stops))
	restoreOnCleanup(t, c, hs, before)
	for round, label := range []string{"cold (agent uploaded)", "warm (agent cached)"} {
		t0 := time.Now()
		if _, code := c.run(t, nil, "lockdown"); code != 0 {
			t.Fatalf("lockdown exit %d", code)
		}
		tl := time.Since(t0)
		for _, h := range hs {
			if running(t, h, "nginx") || running(t, h, "redis-server") {
				t.Errorf("%s: a service still runs during the break", h.Name)
			}
		}
		t1 := time.Now()
		if _, code := c.run(t, nil, "restore"); code != 0 {
			t.Fatalf("restore exit %d", code)
		}
		tr := time.Since(t1)
		t.Logf("round %d %s: %d light hosts × 2 services: lockdown %.2fs, restore %.2fs, total %.2fs", round+1, label, len(hs), tl.Seconds(), tr.Seconds(), (tl + tr).Seconds())
		assertAsBefore(t, hs, before, "differs after restore")
	}
}
