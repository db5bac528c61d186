package actions_test

// Lab tests of the lockdown firewall's remaining promises (issue 9):
// UDP as well as TCP from outside, in both families; a host's own ban
// holding on a port the plan allows; IPv6 rolled back when IPv4 fails;
// Revert's fallback (policies ACCEPT, then the saved rules) keeping the
// management path open; co-owners of the firewall refused, saying what was
// found and what to do.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/internal/labtest"
)

// reachUDP sends one datagram from netns ns ("": the control node) to
// addr:port and says "open" (echoed back), "closed" (ICMP port
// unreachable: ECONNREFUSED on the connected socket) or "dropped" (no
// answer within 3 s), as reach does for TCP. The machine has no socat or
// ncat; a goroutine on a thread of its own enters the netns instead.
func reachUDP(t *testing.T, ns, addr string, port int) string {
	t.Helper()
	res := make(chan string, 1)
	go func() {
		// Never unlocked: the thread, in another netns, ends with the
		// goroutine instead of going back to the scheduler's pool.
		runtime.LockOSThread()
		if ns != "" {
			f, err := os.Open("/run/netns/" + ns)
			if err != nil {
				res <- "error: " + err.Error()
				return
			}
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
			if err != nil {
				res <- "error: setns " + ns + ": " + err.Error()
				return
			}
		}
		c, err := net.Dial("udp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			res <- "error: " + err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		msg := "holiday-probe " + ns
		if _, err := c.Write([]byte(msg)); err != nil {
			res <- "error: " + err.Error()
			return
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		var ne net.Error
		switch {
		case err == nil && string(buf[:n]) == msg:
			res <- "open"
		case err == nil:
			res <- fmt.Sprintf("error: unexpected answer %q", buf[:n])
		case errors.Is(err, syscall.ECONNREFUSED):
			res <- "closed"
		case errors.As(err, &ne) && ne.Timeout():
			res <- "dropped"
		default:
			res <- "error: " + err.Error()
		}
	}()
	return <-res
}

// udpEchoPort has an echo listener in the tests below; udpEchoPort+1 has
// none (an ICMP port unreachable, unless something drops it).
const udpEchoPort = 5353

// udpEcho starts, on the host, a dual-stack UDP echo on udpEchoPort
// (python3 is on the lab's hosts) and stops it when the test ends.
func udpEcho(t *testing.T, h *labtest.Host) {
	t.Helper()
	const script = `import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", %d))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
`
	pid := strings.TrimSpace(h.MustSSH(t, "root", fmt.Sprintf("cat >/run/holiday-test-udpecho.py <<'EOF'\n"+script+"EOF\nsetsid python3 /run/holiday-test-udpecho.py </dev/null >/dev/null 2>&1 & echo $!", udpEchoPort)))
	t.Cleanup(func() {
		h.SSH(context.Background(), "root", "kill "+pid+"; rm -f /run/holiday-test-udpecho.py")
	})
	waitFor(t, 10*time.Second, "the UDP echo on "+h.Name, func() bool {
		return strings.Contains(h.MustInNetns(t, "ss", "-Huln", fmt.Sprintf("sport = :%d", udpEchoPort)), strconv.Itoa(udpEchoPort))
	})
}

// The address the lab's hosts ban in their own rules (lab/hosts/*.rules.v4:
// 10.213.0.66 on sys1, sys2 and sysv1; rules.v6: fd00:213::66 on sys1).
const banned4, banned6 = "10.213.0.66", "fd00:213::66"

// bannedNetns puts a network namespace on the lab's bridge at the banned
// addresses, for the rest of the test. Its name has the lab's prefix, so
// lab-down removes it if a test never got to.
func bannedNetns(t *testing.T, lab *labtest.Lab) string {
	t.Helper()
	ns, veth := lab.NetnsPrefix+"banned", "hlv-banned"
	sh := func(args ...string) error {
		out, err := execOut(args...)
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := sh("ip", "netns", "add", ns); err != nil {
		t.Fatalf("the banned-address namespace (left by an earlier test? ip netns del %s): %v", ns, err)
	}
	t.Cleanup(func() {
		if err := sh("ip", "netns", "del", ns); err != nil {
			t.Error(err)
		}
		sh("ip", "link", "del", veth) // gone with the netns, normally
	})
	for _, c := range [][]string{
		{"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"ip", "link", "set", veth, "master", "hlabbr0", "up"},
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "addr", "add", banned4 + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "addr", "add", banned6 + "/64", "dev", "eth0", "nodad"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
	} {
		if err := sh(c...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

func execOut(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// From outside, in both families, TCP and UDP, from the control node, a
// stranger, the plan's allowed source and an address the host bans:
// during lockdown the management path answers as before, the allowed
// ports answer the allowed sources as before (the host's own rules still
// decide, so its ban holds on them), everything else is dropped (no reset,
// no port unreachable), the host still reaches the lab's S3 server; after restore every probe answers as before
// lockdown and the saves are the saved ones. On sys1 (nft, bans both
// families) and sysv1 (legacy, bans IPv4).
func TestFirewallProbesUDPAndBans(t *testing.T) {
	lab := labtest.Require(t)
	str := stranger(t, lab)
	ban := bannedNetns(t, lab)
	for _, tc := range []struct {
		target, allowed string
		bans            []string // the host's own rules drop the banned source in these families
	}{
		{"sys1", "sysv1", []string{banned4, banned6}},
		{"sysv1", "light2", []string{banned4}},
	} {
		t.Run(tc.target, func(t *testing.T) {
			al := lab.MustHost(t, tc.allowed)
			h, before := fwHost(t, lab, tc.target)
			udpEcho(t, h)
			src := fmt.Sprintf(`[%s, %q, %s, %q]`, al.Addr, al.Addr6, banned4, banned6)
			c := fwCLI(t, h, fwPlanAllow(t, lab, controlOnly, fmt.Sprintf("[{tcp: 80, from: %s}, {udp: %d, from: %s}]", src, udpEchoPort, src), h.Name))
			var ps []probe
			for _, from := range []string{"", str.Netns(), al.Netns(), ban} {
				for _, addr := range []string{h.Addr, h.Addr6} {
					ps = append(ps, probe{from, addr, 22, "tcp"}, probe{from, addr, 80, "tcp"},
						probe{from, addr, udpEchoPort, "udp"}, probe{from, addr, udpEchoPort + 1, "udp"})
				}
			}
			allowed := func(p probe) bool {
				return (p.from == al.Netns() || p.from == ban) && (p.proto == "tcp" && p.port == 80 || p.proto == "udp" && p.port == udpEchoPort)
			}
			pre := reachAll(t, ps)
			// What makes the probes mean something: the echo answers, a
			// closed UDP port says so, the stranger reaches the echo, and
			// the host's own ban drops the banned address on the ports
			// lockdown will allow it.
			fromBanned := func(p probe) bool {
				if p.from != ban {
					return false
				}
				for _, fam := range tc.bans {
					if strings.Contains(fam, ":") == strings.Contains(p.addr, ":") {
						return true
					}
				}
				return false
			}
			for _, p := range ps {
				var want string
				switch {
				case fromBanned(p):
					want = "dropped"
				case p.proto == "udp" && p.port == udpEchoPort:
					want = "open"
				case p.proto == "udp" && (p.from == "" || p.from == str.Netns()):
					want = "closed"
				case p.proto == "tcp" && p.port == 80 && p.from == al.Netns():
					want = "open"
				default:
					continue
				}
				if pre[p] != want {
					t.Fatalf("before lockdown %s: %s, want %s (the lab's seeded state; the test would prove nothing)", p, pre[p], want)
				}
			}
			if _, code := c.run(t, nil, "lockdown"); code != 0 {
				t.Fatalf("lockdown exit %d", code)
			}
			during := reachAll(t, ps)
			// The host's own outgoing connections: to the lab's S3 server.
			if got := reach(t, h.Netns(), lab.ControlAddr, 7070); got != "open" {
				t.Errorf("during lockdown %s → S3 %s:7070 (outgoing): %s, want open", h.Name, lab.ControlAddr, got)
			}
			for _, p := range ps {
				want := "dropped"
				if p.from == "" || allowed(p) {
					want = pre[p]
				}
				if during[p] != want {
					t.Errorf("during lockdown %s: %s, want %s (before: %s)", p, during[p], want, pre[p])
				}
				if fromBanned(p) && allowed(p) && during[p] != "dropped" {
					t.Errorf("during lockdown %s: the host's own ban no longer holds on an allowed port (%s)", p, during[p])
				}
			}
			restoreExact(t, c, h, before)
			after := reachAll(t, ps)
			var table strings.Builder
			for _, p := range ps {
				if after[p] != pre[p] {
					t.Errorf("after restore %s: %s, before lockdown %s", p, after[p], pre[p])
				}
				fmt.Fprintf(&table, "\n%-44s before %-7s during %-7s after %s", p, pre[p], during[p], after[p])
			}
			t.Logf("probes of %s:%s", h.Name, table.String())
		})
	}
}

// noDeadman fails when a dead-man of holiday's is still armed on the host:
// a timer on systemd, a marked process on SysV.
func noDeadman(t *testing.T, h *labtest.Host) {
	t.Helper()
	out := h.MustSSH(t, "root", "systemctl list-units --all --no-legend --plain 'holiday-firewall-deadman*' 2>/dev/null; grep -l HOLIDAY_FIREWALL_DEADMAN=armed /proc/[0-9]*/environ 2>/dev/null; ls /var/lib/holiday/firewall 2>&1; true")
	if strings.TrimSpace(out) != "ls: cannot access '/var/lib/holiday/firewall': No such file or directory" {
		t.Errorf("a dead-man or holiday's firewall files left on %s:\n%s", h.Name, out)
	}
}

// IPv6 is applied, then IPv4 fails for real (test hook fail-v4: a line
// iptables-restore rejects): the host rolls IPv6 back at once, the run
// says so, the saves are the saved ones, and no dead-man is left armed.
// On both backends.
func TestFirewallV4FailsV6RolledBack(t *testing.T) {
	lab := labtest.Require(t)
	for _, name := range []string{"sys1", "sysv1"} {
		t.Run(name, func(t *testing.T) {
			h, before := fwHost(t, lab, name)
			c := fwCLI(t, h, fwPlan(t, lab, controlOnly, name))
			out, code := c.run(t, []string{"HOLIDAY_TEST_FIREWALL=fail-v4"}, "lockdown")
			if code == 0 {
				t.Fatal("lockdown with IPv4 failing: exit 0")
			}
			if !strings.Contains(out, "IPv4 not applied, IPv6 rolled back") || !strings.Contains(out, "holiday-test-fail-v4") {
				t.Errorf("the run does not say IPv4 failed (with iptables-restore's reason) and IPv6 was rolled back:\n%s", out)
			}
			if got := fwSaves(t, h); got != before {
				t.Errorf("after the failed lockdown the saves differ:\n%s", diffLines(before, got))
			}
			noDeadman(t, h)
			restoreExact(t, c, h, before)
		})
	}
}

// Revert's fallback (DESIGN §6.5). Someone jumped to HOLIDAY-IN from
// FORWARD during the break, so the chain cannot be deleted:
//   - with the saved rules on the host corrupted as well, the console
//     undo fails, and leaves every built-in policy ACCEPT with the host's
//     own rules: the control node still logs in over new connections in
//     both families;
//   - restore from the control node (the journal's saved rules) sets the
//     policies ACCEPT and restores the saved rules: the saves are exactly
//     the saved ones.
//
// On sys2 (nft, INPUT policy DROP in both families) and sysv1 (legacy).
func TestFirewallRevertFallback(t *testing.T) {
	lab := labtest.Require(t)
	for _, tc := range []struct{ name, backend string }{{"sys2", "nft"}, {"sysv1", "legacy"}} {
		t.Run(tc.name, func(t *testing.T) {
			h, before := fwHost(t, lab, tc.name)
			t.Cleanup(func() {
				// Whatever happened, no jump of the test's own left.
				h.InNetns(context.Background(), "sh", "-c", fmt.Sprintf("for t in iptables ip6tables; do $t-%s -w -D FORWARD -j HOLIDAY-IN 2>/dev/null; done; true", tc.backend))
			})
			c := fwCLI(t, h, fwPlan(t, lab, controlOnly, tc.name))
			if _, code := c.run(t, nil, "lockdown"); code != 0 {
				t.Fatalf("lockdown exit %d", code)
			}
			h.MustInNetns(t, "sh", "-ec", fmt.Sprintf("for t in iptables ip6tables; do $t-%s -w -I FORWARD -j HOLIDAY-IN; done", tc.backend))
			h.MustSSH(t, "root", "cd /var/lib/holiday/firewall && for f in saved.v4 saved.v6; do sed -i '1i holiday-test: not a rule' $f; done")
			r, err := h.SSH(context.Background(), "root", "/var/lib/holiday/firewall/holiday agent --firewall-revert /var/lib/holiday/firewall")
			if err == nil {
				t.Fatalf("the console undo with the saved rules corrupted and the chain held by FORWARD: exit 0\n%s", r.Stdout)
			}
			if !strings.Contains(err.Error(), "deleting holiday's chain") || !strings.Contains(err.Error(), "restoring the saved rules") {
				t.Errorf("the console undo does not say deleting and restoring failed:\n%v", err)
			}
			t.Logf("the console undo, as it failed: %v", err)
			for _, s := range []string{"iptables-" + tc.backend + "-save", "ip6tables-" + tc.backend + "-save"} {
				save := h.MustInNetns(t, s, "-t", "filter")
				for _, c := range []string{"INPUT", "FORWARD", "OUTPUT"} {
					if !strings.Contains(save, ":"+c+" ACCEPT ") {
						t.Errorf("%s after the failed fallback: %s's policy is not ACCEPT:\n%s", s, c, save)
					}
				}
				if strings.Contains(save, "-A INPUT -j HOLIDAY-IN") {
					t.Errorf("%s after the failed fallback: INPUT still jumps to HOLIDAY-IN", s)
				}
			}
			for _, addr := range []string{h.Addr, h.Addr6} {
				if got := reach(t, "", addr, 22); got != "open" {
					t.Errorf("after the failed fallback: control node → %s:22: %s, want open", addr, got)
				}
				if _, err := h.SSHAt(context.Background(), "ops", addr, "true"); err != nil {
					t.Errorf("after the failed fallback: a new SSH login at %s: %v", addr, err)
				}
			}
			out, code := c.run(t, nil, "restore")
			if code != 0 {
				t.Fatalf("restore after the failed fallback: exit %d\n%s", code, out)
			}
			if got := fwSaves(t, h); got != before {
				t.Errorf("after restore's fallback the saves differ:\n%s", diffLines(before, got))
			}
			noDeadman(t, h)
		})
	}
}

// Another owner of the host's firewall: `holiday plan` and lockdown refuse
// the host, saying what was found and what to do, and nothing changes. The
// test leaves each co-owner's trace on sys1 (nft) in turn, and removes it.
func TestFirewallCoOwnersRefused(t *testing.T) {
	lab := labtest.Require(t)
	h, before := fwHost(t, lab, "sys1")
	nftTables := func() string { return h.MustInNetns(t, "nft", "list", "tables") }
	tablesBefore := nftTables()
	for _, tc := range []struct {
		name, add, del string
		want           []string // in plan's and lockdown's refusal
	}{
		{"docker", "iptables-nft -w -N DOCKER", "iptables-nft -w -X DOCKER",
			[]string{"managed by docker (found: chain DOCKER in nft/ip4/filter)", "DOCKER-USER", "take firewall: off this host in the plan"}},
		{"ufw", "ip6tables-nft -w -N ufw6-user-input", "ip6tables-nft -w -X ufw6-user-input",
			[]string{"managed by ufw (found: chain ufw6-user-input in nft/ip6/filter)", "ufw default deny incoming", "ufw disable"}},
		{"firewalld", "nft add table inet firewalld", "nft delete table inet firewalld",
			[]string{"managed by firewalld (found: table inet firewalld)", "firewall-cmd", "stop and disable firewalld"}},
		{"native-nft", "nft add table inet lab-native", "nft delete table inet lab-native",
			[]string{"managed by nftables (found: table inet lab-native)", "nft delete table"}},
		{"both-backends", "iptables-legacy -w -N LAB-STALE", "iptables-legacy -w -X LAB-STALE",
			[]string{"rules in both iptables-legacy and nft (legacy/ip4/filter", "remove the stale backend's rules"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.MustInNetns(t, "sh", "-ec", tc.add)
			t.Cleanup(func() {
				if _, err := h.InNetns(context.Background(), "sh", "-ec", tc.del); err != nil {
					t.Errorf("removing the %s trace: %v", tc.name, err)
				}
			})
			with := fwSaves(t, h)
			c := newCLI(t, fwPlan(t, lab, controlOnly, h.Name))
			pout, pcode := c.runPlan(t)
			out, code := c.run(t, nil, "lockdown")
			for _, r := range []struct {
				cmd, out string
				code     int
			}{{"holiday plan", pout, pcode}, {"holiday lockdown", out, code}} {
				if r.code != 2 || !strings.Contains(r.out, "refused") {
					t.Errorf("%s with %s's trace: exit %d, want 2 with the host refused", r.cmd, tc.name, r.code)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.out, w) {
						t.Errorf("%s does not say %q", r.cmd, w)
					}
				}
			}
			if j := journals(c.stateDir); len(j) != 0 {
				t.Errorf("a refused host was journaled: %v", j)
			}
			if got := fwSaves(t, h); got != with {
				t.Errorf("the refused lockdown changed the rules:\n%s", diffLines(with, got))
			}
		})
	}
	if got := fwSaves(t, h); got != before {
		t.Errorf("after removing the traces the saves differ:\n%s", diffLines(before, got))
	}
	if got := nftTables(); got != tablesBefore {
		t.Errorf("after removing the traces the nft tables differ:\n%s", diffLines(tablesBefore, got))
	}
}
