package actions_test

// Lab tests of a host's service steps stopped together: nine units
// (services, a socket-activated service, a socket, timers, a PartOf=
// sidecar that goes as a side effect) installed into sys1 for the test by
// bench/stops-units.sh and removed afterwards, leaving the seeded state
// exact.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// nineUnits are the plan's stops (bench/stops-units.sh names).
var nineUnits = []string{"bench-db", "bench-api", "bench-queue", "bench-ingest", "bench-mail", "bench-cache", "bench-web.socket", "bench-backup.timer", "bench-report.timer"}

// unitsScript runs bench/stops-units.sh ACTION on h as root, with env
// (VAR=value …) set.
func unitsScript(t *testing.T, h *labtest.Host, env, action string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "bench", "stops-units.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprintf("echo %s | base64 -d > /run/stops-units.sh && %s bash /run/stops-units.sh %s; rc=$?; rm -f /run/stops-units.sh; exit $rc", base64.StdEncoding.EncodeToString(b), env, action)
	if _, err := h.SSH(context.Background(), "root", cmd); err != nil {
		t.Fatalf("stops-units.sh %s on %s: %v", action, h.Name, err)
	}
}

// withNineUnits locks sys1, installs the nine units (env: see
// stops-units.sh) and removes them when the test ends, checking sys1 is
// as it was before they came.
func withNineUnits(t *testing.T, env string) *labtest.Host {
	lab := labtest.Require(t)
	h := lockHosts(t, lab, "sys1")[0]
	seeded := snapshot(t, h)
	t.Cleanup(func() {
		unitsScript(t, h, "", "remove")
		if d := diffLines(seeded, snapshot(t, h)); d != "" {
			t.Errorf("sys1 after the nine units were removed differs from before they came:\n%s", d)
		}
	})
	unitsScript(t, h, env, "install")
	return h
}

func ninePlan(t *testing.T, lab *labtest.Lab) string {
	return planFor(t, lab, map[string][]string{"sys1": nineUnits})
}

// journaled returns the service results of the latest run in c's state
// dir, by step.
func journaled(t *testing.T, c *cli, host string) map[string]journal.Entry {
	t.Helper()
	runs, _ := filepath.Glob(filepath.Join(c.stateDir, "runs", "*", host+".journal"))
	if len(runs) == 0 {
		t.Fatal("no journal")
	}
	slices.Sort(runs)
	key, err := journal.LoadOrCreateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.ReadFile(runs[len(runs)-1], key)
	if err != nil {
		t.Fatal(err)
	}
	res := map[string]journal.Entry{}
	for _, e := range j.Entries {
		if e.Phase == journal.Result {
			res[e.Step] = e
		}
	}
	return res
}

func doneOf(t *testing.T, e journal.Entry) actions.ServiceDone {
	t.Helper()
	var r actions.Record
	var d actions.ServiceDone
	if err := json.Unmarshal(e.Record, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

func sideNames(d actions.ServiceDone) []string {
	var n []string
	for _, u := range d.SideEffects {
		n = append(n, u.Name)
	}
	return n
}

// slowestAlone times `systemctl stop` of each unit alone on h (started
// again after), and returns the slowest.
func slowestAlone(t *testing.T, h *labtest.Host) (string, time.Duration) {
	var name string
	var max time.Duration
	for _, u := range nineUnits {
		out := h.MustSSH(t, "root", "s=$(date +%s%N); systemctl stop "+u+" 2>/dev/null; e=$(date +%s%N); echo $((e - s))")
		var ns int64
		fmt.Sscan(strings.TrimSpace(out), &ns)
		if d := time.Duration(ns); d > max {
			name, max = u, d
		}
		unitsScript(t, h, "", "running")
	}
	return name, max
}

func TestNineUnitsTogether(t *testing.T) {
	h := withNineUnits(t, "")
	lab := labtest.Require(t)
	slow, alone := slowestAlone(t, h)
	before := snapshot(t, h)
	hs := []*labtest.Host{h}
	c := newCLI(t, ninePlan(t, lab))
	restoreOnCleanup(t, c, hs, map[string]string{"sys1": before})

	// Once to upload the agent, then timed.
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	t0 := time.Now()
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	lockdown := time.Since(t0)
	for _, u := range append(nineUnits, "bench-ingest.socket", "bench-sidecar") {
		if running(t, h, u) {
			t.Errorf("%s runs during the break", u)
		}
	}
	res := journaled(t, c, "sys1")
	if len(res) != len(nineUnits) {
		t.Fatalf("%d results journaled, want %d", len(res), len(nineUnits))
	}
	// Each step's record is its own: what it stopped and disabled, and
	// the side effect with the step it belongs to.
	want := map[string]struct{ stopped, disabled []string }{
		"bench-db":           {[]string{"bench-db.service"}, []string{"bench-db.service"}},
		"bench-api":          {[]string{"bench-api.service"}, []string{"bench-api.service"}},
		"bench-queue":        {[]string{"bench-queue.service"}, []string{"bench-queue.service"}},
		"bench-ingest":       {[]string{"bench-ingest.socket", "bench-ingest.service"}, []string{"bench-ingest.socket"}},
		"bench-mail":         {[]string{"bench-mail.service"}, []string{"bench-mail.service"}},
		"bench-cache":        {[]string{"bench-cache.service"}, nil},
		"bench-web.socket":   {[]string{"bench-web.socket"}, []string{"bench-web.socket"}},
		"bench-backup.timer": {[]string{"bench-backup.timer"}, []string{"bench-backup.timer"}},
		"bench-report.timer": {[]string{"bench-report.timer"}, []string{"bench-report.timer"}},
	}
	for _, u := range nineUnits {
		e, ok := res["service:"+u]
		if !ok {
			t.Errorf("no result for %s", u)
			continue
		}
		d := doneOf(t, e)
		w := want[u]
		if e.Error != "" || d.Error != "" {
			t.Errorf("%s: error %q %q", u, e.Error, d.Error)
		}
		if !slices.Equal(d.Stopped, w.stopped) || !slices.Equal(d.Disabled, w.disabled) {
			t.Errorf("%s: stopped %v disabled %v, want %v %v", u, d.Stopped, d.Disabled, w.stopped, w.disabled)
		}
		// The closed ports go to the socket units that held them.
		wantPorts := map[string][]int{"bench-web.socket": {7801}, "bench-ingest": {7802}}[u]
		if !slices.Equal(d.Ports, wantPorts) {
			t.Errorf("%s: ports %v, want %v", u, d.Ports, wantPorts)
		}
		side := sideNames(d)
		if u == "bench-api" != slices.Contains(side, "bench-sidecar.service") {
			t.Errorf("%s: side effects %v (bench-sidecar.service is bench-api's alone)", u, side)
		}
		for _, s := range side {
			if strings.HasPrefix(s, "bench-") && s != "bench-sidecar.service" {
				t.Errorf("%s: side effect %s is another step's unit", u, s)
			}
		}
	}
	if _, code := c.run(t, nil, "status"); code != 0 {
		t.Errorf("status exit %d, want 0", code)
	}
	t1 := time.Now()
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	restore := time.Since(t1)
	assertAsBefore(t, hs, map[string]string{"sys1": before}, "after lockdown+restore differs")
	t.Logf("9 units: lockdown %.2fs (wall, holiday command), slowest alone %s %.2fs: %.2fx; restore %.2fs",
		lockdown.Seconds(), slow, alone.Seconds(), lockdown.Seconds()/alone.Seconds(), restore.Seconds())
}

// TestNineUnitsCrash: the control node dies at each crash point of the
// batch; a restore (from the control node's journal and from the host's
// copy) leaves sys1 exactly as before.
func TestNineUnitsCrash(t *testing.T) {
	h := withNineUnits(t, "")
	lab := labtest.Require(t)
	hs := []*labtest.Host{h}
	for _, point := range []string{"after-intent", "after-apply", "after-record"} {
		for _, fromHost := range []bool{false, true} {
			name := point
			if fromHost {
				name += "/from-host-copy"
			}
			t.Run(name, func(t *testing.T) {
				before := map[string]string{"sys1": snapshot(t, h)}
				plan := ninePlan(t, lab)
				c := newCLI(t, plan)
				restoreOnCleanup(t, c, hs, before)
				if _, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=service:" + point}, "lockdown"); code != -1 {
					t.Fatalf("lockdown with the crash hook: exit %d, want killed", code)
				}
				r, args := c, []string{"restore"}
				if fromHost {
					r = &cli{bin: c.bin, plan: plan, stateDir: filepath.Join(t.TempDir(), "state2"), key: c.key}
					args = append(args, "--from-host")
				}
				if _, code := r.run(t, nil, args...); code != 0 {
					t.Fatalf("restore exit %d", code)
				}
				assertAsBefore(t, hs, before, "after crash "+point+" + restore differs")
			})
		}
	}
	t.Run("mid-revert", func(t *testing.T) {
		before := map[string]string{"sys1": snapshot(t, h)}
		c := newCLI(t, ninePlan(t, lab))
		restoreOnCleanup(t, c, hs, before)
		if _, code := c.run(t, nil, "lockdown"); code != 0 {
			t.Fatalf("lockdown exit %d", code)
		}
		if _, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=service:mid-revert"}, "restore"); code != -1 {
			t.Fatalf("restore with the crash hook: exit %d, want killed", code)
		}
		if _, code := c.run(t, nil, "restore"); code != 0 {
			t.Fatalf("second restore exit %d", code)
		}
		assertAsBefore(t, hs, before, "after a restore killed half-way and another: differs")
	})
}

// TestNineUnitsOneFails: bench-mail refuses a manual stop. Its step
// fails with its own error; every other step's result is journaled
// correct and without error; lockdown reverts the host to exactly before.
func TestNineUnitsOneFails(t *testing.T) {
	h := withNineUnits(t, "BENCH_REFUSE=1")
	lab := labtest.Require(t)
	hs := []*labtest.Host{h}
	before := map[string]string{"sys1": snapshot(t, h)}
	c := newCLI(t, ninePlan(t, lab))
	restoreOnCleanup(t, c, hs, before)
	out, code := c.run(t, nil, "lockdown")
	if code == 0 {
		t.Fatalf("lockdown exit 0 with a unit that refuses to stop")
	}
	if !strings.Contains(out, "bench-mail") {
		t.Errorf("the output does not name bench-mail:\n%s", out)
	}
	res := journaled(t, c, "sys1")
	for _, u := range nineUnits {
		e, ok := res["service:"+u]
		if !ok {
			t.Errorf("no result for %s", u)
			continue
		}
		d := doneOf(t, e)
		if u == "bench-mail" {
			if !strings.Contains(e.Error, "bench-mail.service") {
				t.Errorf("bench-mail's error %q does not name it", e.Error)
			}
			continue
		}
		if e.Error != "" {
			t.Errorf("%s: error %q: another unit's failure is not its own", u, e.Error)
		}
		unit := u
		if !strings.Contains(u, ".") {
			unit += ".service"
		}
		if len(d.Stopped) == 0 || d.Stopped[len(d.Stopped)-1] != unit {
			t.Errorf("%s: stopped %v", u, d.Stopped)
		}
	}
	assertAsBefore(t, hs, before, "after the failed lockdown reverted itself: differs")
}

// lsbScript is a SysV script that logs when its start and stop begin and
// end (each takes 0.3 s) into /run/lsbt.log, with the given LSB lines.
func lsbScript(name, deps string) string {
	return `#!/bin/sh
### BEGIN INIT INFO
# Provides: ` + name + `
` + deps + `# Default-Start: 2 3 4 5
# Default-Stop: 0 1 6
### END INIT INFO
P=/run/` + name + `.pid
log() { echo "$1 ` + name + ` $(date +%s%N)" >> /run/lsbt.log; }
case "$1" in
start) log start-begin; sleep 0.3; setsid sleep infinity </dev/null >/dev/null 2>&1 & echo $! > $P; log start-end ;;
stop) log stop-begin; sleep 0.3; [ -f $P ] && kill $(cat $P) 2>/dev/null; rm -f $P; log stop-end ;;
status) [ -f $P ] && kill -0 $(cat $P) 2>/dev/null && exit 0; exit 3 ;;
*) exit 3 ;;
esac
`
}

// TestSysVOrderedByLSB: on a SysV host, scripts stop at once unless
// their LSB headers order them: lsbt-a needs lsbt-b (Required-Start and
// Required-Stop), lsbt-c needs nobody. a stops before b, b starts before
// a; c overlaps with both.
func TestSysVOrderedByLSB(t *testing.T) {
	lab := labtest.Require(t)
	h := lockHosts(t, lab, "sysv1")[0]
	seeded := snapshot(t, h)
	scripts := map[string]string{
		"lsbt-a": lsbScript("lsbt-a", "# Required-Start: $remote_fs lsbt-b\n# Required-Stop: $remote_fs lsbt-b\n"),
		"lsbt-b": lsbScript("lsbt-b", "# Required-Start: $remote_fs\n# Required-Stop: $remote_fs\n"),
		"lsbt-c": lsbScript("lsbt-c", "# Required-Start: $remote_fs\n# Required-Stop: $remote_fs\n"),
	}
	remove := "for s in lsbt-a lsbt-b lsbt-c; do /etc/init.d/$s stop >/dev/null 2>&1; update-rc.d -f $s remove >/dev/null 2>&1; rm -f /etc/init.d/$s /run/$s.pid; done; rm -f /run/lsbt.log"
	t.Cleanup(func() {
		h.MustSSH(t, "root", remove)
		if d := diffLines(seeded, snapshot(t, h)); d != "" {
			t.Errorf("sysv1 after the test scripts were removed differs from before:\n%s", d)
		}
	})
	var install strings.Builder
	for _, n := range []string{"lsbt-b", "lsbt-c", "lsbt-a"} {
		fmt.Fprintf(&install, "echo %s | base64 -d > /etc/init.d/%s && chmod 755 /etc/init.d/%s && update-rc.d %s defaults >/dev/null 2>&1 && /etc/init.d/%s start >/dev/null; ",
			base64.StdEncoding.EncodeToString([]byte(scripts[n])), n, n, n, n)
	}
	h.MustSSH(t, "root", install.String()+"rm -f /run/lsbt.log")
	hs := []*labtest.Host{h}
	before := map[string]string{"sysv1": snapshot(t, h)}
	c := newCLI(t, planFor(t, lab, map[string][]string{"sysv1": {"lsbt-a", "lsbt-b", "lsbt-c"}}))
	restoreOnCleanup(t, c, hs, before)

	// times reads the log: event → script → ns.
	times := func() map[string]map[string]int64 {
		m := map[string]map[string]int64{}
		for _, l := range strings.Split(strings.TrimSpace(h.MustSSH(t, "root", "cat /run/lsbt.log; rm -f /run/lsbt.log")), "\n") {
			var ev, n string
			var ns int64
			if _, err := fmt.Sscan(l, &ev, &n, &ns); err != nil {
				continue
			}
			if m[ev] == nil {
				m[ev] = map[string]int64{}
			}
			m[ev][n] = ns
		}
		return m
	}
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	m := times()
	t.Logf("stops: %v", m)
	if m["stop-begin"]["lsbt-b"] < m["stop-end"]["lsbt-a"] {
		t.Errorf("lsbt-b began to stop before lsbt-a (which needs it) had stopped")
	}
	if m["stop-begin"]["lsbt-c"] >= m["stop-end"]["lsbt-a"] || m["stop-begin"]["lsbt-c"] == 0 {
		t.Errorf("lsbt-c did not stop at the same time as lsbt-a")
	}
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	m = times()
	t.Logf("starts: %v", m)
	if m["start-begin"]["lsbt-a"] < m["start-end"]["lsbt-b"] {
		t.Errorf("lsbt-a began to start before lsbt-b (which it needs) had started")
	}
	if m["start-begin"]["lsbt-c"] >= m["start-end"]["lsbt-b"] || m["start-begin"]["lsbt-c"] == 0 {
		t.Errorf("lsbt-c did not start at the same time as lsbt-b")
	}
	assertAsBefore(t, hs, before, "after lockdown+restore differs")
}
