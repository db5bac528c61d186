package actions_test

// Lab tests of one run per host at a time and of the runner's own safety
// rules: the locks between runs of one control node and of two, a lock
// left by a killed run, and a plan whose management path excludes the
// control node.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/labtest"
)

// slowPlan stops nginx on sysv1 after a hook that takes secs seconds, so
// a lockdown is still working when another run starts.
func slowPlan(t *testing.T, lab *labtest.Lab, management string, secs int) string {
	t.Helper()
	h := lab.Host("sysv1")
	plan := fmt.Sprintf(`version: 1
name: locks-test
management: %s
ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}
hosts:
  - {name: sysv1, address: %s, backup: none, stop: [nginx], hooks: {before: ["sleep %d"]}}
`, management, lab.SSHKey, lab.KnownHosts, h.Addr, secs)
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type runOut struct {
	out  string
	code int
}

// background runs holiday in a goroutine.
func (c *cli) background(t *testing.T, env []string, args ...string) chan runOut {
	ch := make(chan runOut, 1)
	go func() {
		out, code := c.run(t, env, args...)
		ch <- runOut{out, code}
	}()
	return ch
}

// waitFor polls until cond holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// journals lists the run journals under a state dir.
func journals(stateDir string) []string {
	m, _ := filepath.Glob(filepath.Join(stateDir, "runs", "*", "*.journal"))
	return m
}

// TestOneRunPerHost: while a lockdown works on sysv1, a restore from the
// same control node is refused naming the lockdown, a lockdown from a
// second control node (another state dir) is refused by the host's lock,
// and neither journals anything; a restore with --wait queues behind the
// lockdown and then puts the host back exactly as before.
func TestOneRunPerHost(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sysv1")
	before := snapshots(t, hs)
	plan := slowPlan(t, lab, `[10.213.0.0/24, "fd00:213::/64"]`, 4)
	a, b := newCLI(t, plan), newCLI(t, plan)
	restoreOnCleanup(t, a, hs, before)

	lock := a.background(t, nil, "lockdown")
	waitFor(t, 30*time.Second, "the lockdown's journal", func() bool { return len(journals(a.stateDir)) == 1 })

	out, code := a.run(t, nil, "restore")
	if code != 2 || !strings.Contains(out, "busy") || !strings.Contains(out, "lockdown run") || !strings.Contains(out, "on this control node") {
		t.Errorf("restore during lockdown: exit %d, want 2 with busy naming the lockdown run on this control node", code)
	}
	out, code = b.run(t, nil, "lockdown")
	if code != 2 || !strings.Contains(out, "busy") || !strings.Contains(out, "on the host") || !strings.Contains(out, "lockdown run") {
		t.Errorf("second control node's lockdown: exit %d, want 2 with busy naming the other run on the host", code)
	}
	if j := journals(b.stateDir); len(j) != 0 {
		t.Errorf("the refused control node journaled %v", j)
	}
	waiting := a.background(t, nil, "restore", "--wait", "2m")

	if r := <-lock; r.code != 0 {
		t.Fatalf("the first lockdown: exit %d, want 0 (exactly one run proceeds)", r.code)
	}
	r := <-waiting
	if r.code != 0 || !strings.Contains(r.out, "waiting") {
		t.Fatalf("restore --wait: exit %d, want 0 after waiting", r.code)
	}
	assertAsBefore(t, hs, before, "after lockdown and the waiting restore")
	// The lockdown's journal is the only one, and verifies (restore
	// appended to it alone).
	if out, code := a.run(t, nil, "status"); code != 0 || strings.Contains(out, "MAC") {
		t.Errorf("status after restore: exit %d", code)
	}
}

// TestTwoControlNodesAtOnce: two control nodes lock down the same host at
// the same moment: exactly one proceeds.
func TestTwoControlNodesAtOnce(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sysv1")
	before := snapshots(t, hs)
	plan := slowPlan(t, lab, `[10.213.0.0/24, "fd00:213::/64"]`, 2)
	a, b := newCLI(t, plan), newCLI(t, plan)
	restoreOnCleanup(t, a, hs, before)
	t.Cleanup(func() {
		if t.Failed() {
			b.run(t, nil, "restore")
		}
	})
	ra, rb := a.background(t, nil, "lockdown"), b.background(t, nil, "lockdown")
	oa, ob := <-ra, <-rb
	winner, loser := a, b
	if oa.code != 0 {
		winner, loser = b, a
		oa, ob = ob, oa
	}
	if oa.code != 0 || ob.code != 2 || !strings.Contains(ob.out, "busy") {
		t.Fatalf("exit codes %d and %d: want exactly one 0 and one 2 (busy)", oa.code, ob.code)
	}
	if len(journals(loser.stateDir)) != 0 || len(journals(winner.stateDir)) != 1 {
		t.Errorf("journals: winner %v, loser %v", journals(winner.stateDir), journals(loser.stateDir))
	}
	if _, code := winner.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore: exit %d", code)
	}
	assertAsBefore(t, hs, before, "after restore")
}

// TestStaleLocksTakenOver: a lockdown killed mid-run (control node and the
// host's agents, kill -9) leaves both lock records behind; the next run
// recognises them as stale, says so, takes over and restores exactly.
func TestStaleLocksTakenOver(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sysv1")
	h := hs[0]
	before := snapshots(t, hs)
	plan := slowPlan(t, lab, `[10.213.0.0/24, "fd00:213::/64"]`, 30)
	c := newCLI(t, plan)
	restoreOnCleanup(t, c, hs, before)

	done := c.background(t, nil, "lockdown")
	waitFor(t, 30*time.Second, "the lockdown's journal", func() bool { return len(journals(c.stateDir)) == 1 })
	waitFor(t, 30*time.Second, "the host's lock record", func() bool {
		r, err := h.SSH(t.Context(), "root", "cat /var/lib/holiday/run.lock")
		return err == nil && strings.Contains(r.Stdout, `"lockdown"`)
	})
	// A power cut on both sides: the agents die without releasing.
	// The agents themselves first (not their sudo): an agent that saw
	// its session end first would release the lock cleanly, as it should.
	h.MustSSH(t, "root", "pkill -KILL -f '^/var/lib/holiday/agent/[^ ]*/holiday agent'; pkill -KILL -f '^sudo -n /var/lib/holiday/agent/' || true")
	killCLI(t, c)
	<-done
	out, code := c.run(t, nil, "restore")
	if code != 0 {
		t.Fatalf("restore after the kill: exit %d", code)
	}
	for _, want := range []string{"this control node took over a stale lock left by lockdown run", "the host took over a stale lock left by lockdown run"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q", want)
		}
	}
	assertAsBefore(t, hs, before, "after the restore that took the stale locks over")
}

// killCLI kills -9 every holiday control process of c's state dir.
func killCLI(t *testing.T, c *cli) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), c.stateDir) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			if p, err := os.FindProcess(pid); err == nil {
				p.Kill()
			}
		}
	}
}

// TestLockdownOutsideManagement: `holiday plan` says the control node is
// outside management and lockdown would refuse the host; lockdown does
// refuse it, changing nothing and journaling nothing.
func TestLockdownOutsideManagement(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sysv1")
	before := snapshots(t, hs)
	plan := slowPlan(t, lab, "[192.0.2.0/24]", 0)
	c := newCLI(t, plan)
	restoreOnCleanup(t, c, hs, before)

	pout, pcode := c.runPlan(t)
	if pcode != 2 || !strings.Contains(pout, "outside management") {
		t.Errorf("holiday plan: exit %d, want 2 saying the control node is outside management", pcode)
	}
	out, code := c.run(t, nil, "lockdown")
	if code != 2 || !strings.Contains(out, "refused") || !strings.Contains(out, "outside management") {
		t.Errorf("lockdown: exit %d, want 2 with the host refused for the management path", code)
	}
	if j := journals(c.stateDir); len(j) != 0 {
		t.Errorf("a refused host was journaled: %v", j)
	}
	assertAsBefore(t, hs, before, "after a refused lockdown")
}

// runPlan runs `holiday plan -f` (it takes no state dir).
func (c *cli) runPlan(t *testing.T) (string, int) {
	t.Helper()
	return c.runRaw(t, nil, "plan", "-f", c.plan)
}
