package actions

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/holiday-ops/holiday/plans"
)

// The lockdown firewall's rule set (DESIGN §6.3): pure functions of the
// plan's host `firewall:` and the host's facts, rendered as
// `iptables-restore --noflush` / `ip6tables-restore --noflush` input, in
// the form iptables-save prints it (so what is applied reads back the
// same).
//
// One chain per family, HOLIDAY-IN, jumped to first from INPUT. It only
// RETURNs (to the host's own rules, so its bans still hold) or drops:
// lockdown can take reachability away, never add it.

// FirewallChain is holiday's chain in the filter table of each family.
const FirewallChain = "HOLIDAY-IN"

// FirewallInput is what the rules are a function of.
type FirewallInput struct {
	Firewall   *plans.Firewall
	Management []netip.Prefix
	// Control is the control node's address as the host sees it
	// (agentctl.Info.ControlAddr); the zero Addr when unknown.
	Control netip.Addr
	// SSHPort is the host's SSH port (isolate's way out to management);
	// 0 means 22.
	SSHPort uint16
}

// FirewallRules are one host's rule set, both families.
type FirewallRules struct {
	V4, V6 string // iptables-restore --noflush input
}

// ndTypes are the ICMPv6 types IPv6 needs to work at all: errors (1–4,
// packet too big among them) and neighbour discovery (133–136).
var ndTypes = []int{1, 2, 3, 4, 133, 134, 135, 136}

// logLimit rate-limits logged drops (log_drops).
const logLimit = "-m limit --limit 10/min --limit-burst 20 -j LOG --log-prefix \"holiday-drop: \""

// BuildFirewallRules renders the rule set. It fails only on input that
// cannot make a safe rule set (no firewall, no management path).
func BuildFirewallRules(in FirewallInput) (FirewallRules, error) {
	if in.Firewall == nil {
		return FirewallRules{}, errors.New("no firewall in the plan for this host")
	}
	if len(in.Management) == 0 && !in.Control.IsValid() {
		return FirewallRules{}, errors.New("no management path: the plan lists no management ranges and the control node's address is unknown")
	}
	return FirewallRules{V4: renderFamily(in, false), V6: renderFamily(in, true)}, nil
}

func renderFamily(in FirewallInput, v6 bool) string {
	var b strings.Builder
	add := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	icmp := "icmp"
	if v6 {
		icmp = "ipv6-icmp"
	}
	add("*filter")
	add(":%s - [0:0]", FirewallChain)
	add("-A %s -i lo -j RETURN", FirewallChain)
	// Replies to connections the host opened (backups to S3, updates).
	add("-A %s -m conntrack --ctstate ESTABLISHED --ctdir REPLY -j RETURN", FirewallChain)
	// ICMP errors about connections it has (path MTU among them).
	add("-A %s -p %s -m conntrack --ctstate RELATED -j RETURN", FirewallChain, icmp)
	if v6 {
		for _, t := range ndTypes {
			add("-A %s -p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", FirewallChain, t)
		}
	}
	// The management path: the control node first, then the plan's ranges.
	for _, p := range managementPrefixes(in, v6) {
		add("-A %s -s %s -j RETURN", FirewallChain, p)
	}
	for _, a := range in.Firewall.Allow {
		if a == nil {
			continue
		}
		srcs, ok := allowSources(a, v6, in.Firewall.IPv6)
		if !ok {
			continue
		}
		for _, proto := range []struct {
			name  string
			ports plans.Ports
		}{{"tcp", a.TCP}, {"udp", a.UDP}} {
			for _, r := range proto.ports {
				port := strconv.Itoa(int(r.First))
				if r.Last != r.First {
					port += ":" + strconv.Itoa(int(r.Last))
				}
				if len(srcs) == 0 {
					add("-A %s -p %s -m %s --dport %s -j RETURN", FirewallChain, proto.name, proto.name, port)
				}
				for _, s := range srcs {
					add("-A %s -s %s -p %s -m %s --dport %s -j RETURN", FirewallChain, s, proto.name, proto.name, port)
				}
			}
		}
	}
	if in.Firewall.LogDrops {
		add("-A %s %s", FirewallChain, logLimit)
	}
	add("-A %s -j DROP", FirewallChain)
	add("-I INPUT 1 -j %s", FirewallChain)
	add("COMMIT")
	return b.String()
}

// allowSources returns an allow's sources in one family: ok false when
// the allow opens nothing in it; no sources (ok) means any source.
//
// An allow without from: is open to any source in both families. One
// that lists sources of a family keeps exactly those in it. One that
// lists only sources of the other family opens nothing here, except
// that on IPv6, `ipv6: allow-same` opens the same ports to any source.
func allowSources(a *plans.Allow, v6 bool, policy plans.IPv6Policy) ([]netip.Prefix, bool) {
	if len(a.From) == 0 {
		return nil, true
	}
	var out []netip.Prefix
	for _, f := range a.From {
		if f.Addr().Unmap().Is6() == v6 {
			out = append(out, f.Masked())
		}
	}
	if len(out) > 0 {
		return out, true
	}
	if v6 && policy == "allow-same" {
		return nil, true
	}
	return nil, false
}

// LintFirewallRules refuses a rule set that would drop the management
// path: a new TCP connection from the control node (and from every
// management range) to the SSH port must RETURN from FirewallChain in
// its family. It walks the rules as iptables would for the forms
// BuildFirewallRules writes; a rule it cannot read is taken to match
// nothing, so an unknown RETURN never counts as keeping the path.
func LintFirewallRules(r FirewallRules, control netip.Addr, management []netip.Prefix, sshPort uint16) error {
	if !control.IsValid() {
		return errors.New("the control node's address as the host sees it is unknown: cannot prove the management path")
	}
	if sshPort == 0 {
		sshPort = 22
	}
	check := func(src netip.Addr, what string) error {
		src = src.Unmap()
		rules := r.V4
		if src.Is6() {
			rules = r.V6
		}
		verdict, err := walk(rules, packet{src: src, proto: "tcp", dport: sshPort})
		if err != nil {
			return err
		}
		if verdict != "RETURN" {
			return fmt.Errorf("the rule set would drop %s (%s) on its way to SSH port %d; refusing it", what, src, sshPort)
		}
		return nil
	}
	if err := check(control, "the control node"); err != nil {
		return err
	}
	for _, p := range management {
		if err := check(p.Masked().Addr(), "management range "+p.String()); err != nil {
			return err
		}
	}
	return nil
}

type packet struct {
	src   netip.Addr
	proto string
	dport uint16
}

// walk returns what FirewallChain does with a new, non-loopback packet:
// RETURN or DROP (also when the INPUT jump is missing: "NOJUMP").
func walk(rules string, p packet) (string, error) {
	jump := false
	verdict := ""
	sc := bufio.NewScanner(strings.NewReader(rules))
	for sc.Scan() {
		f := splitRule(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "-I" && len(f) >= 5 && f[1] == "INPUT" && f[2] == "1" && f[3] == "-j" && f[4] == FirewallChain && len(f) == 5 {
			jump = true
			continue
		}
		if verdict != "" || f[0] != "-A" || len(f) < 2 || f[1] != FirewallChain {
			continue
		}
		if target, ok := matches(f[2:], p); ok && (target == "RETURN" || target == "DROP") {
			verdict = target
		}
	}
	if !jump {
		return "", fmt.Errorf("the rule set does not jump to %s first from INPUT", FirewallChain)
	}
	if verdict == "" {
		return "", fmt.Errorf("%s ends without a verdict", FirewallChain)
	}
	return verdict, nil
}

// matches reports whether the rule's matches all hold for p and returns
// its target. Unknown options make it not match.
func matches(f []string, p packet) (string, bool) {
	target := ""
	ok := true
	for i := 0; i < len(f); i++ {
		arg := func() string {
			if i+1 < len(f) {
				i++
				return f[i]
			}
			ok = false
			return ""
		}
		switch f[i] {
		case "-j":
			target = arg()
			// Targets' own options (LOG's) follow; nothing more to match.
			return target, ok
		case "-s":
			pf, err := netip.ParsePrefix(arg())
			if err != nil || !pf.Contains(p.src) {
				ok = false
			}
		case "-p":
			if arg() != p.proto {
				ok = false
			}
		case "-m":
			switch arg() {
			case "tcp", "udp", "limit":
			default:
				ok = false // conntrack (a new packet is no reply), icmp6, …
			}
		case "--dport":
			lo, hi, _ := strings.Cut(arg(), ":")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if hi != "" {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil || int(p.dport) < a || int(p.dport) > b {
				ok = false
			}
		case "--limit", "--limit-burst":
			arg()
		case "-i":
			arg()
			ok = false // only lo is ever named, and p is not on lo
		default:
			ok = false
		}
	}
	return target, ok && target != ""
}

// splitRule splits a rule line into words, keeping "quoted strings".
func splitRule(line string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQ, have = !inQ, true
		case (r == ' ' || r == '\t') && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

var saveCounters = regexp.MustCompile(`\[[0-9]+:[0-9]+\]`)

// NormalizeSave is iptables-save output as DESIGN §6.9 compares it: no
// `#` lines, no [packets:bytes] counters, and no table that holds only
// built-in chains with policy ACCEPT and no rules (a table that loading
// a module, or iptables-nft, makes appear is no change of filtering).
func NormalizeSave(s string) string {
	var out []string
	var table []string
	empty := true
	flush := func() {
		if len(table) > 0 && !empty {
			out = append(out, table...)
		}
		table, empty = nil, true
	}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, " \t\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = saveCounters.ReplaceAllString(line, "")
		line = strings.TrimRight(line, " ")
		switch {
		case strings.HasPrefix(line, "*"):
			flush()
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) < 2 || f[1] != "ACCEPT" {
				empty = false
			}
		case line == "COMMIT":
		default:
			empty = false
		}
		table = append(table, line)
		if line == "COMMIT" {
			flush()
		}
	}
	flush()
	return strings.Join(out, "\n")
}

// FirewallOutChain is isolate's chain in the filter table's OUTPUT, each
// family (DESIGN §6.8).
const FirewallOutChain = "HOLIDAY-OUT"

// BuildIsolateRules renders containment (`holiday isolate`): only the
// management path in (new connections from the control node and the
// management ranges) and out (replies to it), loopback and ICMPv6
// neighbour discovery; everything else dropped both ways. The plan's
// firewall allows play no part.
func BuildIsolateRules(in FirewallInput) (FirewallRules, error) {
	if len(in.Management) == 0 && !in.Control.IsValid() {
		return FirewallRules{}, errors.New("no management path: the plan lists no management ranges and the control node's address is unknown")
	}
	return FirewallRules{V4: renderIsolate(in, false), V6: renderIsolate(in, true)}, nil
}

func renderIsolate(in FirewallInput, v6 bool) string {
	var b strings.Builder
	add := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	mgmt := managementPrefixes(in, v6)
	add("*filter")
	add(":%s - [0:0]", FirewallChain)
	add(":%s - [0:0]", FirewallOutChain)
	add("-A %s -i lo -j RETURN", FirewallChain)
	if v6 {
		for _, t := range ndTypes[4:] { // 133–136: neighbours, to reach management at all
			add("-A %s -p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", FirewallChain, t)
		}
	}
	for _, p := range mgmt {
		add("-A %s -s %s -j RETURN", FirewallChain, p)
	}
	add("-A %s -j DROP", FirewallChain)
	add("-A %s -o lo -j RETURN", FirewallOutChain)
	if v6 {
		for _, t := range ndTypes[4:] {
			add("-A %s -p ipv6-icmp -m icmp6 --icmpv6-type %d -j RETURN", FirewallOutChain, t)
		}
	}
	port := in.SSHPort
	if port == 0 {
		port = 22
	}
	for _, p := range mgmt {
		// sshd's side of the management path by port, not by conntrack:
		// a session open before the rules loaded (holiday's own) may be
		// picked up mid-stream with the host's side as its original
		// direction, and would be cut.
		add("-A %s -d %s -p tcp -m tcp --sport %d -j RETURN", FirewallOutChain, p, port)
		add("-A %s -d %s -m conntrack --ctstate ESTABLISHED --ctdir REPLY -j RETURN", FirewallOutChain, p)
	}
	add("-A %s -j DROP", FirewallOutChain)
	add("-I INPUT 1 -j %s", FirewallChain)
	add("-I OUTPUT 1 -j %s", FirewallOutChain)
	add("COMMIT")
	return b.String()
}

// LintIsolateRules refuses containment that would cut the management
// path: in (LintFirewallRules' walk of a new SSH connection) and out (a
// packet from the SSH port to the control node and every management range
// must RETURN before OUTPUT's chain drops).
func LintIsolateRules(r FirewallRules, control netip.Addr, management []netip.Prefix, sshPort uint16) error {
	if err := LintFirewallRules(r, control, management, sshPort); err != nil {
		return err
	}
	if sshPort == 0 {
		sshPort = 22
	}
	check := func(dst netip.Addr, what string) error {
		dst = dst.Unmap()
		rules := r.V4
		if dst.Is6() {
			rules = r.V6
		}
		jump := false
		for _, l := range strings.Split(rules, "\n") {
			if l == "-I OUTPUT 1 -j "+FirewallOutChain {
				jump = true
			}
		}
		if !jump {
			return fmt.Errorf("the rule set does not jump to %s first from OUTPUT", FirewallOutChain)
		}
		for _, l := range strings.Split(rules, "\n") {
			f := splitRule(l)
			if len(f) < 2 || f[0] != "-A" || f[1] != FirewallOutChain {
				continue
			}
			rest := strings.Join(f[2:], " ")
			if rest == "-j DROP" {
				return fmt.Errorf("the rule set would drop replies to %s (%s); refusing it", what, dst)
			}
			d, tail, ok := strings.Cut(rest, " ")
			if !ok || d != "-d" {
				continue
			}
			pfx, tail, _ := strings.Cut(tail, " ")
			pf, err := netip.ParsePrefix(pfx)
			if err == nil && pf.Contains(dst) && tail == fmt.Sprintf("-p tcp -m tcp --sport %d -j RETURN", sshPort) {
				return nil
			}
		}
		return fmt.Errorf("%s ends without a verdict", FirewallOutChain)
	}
	if err := check(control, "the control node"); err != nil {
		return err
	}
	for _, p := range management {
		if err := check(p.Masked().Addr(), "management range "+p.String()); err != nil {
			return err
		}
	}
	return nil
}

// managementPrefixes is the management path of one family, without
// repeats: the control node's own address first, then the plan's ranges.
func managementPrefixes(in FirewallInput, v6 bool) []netip.Prefix {
	var out []netip.Prefix
	add := func(p netip.Prefix) {
		if p.Addr().Is6() == v6 && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if c := in.Control.Unmap(); c.IsValid() {
		add(netip.PrefixFrom(c, c.BitLen()))
	}
	for _, p := range in.Management {
		add(p.Masked())
	}
	return out
}

// Isolation on top of a lockdown firewall (DESIGN §6.8, §8): the host
// goes from the lockdown rules to isolate's, and back, each way in one
// `-restore --noflush` transaction per family, so it is never open in
// between. Declaring a chain that exists flushes it in such a
// transaction (both backends); the lockdown's INPUT jump stays where it
// is, first.

// IsolateOnLockdown is the transaction that puts isolate's rules (what
// BuildIsolateRules renders, linted) on a host whose lockdown chain is in
// place: HOLIDAY-IN refilled with isolate's rules, HOLIDAY-OUT created
// and jumped to first from OUTPUT. INPUT's jump is the lockdown's.
func IsolateOnLockdown(isolate FirewallRules) FirewallRules {
	strip := func(s string) string {
		var out []string
		for _, l := range strings.SplitAfter(s, "\n") {
			if strings.TrimSuffix(l, "\n") == "-I INPUT 1 -j "+FirewallChain {
				continue
			}
			out = append(out, l)
		}
		return strings.Join(out, "")
	}
	return FirewallRules{V4: strip(isolate.V4), V6: strip(isolate.V6)}
}

// LockdownAgain is the transaction that takes isolation off and puts the
// lockdown rules (as BuildFirewallRules rendered them, and the lockdown
// applied them) back: HOLIDAY-IN refilled with the lockdown's rules,
// OUTPUT's jump and HOLIDAY-OUT deleted. iptables-save then prints what
// it printed under the lockdown alone.
func LockdownAgain(lockdown FirewallRules) FirewallRules {
	one := func(s string) string {
		var b strings.Builder
		b.WriteString("*filter\n")
		fmt.Fprintf(&b, ":%s - [0:0]\n:%s - [0:0]\n", FirewallChain, FirewallOutChain)
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "-A "+FirewallChain+" ") {
				b.WriteString(l + "\n")
			}
		}
		fmt.Fprintf(&b, "-D OUTPUT -j %s\n-X %s\nCOMMIT\n", FirewallOutChain, FirewallOutChain)
		return b.String()
	}
	return FirewallRules{V4: one(lockdown.V4), V6: one(lockdown.V6)}
}
