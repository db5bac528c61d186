package actions_test

// Lab tests of the lockdown firewall (DESIGN §6): lockdown and restore
// leave both families' full saves (both backends) as they were; during
// lockdown a stranger is dropped and the management path works; a plan
// that would cut the control node is refused before anything changes; the
// dead-man reverts by itself; a crash then restore is exact. Every test
// also undoes holiday's chains from outside the host (its netns) when it
// ends, so a failure never leaves a lab host locked.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// fwSaves is every save of the host: both backends, both families,
// normalized as restore's identity check compares them.
func fwSaves(t *testing.T, h *labtest.Host) string {
	t.Helper()
	var parts []string
	for _, s := range []string{"iptables-legacy-save", "ip6tables-legacy-save", "iptables-nft-save", "ip6tables-nft-save"} {
		parts = append(parts, "## "+s+"\n"+actions.NormalizeSave(h.MustInNetns(t, s)))
	}
	return strings.Join(parts, "\n")
}

func hasHolidayChain(t *testing.T, h *labtest.Host) bool {
	s := fwSaves(t, h)
	return strings.Contains(s, ":HOLIDAY-IN ") || strings.Contains(s, ":HOLIDAY-OUT ")
}

// fwSafetyNet removes holiday's jumps and chains from the host's netns
// (no SSH needed) and stops a dead-man timer, when the test ends with
// them still there.
func fwSafetyNet(t *testing.T, hs []*labtest.Host) {
	t.Cleanup(func() {
		for _, h := range hs {
			if !hasHolidayChain(t, h) {
				continue
			}
			t.Errorf("%s: holiday's chain still there at the end; removing it from outside", h.Name)
			h.InNetns(context.Background(), "sh", "-c", `for t in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do while $t -w -D INPUT -j HOLIDAY-IN 2>/dev/null; do :; done; $t -w -F HOLIDAY-IN 2>/dev/null; $t -w -X HOLIDAY-IN 2>/dev/null; while $t -w -D OUTPUT -j HOLIDAY-OUT 2>/dev/null; do :; done; $t -w -F HOLIDAY-OUT 2>/dev/null; $t -w -X HOLIDAY-OUT 2>/dev/null; done; true`)
			if h.Kind == labtest.Systemd {
				h.SSH(context.Background(), "root", "systemctl stop holiday-firewall-deadman.timer; rm -rf /var/lib/holiday/firewall /var/lib/holiday/UNDO; true")
			}
		}
		for _, h := range hs {
			// The boot-time re-apply, in case a test left it.
			h.SSH(context.Background(), "root", `if [ -e /etc/systemd/system/holiday-firewall.service ]; then systemctl disable --quiet holiday-firewall.service; rm -f /etc/systemd/system/holiday-firewall.service; systemctl daemon-reload; fi; rm -f /etc/init.d/holiday-firewall /etc/rc?.d/[SK][0-9][0-9]*holiday-firewall; true`)
		}
	})
}

// fwPlan writes a plan with a lockdown firewall on each host: management
// is the control node alone, web (80) allowed from sysv1 only.
func fwPlan(t *testing.T, lab *labtest.Lab, management string, names ...string) string {
	t.Helper()
	sv := lab.Host("sysv1").Addr
	return fwPlanAllow(t, lab, management, fmt.Sprintf("[{tcp: [80, 7777], from: [%s]}, {udp: 5353, from: [%s]}]", sv, sv), names...)
}

// fwPlanAllow is fwPlan with the given allow list (YAML flow form) on
// every host.
func fwPlanAllow(t *testing.T, lab *labtest.Lab, management, allow string, names ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: firewall-test\nmanagement: [%s]\n", management)
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {backup: none}\nhosts:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - {name: %s, address: %s, firewall: {log_drops: true, ipv6: drop-all, allow: %s}}\n", n, lab.Host(n).Addr, allow)
	}
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const controlOnly = `10.213.0.1/32, "fd00:213::1/128"`

// reach tries a TCP connection from netns ns ("" : the machine, i.e. the
// control node) and says "open", "closed" (refused/reset) or "dropped"
// (no answer within the timeout).
func reach(t *testing.T, ns, addr string, port int) string {
	t.Helper()
	host := addr
	argv := []string{"timeout", "3", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", host, port)}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := runCmd(ctx, argv...)
	switch {
	case err == nil:
		return "open"
	case time.Since(start) >= 2900*time.Millisecond:
		return "dropped"
	default:
		return "closed"
	}
}

func stranger(t *testing.T, lab *labtest.Lab) *labtest.Host {
	t.Helper()
	h := lab.Host("light1")
	if h == nil {
		testenv.Skip(t, "needs a light host as the stranger (LIGHT_HOSTS=N lab/up.sh)")
	}
	return h
}

// probe is a connection attempt from netns from ("": the control node)
// to addr:port over proto ("tcp" or "udp").
type probe struct {
	from, addr string
	port       int
	proto      string
}

func (p probe) String() string {
	return fmt.Sprintf("%s → %s %s/%d", orMachine(p.from), p.addr, p.proto, p.port)
}

func probes(lab *labtest.Lab, target *labtest.Host, str *labtest.Host) []probe {
	sv := lab.Host("sysv1")
	return []probe{
		{"", target.Addr, 22, "tcp"},
		{"", target.Addr6, 22, "tcp"},
		{str.Netns(), target.Addr, 22, "tcp"},
		{str.Netns(), target.Addr, 80, "tcp"},
		{str.Netns(), target.Addr6, 22, "tcp"},
		{str.Netns(), target.Addr6, 80, "tcp"},
		{sv.Netns(), target.Addr, 80, "tcp"},
		{sv.Netns(), target.Addr6, 80, "tcp"},
	}
}

// reachAll probes at once: a dropped probe waits out its timeout.
func reachAll(t *testing.T, ps []probe) map[probe]string {
	res := make([]string, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.proto == "udp" {
				res[i] = reachUDP(t, p.from, p.addr, p.port)
				return
			}
			res[i] = reach(t, p.from, p.addr, p.port)
		}()
	}
	wg.Wait()
	out := map[probe]string{}
	for i, p := range ps {
		out[p] = res[i]
	}
	return out
}

func TestFirewallLockdownRestore(t *testing.T) {
	lab := labtest.Require(t)
	str := stranger(t, lab)
	names := []string{"sys1", "sys2", "sysv1"}
	hs := lockHosts(t, lab, names...)
	fwSafetyNet(t, hs)
	before := map[string]string{}
	for _, h := range hs {
		before[h.Name] = fwSaves(t, h)
	}
	for _, h := range hs {
		t.Run(h.Name, func(t *testing.T) {
			ps := probes(lab, h, str)
			if h.Name == "sysv1" {
				ps = ps[:6] // sysv1 is the allowed source itself
			}
			pre := reachAll(t, ps)
			c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
			t.Cleanup(func() {
				if hasHolidayChain(t, h) {
					c.run(t, nil, "restore")
				}
			})
			t0 := time.Now()
			out, code := c.run(t, nil, "lockdown")
			tLock := time.Since(t0)
			if code != 0 {
				t.Fatalf("lockdown exit %d", code)
			}
			if !strings.Contains(out, "/var/lib/holiday/UNDO") {
				t.Errorf("lockdown did not print the console undo")
			}
			if !hasHolidayChain(t, h) {
				t.Fatal("no HOLIDAY-IN after lockdown")
			}
			during := reachAll(t, ps)
			for p, was := range pre {
				got := during[p]
				var want string
				switch {
				case p.from == "": // the control node: the management path
					want = was
				case p.from == str.Netns():
					want = "dropped"
				case strings.Contains(p.addr, ":"): // sysv1 over IPv6: drop-all
					want = "dropped"
				default: // sysv1 → 80 over IPv4: allowed, the host's own rules decide
					want = was
				}
				if got != want {
					t.Errorf("during lockdown %s → %s:%d: %s, want %s (before: %s)", orMachine(p.from), p.addr, p.port, got, want, was)
				}
			}
			// The host's own outgoing connections still get their replies
			// from a source the firewall otherwise drops.
			if got := reach(t, h.Netns(), str.Addr, 80); got != "open" {
				t.Errorf("during lockdown %s → stranger %s:80 (outgoing): %s, want open", h.Name, str.Addr, got)
			}
			if out, code := c.run(t, nil, "status"); code != 0 {
				t.Errorf("status during lockdown: exit %d\n%s", code, out)
			}
			// Someone flushes holiday's chain by hand: status says drift.
			h.MustInNetns(t, "sh", "-c", "for t in iptables-nft ip6tables-nft iptables-legacy ip6tables-legacy; do $t -w -F HOLIDAY-IN 2>/dev/null; done; true")
			if out, code := c.run(t, nil, "status"); code != 4 || !strings.Contains(out, "HOLIDAY-IN holds 0 rules") {
				t.Errorf("status after HOLIDAY-IN was flushed by hand: exit %d, want 4 (drift) naming the chain", code)
			}
			t1 := time.Now()
			if _, code := c.run(t, nil, "restore"); code != 0 {
				t.Fatalf("restore exit %d", code)
			}
			tRestore := time.Since(t1)
			if got := fwSaves(t, h); got != before[h.Name] {
				t.Errorf("after restore the saves differ:\n%s", diffLines(before[h.Name], got))
			}
			after := reachAll(t, ps)
			for p, was := range pre {
				if after[p] != was {
					t.Errorf("after restore %s → %s:%d: %s, before lockdown %s", orMachine(p.from), p.addr, p.port, after[p], was)
				}
			}
			if out := h.MustSSH(t, "root", "ls /var/lib/holiday/UNDO /var/lib/holiday/firewall 2>&1; true"); !strings.Contains(out, "No such file") || strings.Count(out, "No such file") != 2 {
				t.Errorf("holiday's firewall files left on the host:\n%s", out)
			}
			t.Logf("%s: lockdown %v, restore %v (firewall only, both families)", h.Name, tLock.Round(time.Millisecond), tRestore.Round(time.Millisecond))
		})
	}
}

// fwHost takes the named host for the rest of the test (exclusively,
// with fwSafetyNet) and returns it with its saves before anything.
func fwHost(t *testing.T, lab *labtest.Lab, name string) (*labtest.Host, string) {
	t.Helper()
	hs := lockHosts(t, lab, name)
	fwSafetyNet(t, hs)
	return hs[0], fwSaves(t, hs[0])
}

// fwCLI is a CLI on plan that restores h when the test ends with
// holiday's chain still there.
func fwCLI(t *testing.T, h *labtest.Host, plan string) *cli {
	t.Helper()
	c := newCLI(t, plan)
	t.Cleanup(func() {
		if hasHolidayChain(t, h) {
			c.run(t, nil, "restore")
		}
	})
	return c
}

// restoreExact runs restore, which must succeed, and compares h's saves
// with before.
func restoreExact(t *testing.T, c *cli, h *labtest.Host, before string) {
	t.Helper()
	if out, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d\n%s", code, out)
	}
	if got := fwSaves(t, h); got != before {
		t.Errorf("after restore the saves differ:\n%s", diffLines(before, got))
	}
}

func orMachine(ns string) string {
	if ns == "" {
		return "control node"
	}
	return ns
}

// A plan whose management ranges leave out the control node is refused
// before anything changes on the host.
func TestFirewallRefusesCutManagement(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys1")
	fwSafetyNet(t, hs)
	before := fwSaves(t, hs[0])
	// A typo: .10 for .1 — the control node is outside.
	c := newCLI(t, fwPlan(t, lab, `10.213.0.10/32, "fd00:213::10/128"`, "sys1"))
	out, code := c.run(t, nil, "lockdown")
	if code == 0 || !strings.Contains(out, "outside management") {
		t.Errorf("lockdown: exit %d, want a refusal naming the management path", code)
	}
	if got := fwSaves(t, hs[0]); got != before {
		t.Errorf("the refused lockdown changed the rules:\n%s", diffLines(before, got))
	}
}

// The dead-man reverts by itself when the control node never confirms
// (test hook: no confirmation, no disarm), on systemd and on SysV.
func TestFirewallDeadman(t *testing.T) {
	lab := labtest.Require(t)
	for _, name := range []string{"sys1", "sysv1"} {
		t.Run(name, func(t *testing.T) {
			h, before := fwHost(t, lab, name)
			c := fwCLI(t, h, fwPlan(t, lab, controlOnly, name))
			const secs = 5
			if _, code := c.run(t, []string{"HOLIDAY_TEST_FIREWALL=no-confirm", fmt.Sprintf("HOLIDAY_TEST_DEADMAN_SECS=%d", secs)}, "lockdown"); code != 0 {
				t.Fatalf("lockdown exit %d", code)
			}
			t0 := time.Now()
			if !hasHolidayChain(t, h) {
				t.Fatal("no HOLIDAY-IN after lockdown")
			}
			for !(fwSaves(t, h) == before) {
				if time.Since(t0) > secs*time.Second+30*time.Second {
					t.Fatalf("the dead-man did not revert within %ds + 30s:\n%s", secs, diffLines(before, fwSaves(t, h)))
				}
				time.Sleep(500 * time.Millisecond)
			}
			t.Logf("%s: the dead-man reverted %v after lockdown returned", name, time.Since(t0).Round(100*time.Millisecond))
			deadmanLog(t, h, "reverted: ")
			if h.Kind == labtest.Systemd {
				deadline := time.Now().Add(10 * time.Second)
				for {
					u := h.MustSSH(t, "root", "systemctl list-units --all --no-legend --plain 'holiday-firewall*'; true")
					if strings.TrimSpace(u) == "" {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("the dead-man's transient units stay loaded:\n%s", u)
						break
					}
					time.Sleep(300 * time.Millisecond)
				}
			}
			// status sees the firewall gone; restore after the dead-man is a no-op that succeeds.
			if _, code := c.run(t, nil, "status"); code == 0 {
				t.Errorf("status after the dead-man fired: exit 0, want drift")
			}
			restoreExact(t, c, h, before)
		})
	}
}

func TestFirewallCrashThenRestore(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sys2")
	h := hs[0]
	fwSafetyNet(t, hs)
	before := fwSaves(t, h)
	for _, point := range []string{"after-intent", "after-apply"} {
		t.Run(point, func(t *testing.T) {
			c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
			t.Cleanup(func() {
				if hasHolidayChain(t, h) {
					c.run(t, nil, "restore")
				}
			})
			_, code := c.run(t, []string{"HOLIDAY_TEST_CRASH=firewall:" + point, "HOLIDAY_TEST_DEADMAN_SECS=120"}, "lockdown")
			if code != -1 {
				t.Fatalf("lockdown with the crash hook: exit %d, want killed", code)
			}
			restoreExact(t, c, h, before)
			if out := h.MustSSH(t, "root", "systemctl list-units --all --no-legend --plain 'holiday-firewall*'; ls /var/lib/holiday/firewall 2>&1; true"); !strings.Contains(out, "No such file") || strings.Contains(out, "holiday-firewall") {
				t.Errorf("left on the host after restore:\n%s", out)
			}
		})
	}
}

func runCmd(ctx context.Context, argv ...string) error {
	return exec.CommandContext(ctx, argv[0], argv[1:]...).Run()
}

// A host with no rules at all (a light host): restore leaves no table
// behind, not even the empty one iptables-nft creates.
func TestFirewallHostWithoutRules(t *testing.T) {
	lab := labtest.Require(t)
	if lab.Host("light2") == nil {
		testenv.Skip(t, "needs light2 (LIGHT_HOSTS=N lab/up.sh, N≥2)")
	}
	hs := lockHosts(t, lab, "light2")
	h := hs[0]
	fwSafetyNet(t, hs)
	state := func() string {
		return fwSaves(t, h) + "\n## nft list tables\n" + h.MustInNetns(t, "nft", "list", "tables")
	}
	before := state()
	c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
	t.Cleanup(func() {
		if hasHolidayChain(t, h) {
			c.run(t, nil, "restore")
		}
	})
	if _, code := c.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("lockdown exit %d", code)
	}
	if !hasHolidayChain(t, h) {
		t.Fatal("no HOLIDAY-IN after lockdown")
	}
	if _, code := c.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore exit %d", code)
	}
	if got := state(); got != before {
		t.Errorf("after restore:\n%s", diffLines(before, got))
	}
}
