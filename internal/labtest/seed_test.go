package labtest

// These tests check that lab/up.sh produced exactly the seeded state documented in
// lab/README.md, looking at each host from the OUTSIDE (its network namespace, with this
// machine's tools; the network from the control address) and from the INSIDE (ssh as ops
// with sudo -n, as a real client would). Later tests rely on this state being there.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/testenv"
)

// seededHosts are the hosts every lab has; LIGHT_HOSTS adds more.
var seededHosts = []string{"sys1", "sys2", "sysv1"}

// normalizeRules turns iptables-save output into a comparable form: tables with their chain
// declarations (counters dropped, sorted) and rules in order; comments and empty tables go.
func normalizeRules(s string) string {
	var out, chains, rules []string
	table := ""
	flush := func() {
		if table != "" && (len(rules) > 0 || hasNonAcceptPolicy(chains)) {
			sort.Strings(chains)
			out = append(out, table)
			out = append(out, chains...)
			out = append(out, rules...)
		}
		table, chains, rules = "", nil, nil
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "*"):
			table = line
		case strings.HasPrefix(line, ":"):
			if i := strings.LastIndex(line, " ["); i > 0 {
				line = line[:i]
			}
			chains = append(chains, line)
		case strings.HasPrefix(line, "-A "):
			rules = append(rules, line)
		case line == "COMMIT":
			flush()
		}
	}
	return strings.Join(out, "\n")
}

func hasNonAcceptPolicy(chains []string) bool {
	for _, c := range chains {
		if f := strings.Fields(c); len(f) == 2 && f[1] != "ACCEPT" && f[1] != "-" {
			return true
		}
	}
	return false
}

// look returns host name locked shared for the test: the seed tests only look.
func look(t *testing.T, l *Lab, name string) *Host {
	t.Helper()
	h := l.MustHost(t, name)
	h.RLock(t)
	return h
}

func seedFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "lab", "hosts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNormalizeRules(t *testing.T) {
	in := "# Generated\n*filter\n:INPUT DROP [3:4]\n:FORWARD ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
	want := "*filter\n:FORWARD ACCEPT\n:INPUT DROP\n-A INPUT -i lo -j ACCEPT"
	if got := normalizeRules(in); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if normalizeRules("") != "" || normalizeRules("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n") != "" {
		t.Error("an empty, all-ACCEPT table should normalize to nothing")
	}
}

// firewallCase is one ruleset dump and what it must show.
type firewallCase struct {
	host, save string // save: the *-save binary
	want       string // seed file under lab/hosts, or "" for "no rules at all"
}

var firewallCases = []firewallCase{
	{"sys1", "iptables-nft-save", "sys1.rules.v4"},
	{"sys1", "ip6tables-nft-save", "sys1.rules.v6"},
	{"sys1", "iptables-legacy-save", ""},
	{"sys1", "ip6tables-legacy-save", ""},
	{"sys2", "iptables-nft-save", "sys2.rules.v4"},
	{"sys2", "ip6tables-nft-save", "sys2.rules.v6"},
	{"sys2", "iptables-legacy-save", ""},
	{"sys2", "ip6tables-legacy-save", ""},
	{"sysv1", "iptables-legacy-save", "sysv1.rules.v4"},
	{"sysv1", "ip6tables-legacy-save", "sysv1.rules.v6"},
	{"sysv1", "iptables-nft-save", ""},
	{"sysv1", "ip6tables-nft-save", ""},
}

func checkRules(t *testing.T, c firewallCase, got string) {
	t.Helper()
	want := ""
	if c.want != "" {
		want = normalizeRules(seedFile(t, c.want))
		if want == "" {
			t.Fatalf("seed file %s normalizes to nothing", c.want)
		}
	}
	if g := normalizeRules(got); g != want {
		t.Errorf("%s on %s:\n got:\n%s\nwant (%s):\n%s", c.save, c.host, g, c.want, want)
	}
}

func TestSeedFirewallFromOutside(t *testing.T) {
	l := Require(t)
	for _, c := range firewallCases {
		t.Run(c.host+"/"+c.save, func(t *testing.T) {
			h := look(t, l, c.host)
			checkRules(t, c, h.MustInNetns(t, c.save))
		})
	}
}

func TestSeedFirewallFromInside(t *testing.T) {
	l := Require(t)
	for _, c := range firewallCases {
		t.Run(c.host+"/"+c.save, func(t *testing.T) {
			h := look(t, l, c.host)
			checkRules(t, c, h.MustSSH(t, "ops", "sudo -n "+c.save))
		})
	}
	// the plain names follow each host's alternative: nft on the systemd hosts, legacy on sysv1
	for host, want := range map[string]string{"sys1": "nf_tables", "sys2": "nf_tables", "sysv1": "legacy"} {
		t.Run(host+"/alternative", func(t *testing.T) {
			h := look(t, l, host)
			for _, bin := range []string{"iptables", "ip6tables"} {
				if got := h.MustSSH(t, "ops", "sudo -n "+bin+" -V"); !strings.Contains(got, "("+want+")") {
					t.Errorf("%s -V on %s = %q, want the %s backend", bin, host, strings.TrimSpace(got), want)
				}
			}
		})
	}
}

// unitState is what systemd says about a unit.
type unitState struct{ active, enabled string }

var commonUnits = map[string]unitState{
	"ssh.service":          {"active", "enabled"},
	"cron.service":         {"active", "enabled"},
	"rsync.service":        {"inactive", "enabled"}, // ConditionPathExists=/etc/rsyncd.conf fails
	"lab-firewall.service": {"active", "enabled"},
	"lab-worker.service":   {"active", "disabled"}, // started by up.sh, never enabled
	"lab-masked.service":   {"inactive", "masked"},
	"lab-static.service":   {"inactive", "static"},
	"lab-echo.socket":      {"active", "enabled"},
	"lab-tick.timer":       {"active", "enabled"},
	"lab-tick.service":     {"inactive", "static"},
}

var hostUnits = map[string]map[string]unitState{
	"sys1": {
		"nginx.service":        {"active", "enabled"},
		"redis-server.service": {"active", "enabled"},
		"postgresql.service":   {"inactive", "disabled"},
		"mariadb.service":      {"inactive", "disabled"},
		"mariadb.socket":       {"inactive", "disabled"},
	},
	"sys2": {
		"nginx.service":              {"inactive", "disabled"},
		"redis-server.service":       {"inactive", "disabled"},
		"postgresql.service":         {"active", "enabled"},
		"postgresql@15-main.service": {"active", "enabled-runtime"}, // Debian's generator
		"mariadb.service":            {"active", "enabled"},
		"mariadb.socket":             {"active", "enabled"},
	},
}

// systemctlShow parses `systemctl show -p … UNIT…` (blocks separated by blank lines) by Id.
func systemctlShow(out string) map[string]map[string]string {
	res := map[string]map[string]string{}
	for _, block := range strings.Split(strings.TrimSpace(out), "\n\n") {
		props := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				props[k] = v
			}
		}
		res[props["Id"]] = props
	}
	return res
}

// seededUnits is the seeded unit state of a systemd host right after lab-up.
func seededUnits(host string) map[string]unitState {
	want := map[string]unitState{}
	for u, s := range commonUnits {
		want[u] = s
	}
	for u, s := range hostUnits[host] {
		want[u] = s
	}
	return want
}

// checkUnits compares what systemd on h says with want, and the details of the seeded units.
func checkUnits(t *testing.T, h *Host, want map[string]unitState) {
	t.Helper()
	if got := strings.TrimSpace(h.MustSSH(t, "ops", "systemctl is-system-running || true")); got != "running" {
		failed := h.MustSSH(t, "ops", "systemctl --failed --no-legend || true")
		t.Errorf("is-system-running = %q, want running; failed units:\n%s", got, failed)
	}
	units := make([]string, 0, len(want))
	for u := range want {
		units = append(units, u)
	}
	sort.Strings(units)
	got := systemctlShow(h.MustSSH(t, "ops", "systemctl show -p Id,ActiveState,UnitFileState,ConditionResult,Triggers,Accept,Listen "+strings.Join(units, " ")))
	for _, u := range units {
		p, ok := got[u]
		if !ok {
			t.Errorf("%s: systemctl show said nothing about it", u)
			continue
		}
		if g := (unitState{p["ActiveState"], p["UnitFileState"]}); g != want[u] {
			t.Errorf("%s: %s+%s, want %s+%s", u, g.active, g.enabled, want[u].active, want[u].enabled)
		}
	}
	if c := got["rsync.service"]["ConditionResult"]; c != "no" {
		t.Errorf("rsync.service ConditionResult=%q: it should be inactive because its condition failed", c)
	}
	if tr := got["lab-tick.timer"]["Triggers"]; tr != "lab-tick.service" {
		t.Errorf("lab-tick.timer Triggers=%q", tr)
	}
	if s := got["lab-echo.socket"]; s["Accept"] != "yes" || !strings.Contains(s["Listen"], ":7777 (Stream)") {
		t.Errorf("lab-echo.socket Accept=%q Listen=%q", s["Accept"], s["Listen"])
	}
	// is-enabled prints the word later code records; it must agree with show
	if g := strings.TrimSpace(h.MustSSH(t, "ops", "systemctl is-enabled lab-masked.service lab-static.service lab-worker.service || true")); g != "masked\nstatic\ndisabled" {
		t.Errorf("is-enabled: %q", g)
	}
}

func TestSeedSystemdUnits(t *testing.T) {
	l := Require(t)
	for host := range hostUnits {
		t.Run(host, func(t *testing.T) {
			h := look(t, l, host)
			if h.Kind != Systemd {
				t.Fatalf("%s is %s, want systemd", host, h.Kind)
			}
			checkUnits(t, h, seededUnits(host))
		})
	}
}

// sysvState is one init script on a SysV host: running per `service --status-all`, and its
// rc2.d link (S: enabled, K: disabled).
type sysvState struct {
	running bool
	link    byte
}

var sysv1Services = map[string]sysvState{
	"ssh":          {true, 'S'},
	"nginx":        {true, 'S'},
	"redis-server": {true, 'S'},
	"cron":         {true, 'S'},
	"dbus":         {true, 'S'},
	"lab-firewall": {true, 'S'},
	"rsync":        {false, 'S'}, // enabled, but RSYNC_ENABLE=false
	"lab-worker":   {true, 'K'},  // running but disabled
	"postgresql":   {false, 'K'},
	"mariadb":      {false, 'K'},
}

func TestSeedSysVServices(t *testing.T) {
	l := Require(t)
	h := look(t, l, "sysv1")
	if h.Kind != SysV {
		t.Fatalf("sysv1 is %s, want sysv", h.Kind)
	}
	if got := h.MustSSH(t, "ops", "cat /proc/1/comm; test -d /run/systemd/system && echo systemd-running || echo no-systemd"); got != "lab-sysv-init\nno-systemd\n" {
		t.Errorf("PID 1 and systemd: %q", got)
	}
	status := map[string]bool{}
	for _, line := range strings.Split(h.MustSSH(t, "ops", "sudo -n service --status-all 2>&1"), "\n") {
		f := strings.Fields(line) // " [ + ]  nginx"
		if len(f) == 4 && f[0] == "[" && f[2] == "]" {
			status[f[3]] = f[1] == "+"
		}
	}
	links := map[string]byte{}
	for _, name := range strings.Fields(h.MustSSH(t, "ops", "ls /etc/rc2.d")) {
		if len(name) > 3 && (name[0] == 'S' || name[0] == 'K') {
			links[name[3:]] = name[0]
		}
	}
	for svc, want := range sysv1Services {
		run, ok := status[svc]
		if !ok {
			t.Errorf("%s: not in service --status-all", svc)
		} else if run != want.running {
			t.Errorf("%s: running=%v, want %v", svc, run, want.running)
		}
		if links[svc] != want.link {
			t.Errorf("%s: rc2.d link %q, want %q", svc, links[svc], want.link)
		}
	}
}

func TestSeedUsers(t *testing.T) {
	l := Require(t)
	for _, name := range seededHosts {
		t.Run(name, func(t *testing.T) {
			h := look(t, l, name)
			pw := h.MustSSH(t, "ops", "getent passwd ops guest")
			for _, u := range []string{"ops", "guest"} {
				if !regexpLine(pw, u+":x:", ":/home/"+u+":/bin/bash") {
					t.Errorf("getent passwd: no proper %s line in %q", u, pw)
				}
			}
			if got := strings.TrimSpace(h.MustSSH(t, "root", "id -u")); got != "0" {
				t.Errorf("root login: id -u = %q", got)
			}
			if got := strings.TrimSpace(h.MustSSH(t, "ops", "sudo -n id -u")); got != "0" {
				t.Errorf("ops: sudo -n id -u = %q", got)
			}
			_, err := h.SSH(context.Background(), "guest", "sudo -n true")
			var ee *ExitError
			if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "password is required") {
				t.Errorf("guest: sudo -n true should fail for want of a password, got %v", err)
			}
			// env_reset in effect: the ssh session's variables do not survive sudo
			plain := h.MustSSH(t, "ops", "env")
			sudoed := h.MustSSH(t, "ops", "sudo -n env")
			if !strings.Contains(plain, "SSH_CONNECTION=") {
				t.Fatalf("plain env has no SSH_CONNECTION, the check below would prove nothing:\n%s", plain)
			}
			if strings.Contains(sudoed, "SSH_CONNECTION=") {
				t.Errorf("sudo -n env kept SSH_CONNECTION: env_reset is not in effect")
			}
		})
	}
}

// regexpLine reports whether some line of s starts with prefix and ends with suffix.
func regexpLine(s, prefix, suffix string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) && strings.HasSuffix(line, suffix) {
			return true
		}
	}
	return false
}

func TestSeedDatabases(t *testing.T) {
	l := Require(t)
	h := look(t, l, "sys2")
	const rows = "1|sunscreen|12\n2|towel|5\n3|flip-flops|7"
	pg := h.MustSSH(t, "ops", "cd / && sudo -n -u postgres psql -d shop -Atc 'SELECT id, name, qty FROM items ORDER BY id'")
	if strings.TrimSpace(pg) != rows {
		t.Errorf("PostgreSQL shop.items:\n%s\nwant\n%s", pg, rows)
	}
	my := h.MustSSH(t, "ops", "sudo -n mariadb -N -B -e 'SELECT id, name, qty FROM shop.items ORDER BY id'")
	if got := strings.ReplaceAll(strings.TrimSpace(my), "\t", "|"); got != rows {
		t.Errorf("MariaDB shop.items:\n%s\nwant\n%s", got, rows)
	}
}

// listeningPorts is the set of TCP ports something listens on in the host's netns (ss -ltn).
func listeningPorts(t *testing.T, h *Host) map[int]bool {
	t.Helper()
	ports := map[int]bool{}
	for _, line := range strings.Split(h.MustInNetns(t, "ss", "-Hltn"), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		i := strings.LastIndex(f[3], ":")
		if p, err := strconv.Atoi(f[3][i+1:]); err == nil {
			ports[p] = true
		}
	}
	return ports
}

func TestSeedListeners(t *testing.T) {
	l := Require(t)
	for _, c := range []struct {
		host    string
		open    []int
		notOpen []int
	}{
		{"sys1", []int{22, 80, 6379, 7777}, []int{3306, 5432}},
		{"sys2", []int{22, 3306, 5432, 7777}, []int{80, 6379}},
		{"sysv1", []int{22, 80, 6379}, []int{3306, 5432, 7777}},
	} {
		t.Run(c.host, func(t *testing.T) {
			ports := listeningPorts(t, look(t, l, c.host))
			for _, p := range c.open {
				if !ports[p] {
					t.Errorf("nothing listens on %d (listening: %v)", p, ports)
				}
			}
			for _, p := range c.notOpen {
				if ports[p] {
					t.Errorf("something listens on %d", p)
				}
			}
		})
	}
}

// dial connects from the control side with a short timeout.
func dial(addr string, port int) (net.Conn, error) {
	return net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 2*time.Second)
}

func TestSeedReachability(t *testing.T) {
	l := Require(t)
	for _, name := range seededHosts {
		h := look(t, l, name)
		for _, addr := range []string{h.Addr, h.Addr6} {
			t.Run(name+"/"+addr, func(t *testing.T) {
				c, err := dial(addr, 22)
				if err != nil {
					t.Fatalf("sshd: %v", err)
				}
				c.SetDeadline(time.Now().Add(3 * time.Second))
				banner, _ := bufio.NewReader(c).ReadString('\n')
				c.Close()
				if !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
					t.Errorf("banner %q", banner)
				}
				// strict host key checking against the lab's known_hosts, on this address
				r, err := h.SSHAt(context.Background(), "ops", addr, "hostname")
				if err != nil || strings.TrimSpace(r.Stdout) != "hlab-"+name {
					t.Errorf("ssh ops@%s hostname: %q, %v", addr, r.Stdout, err)
				}
			})
		}
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, c := range []struct {
		host string
		open bool // nginx answers; else the connection must fail (no nginx, DROP policy)
	}{{"sys1", true}, {"sysv1", true}, {"sys2", false}} {
		h := look(t, l, c.host)
		for _, addr := range []string{h.Addr, h.Addr6} {
			t.Run(c.host+"/http/"+addr, func(t *testing.T) {
				resp, err := client.Get("http://" + net.JoinHostPort(addr, "80") + "/")
				if !c.open {
					if err == nil {
						resp.Body.Close()
						t.Fatalf("http to %s answered %s; want it blocked", addr, resp.Status)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "hlab-"+c.host {
					t.Errorf("http %s: %s %q", addr, resp.Status, body)
				}
			})
		}
	}
	// socket activation answers on sys1; sys2's INPUT DROP policy hides the same socket
	t.Run("sys1/echo", func(t *testing.T) {
		c, err := dial(l.MustHost(t, "sys1").Addr, 7777)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprint(c, "holiday\n")
		if got, err := bufio.NewReader(c).ReadString('\n'); got != "holiday\n" {
			t.Errorf("echo: %q, %v", got, err)
		}
	})
	t.Run("sys2/echo-blocked", func(t *testing.T) {
		if c, err := dial(l.MustHost(t, "sys2").Addr, 7777); err == nil {
			c.Close()
			t.Error("port 7777 on sys2 accepted a connection through INPUT policy DROP")
		}
	})
}

// TestHostRootIsolated writes into /usr/bin on every host and checks that the file shows up
// nowhere else: not on this machine, not in the cached tree, not on another host.
func TestHostRootIsolated(t *testing.T) {
	l := Require(t)
	name := fmt.Sprintf("hlab-isolation-%d", time.Now().UnixNano())
	path := "/usr/bin/" + name
	var hosts []*Host
	for _, n := range seededHosts {
		h := l.MustHost(t, n)
		h.Lock(t)
		hosts = append(hosts, h)
	}
	for _, h := range hosts {
		t.Run(h.Name, func(t *testing.T) {
			h.MustSSH(t, "root", "printf '#!/bin/sh\\necho %s\\n' "+h.Name+" > "+path+" && chmod 755 "+path)
			t.Cleanup(func() { h.SSH(context.Background(), "root", "rm -f "+path) })
			if got := strings.TrimSpace(h.MustSSH(t, "ops", name)); got != h.Name {
				t.Fatalf("the file did not land on the host: %q", got)
			}
			for _, p := range []string{path, "/bin/" + name, filepath.Join(l.RootFS, path)} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s on this machine: %v (want: does not exist)", p, err)
				}
			}
			for _, o := range hosts {
				if o == h {
					continue
				}
				if r, err := o.SSH(context.Background(), "root", "test -e "+path+" && cat "+path); err == nil {
					t.Errorf("%s's file is visible on %s: %q", h.Name, o.Name, r.Stdout)
				}
			}
		})
	}
	if !slices.ContainsFunc(hosts, func(h *Host) bool { return h.Kind == SysV }) {
		t.Error("no SysV host was checked")
	}
}

// TestSystemdHostReboot reboots sys1 from inside and checks that the seeded state is what
// its configuration makes it (lab-worker, never enabled, stays down), and that the firewall
// came back from /etc/iptables. It starts lab-worker again, restoring the seeded state.
func TestSystemdHostReboot(t *testing.T) {
	l := Require(t)
	h := l.MustHost(t, "sys1")
	h.Lock(t)
	rulesBefore := h.MustInNetns(t, "iptables-nft-save")
	pid1 := func() string {
		r, err := h.SSH(context.Background(), "root", "cut -d' ' -f22 /proc/1/stat")
		if err != nil {
			return ""
		}
		return strings.TrimSpace(r.Stdout)
	}
	before := pid1()
	if before == "" {
		t.Fatal("cannot read PID 1's start time")
	}
	h.SSH(context.Background(), "root", "systemctl reboot") // the connection may drop: no verdict here
	deadline := time.Now().Add(60 * time.Second)
	for {
		if now := pid1(); now != "" && now != before {
			r, _ := h.SSH(context.Background(), "root", "systemctl is-system-running")
			if st := strings.TrimSpace(r.Stdout); st == "running" || st == "degraded" {
				h.SettleBoot(t)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sys1 did not come back running within 60 s; see %s/hosts/sys1/console.log", l.Dir)
		}
		time.Sleep(300 * time.Millisecond)
	}
	want := seededUnits("sys1")
	want["lab-worker.service"] = unitState{"inactive", "disabled"}
	checkUnits(t, h, want)
	if got := h.MustInNetns(t, "iptables-nft-save"); normalizeRules(got) != normalizeRules(rulesBefore) {
		t.Errorf("rules after reboot:\n%s\nbefore:\n%s", normalizeRules(got), normalizeRules(rulesBefore))
	}
	h.MustSSH(t, "root", "systemctl start lab-worker.service")
	checkUnits(t, h, seededUnits("sys1"))
}

// TestLightHosts checks the LIGHT_HOSTS fleet hosts, when the lab has any.
func TestLightHosts(t *testing.T) {
	l := Require(t)
	var light []*Host
	for _, h := range l.Hosts {
		if !slices.Contains(seededHosts, h.Name) {
			light = append(light, h)
		}
	}
	if len(light) == 0 {
		testenv.Skip(t, "no light hosts in this lab (LIGHT_HOSTS=0)")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, h := range light {
		t.Run(h.Name, func(t *testing.T) {
			h.RLock(t)
			if h.Kind != SysV {
				t.Errorf("kind %s, want sysv", h.Kind)
			}
			out := h.MustSSH(t, "ops", "hostname; sudo -n service --status-all 2>/dev/null | grep -E ' (nginx|redis-server|ssh)$'")
			if want := "hlab-" + h.Name + "\n [ + ]  nginx\n [ + ]  redis-server\n [ + ]  ssh\n"; out != want {
				t.Errorf("got %q, want %q", out, want)
			}
			resp, err := client.Get("http://" + net.JoinHostPort(h.Addr6, "80") + "/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("http: %s", resp.Status)
			}
		})
	}
}

// TestS3Up checks the lab's versitygw: it answers on loopback and on the bridge (where the
// hosts reach it) and checks signatures, refusing an anonymous request.
func TestS3Up(t *testing.T) {
	l := Require(t)
	if l.S3AccessKey != "LABACCESSKEY" || l.S3SecretKey != "LABSECRETKEY0123456789" {
		t.Errorf("S3 credentials in the env file: %q / %q", l.S3AccessKey, l.S3SecretKey)
	}
	client := &http.Client{Timeout: 3 * time.Second}
	for _, url := range []string{l.S3Endpoint + "/", strings.Replace(l.S3Endpoint, l.ControlAddr, "127.0.0.1", 1) + "/"} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
			t.Errorf("anonymous GET %s: %s %q", url, resp.Status, body)
		}
	}
	h := look(t, l, "sys1")
	if got := h.MustSSH(t, "ops", "curl -s -o /dev/null -w '%{http_code}' "+l.S3Endpoint+"/"); got != "403" {
		t.Errorf("from sys1: HTTP %q, want 403", got)
	}
}
