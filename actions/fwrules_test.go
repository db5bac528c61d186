package actions

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/plans"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

func pfx(t *testing.T, ss ...string) []plans.Prefix {
	t.Helper()
	var out []plans.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, plans.Prefix{Prefix: p})
	}
	return out
}

func ports(rs ...[2]uint16) plans.Ports {
	var out plans.Ports
	for _, r := range rs {
		out = append(out, plans.PortRange{First: r[0], Last: r[1]})
	}
	return out
}

var mgmt = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00:10::/64")}

func firewallCases(t *testing.T) map[string]FirewallInput {
	control := netip.MustParseAddr("10.0.0.5")
	return map[string]FirewallInput{
		// Nothing allowed: management, replies and ND only.
		"closed": {Firewall: &plans.Firewall{}, Management: mgmt, Control: control},
		// The design's example: ssh from the bastion range, web from anywhere, logged drops.
		"web": {Firewall: &plans.Firewall{LogDrops: true, Allow: []*plans.Allow{
			{TCP: ports([2]uint16{22, 22}), From: pfx(t, "10.0.0.0/24")},
			{TCP: ports([2]uint16{80, 80}, [2]uint16{443, 443})},
		}}, Management: mgmt, Control: control},
		// IPv4-only sources: drop-all keeps IPv6 closed, allow-same opens the ports to any IPv6 source.
		"v4only-drop-all": {Firewall: &plans.Firewall{IPv6: "drop-all", Allow: []*plans.Allow{
			{TCP: ports([2]uint16{5432, 5432}), UDP: ports([2]uint16{8000, 8100}), From: pfx(t, "10.1.0.0/16", "192.0.2.7/32")},
		}}, Management: mgmt, Control: control},
		"v4only-allow-same": {Firewall: &plans.Firewall{IPv6: "allow-same", Allow: []*plans.Allow{
			{TCP: ports([2]uint16{5432, 5432}), From: pfx(t, "10.1.0.0/16")},
			{UDP: ports([2]uint16{53, 53}), From: pfx(t, "10.1.0.0/16", "2001:db8::/32")},
		}}, Management: mgmt, Control: control},
		// The control node outside the plan's ranges (admission refuses that; the rules still name it),
		// seen over IPv6.
		"control-v6": {Firewall: &plans.Firewall{}, Management: mgmt, Control: netip.MustParseAddr("fd00:10::1")},
	}
}

func TestFirewallRulesGolden(t *testing.T) {
	for name, in := range firewallCases(t) {
		t.Run(name, func(t *testing.T) {
			r, err := BuildFirewallRules(in)
			if err != nil {
				t.Fatal(err)
			}
			got := "# v4\n" + r.V4 + "# v6\n" + r.V6
			path := filepath.Join("testdata", "firewall", name+".golden")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rules differ from %s:\n got:\n%s\nwant:\n%s", path, got, want)
			}
			if err := LintFirewallRules(r, in.Control, in.Management, 22); err != nil {
				t.Errorf("lint refuses the generated rules: %v", err)
			}
		})
	}
}

// Every rule of the chain only RETURNs or drops (or logs): lockdown never
// accepts anything the host's own rules would not.
func TestFirewallRulesOnlyTakeAway(t *testing.T) {
	for name, in := range firewallCases(t) {
		r, _ := BuildFirewallRules(in)
		for _, fam := range []string{r.V4, r.V6} {
			for _, l := range strings.Split(strings.TrimSpace(fam), "\n") {
				f := splitRule(l)
				if f[0] != "-A" && f[0] != "-I" {
					continue
				}
				tgt := f[len(f)-1]
				if i := indexWord(f, "-j"); i >= 0 {
					tgt = f[i+1]
				}
				if f[0] == "-I" && (f[1] != "INPUT" || tgt != FirewallChain) {
					t.Errorf("%s: inserts %q", name, l)
				}
				if f[0] == "-A" && (f[1] != FirewallChain || (tgt != "RETURN" && tgt != "DROP" && tgt != "LOG")) {
					t.Errorf("%s: rule %q is not a RETURN, DROP or LOG in %s", name, l, FirewallChain)
				}
			}
		}
	}
}

func indexWord(f []string, w string) int {
	for i, x := range f {
		if x == w {
			return i
		}
	}
	return -1
}

func TestFirewallLintRefusesCutManagement(t *testing.T) {
	in := firewallCases(t)["web"]
	r, _ := BuildFirewallRules(in)
	rc, _ := BuildFirewallRules(firewallCases(t)["closed"])
	cut := func(s, line string) string { return strings.Replace(s, line+"\n", "", 1) }
	for name, tc := range map[string]struct {
		r       FirewallRules
		control string
		want    string
	}{
		"control line removed":  {FirewallRules{V4: cut(cut(rc.V4, "-A HOLIDAY-IN -s 10.0.0.5/32 -j RETURN"), "-A HOLIDAY-IN -s 10.0.0.0/24 -j RETURN"), V6: rc.V6}, "10.0.0.5", "would drop the control node"},
		"v6 management removed": {FirewallRules{V4: r.V4, V6: cut(r.V6, "-A HOLIDAY-IN -s fd00:10::/64 -j RETURN")}, "10.0.0.5", "management range fd00:10::/64"},
		"no jump":               {FirewallRules{V4: cut(r.V4, "-I INPUT 1 -j HOLIDAY-IN"), V6: r.V6}, "10.0.0.5", "does not jump"},
		"control unknown":       {r, "", "unknown"},
		// The plan's own allow of SSH from management keeps the path even without the management lines.
		"drop before management": {FirewallRules{V4: strings.Replace(r.V4, "-A HOLIDAY-IN -i lo -j RETURN\n", "-A HOLIDAY-IN -i lo -j RETURN\n-A HOLIDAY-IN -p tcp -m tcp --dport 22 -j DROP\n", 1), V6: r.V6}, "10.0.0.5", "would drop the control node"},
	} {
		t.Run(name, func(t *testing.T) {
			var c netip.Addr
			if tc.control != "" {
				c = netip.MustParseAddr(tc.control)
			}
			err := LintFirewallRules(tc.r, c, in.Management, 22)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("lint: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeSave(t *testing.T) {
	a := "# Generated by iptables-save v1.8.9 on Sun\n*filter\n:INPUT DROP [12:3400]\n:FORWARD ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n# Completed\n*nat\n:PREROUTING ACCEPT [1:2]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n"
	b := "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [9:9]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
	if NormalizeSave(a) != NormalizeSave(b) {
		t.Fatalf("counters, comments or an empty table make a difference:\n%s\n--\n%s", NormalizeSave(a), NormalizeSave(b))
	}
	if NormalizeSave(b) == NormalizeSave(strings.Replace(b, "DROP", "ACCEPT", 1)) {
		t.Fatal("a policy change makes no difference")
	}
}

// isolate's rule set, one golden file per case (the same inputs as the
// lockdown's: the plan's allows play no part); lint accepts it, and
// refuses it once the control node's way out is gone.
func TestIsolateRulesGolden(t *testing.T) {
	for name, in := range firewallCases(t) {
		t.Run(name, func(t *testing.T) {
			r, err := BuildIsolateRules(in)
			if err != nil {
				t.Fatal(err)
			}
			got := "# v4\n" + r.V4 + "# v6\n" + r.V6
			path := filepath.Join("testdata", "firewall", "isolate-"+name+".golden")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rules differ from %s:\n got:\n%s\nwant:\n%s", path, got, want)
			}
			if err := LintIsolateRules(r, in.Control, in.Management, 22); err != nil {
				t.Errorf("lint refuses the generated rules: %v", err)
			}
			cut := r
			for _, fam := range []*string{&cut.V4, &cut.V6} {
				var keep []string
				for _, l := range strings.Split(*fam, "\n") {
					if !strings.Contains(l, "--sport 22") {
						keep = append(keep, l)
					}
				}
				*fam = strings.Join(keep, "\n")
			}
			if err := LintIsolateRules(cut, in.Control, in.Management, 22); err == nil {
				t.Errorf("lint accepts isolate rules without sshd's way out to the control node")
			}
		})
	}
}

// Isolation on top of a lockdown firewall and back: one golden file per
// case with both transactions, and what makes them exact — the way up
// keeps INPUT's jump (the lockdown's) and refills the chain with exactly
// isolate's rules; the way back refills it with exactly the lockdown's
// and takes HOLIDAY-OUT away.
func TestIsolateLayerGolden(t *testing.T) {
	chainLines := func(s, chain string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "-A "+chain+" ") {
				out = append(out, l)
			}
		}
		return out
	}
	for name, in := range firewallCases(t) {
		t.Run(name, func(t *testing.T) {
			lock, err := BuildFirewallRules(in)
			if err != nil {
				t.Fatal(err)
			}
			iso, err := BuildIsolateRules(in)
			if err != nil {
				t.Fatal(err)
			}
			up, down := IsolateOnLockdown(iso), LockdownAgain(lock)
			got := "# isolate on lockdown, v4\n" + up.V4 + "# isolate on lockdown, v6\n" + up.V6 +
				"# lockdown again, v4\n" + down.V4 + "# lockdown again, v6\n" + down.V6
			path := filepath.Join("testdata", "firewall", "layer-"+name+".golden")
			if *updateGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("transactions differ from %s:\n got:\n%s\nwant:\n%s", path, got, want)
			}
			for fam, pair := range map[string][3]string{"v4": {up.V4, down.V4, ""}, "v6": {up.V6, down.V6, ""}} {
				u, d := pair[0], pair[1]
				isoFam, lockFam := iso.V4, lock.V4
				if fam == "v6" {
					isoFam, lockFam = iso.V6, lock.V6
				}
				if strings.Contains(u, "-I INPUT") || strings.Contains(d, "-I INPUT") || strings.Contains(d, "-D INPUT") {
					t.Errorf("%s: a transaction touches INPUT's jump (the lockdown's stays first)", fam)
				}
				if !strings.Contains(u, ":"+FirewallChain+" ") || !strings.Contains(d, ":"+FirewallChain+" ") {
					t.Errorf("%s: a transaction does not declare (flush) %s", fam, FirewallChain)
				}
				if strings.Join(chainLines(u, FirewallChain), "\n") != strings.Join(chainLines(isoFam, FirewallChain), "\n") ||
					strings.Join(chainLines(u, FirewallOutChain), "\n") != strings.Join(chainLines(isoFam, FirewallOutChain), "\n") ||
					!strings.Contains(u, "-I OUTPUT 1 -j "+FirewallOutChain+"\n") {
					t.Errorf("%s: the way up is not exactly isolate's rules", fam)
				}
				if strings.Join(chainLines(d, FirewallChain), "\n") != strings.Join(chainLines(lockFam, FirewallChain), "\n") ||
					len(chainLines(d, FirewallOutChain)) != 0 || !strings.Contains(d, "-X "+FirewallOutChain+"\n") {
					t.Errorf("%s: the way back is not exactly the lockdown's rules without %s", fam, FirewallOutChain)
				}
			}
		})
	}
}
