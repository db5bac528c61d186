package preflight

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/internal/facts"
	"github.com/holiday-ops/holiday/internal/units"
)

func codes(r *Report) map[string]string {
	m := map[string]string{}
	for _, f := range r.Findings {
		m[f.Code] = f.Severity
	}
	return m
}

func flow(remote string, port uint16) facts.Flow {
	return facts.Flow{Proto: "tcp", Local: netip.MustParseAddr("10.0.1.10"), LocalPort: port, Remote: netip.MustParseAddr(remote), RemotePort: 40000}
}

func TestJudge(t *testing.T) {
	mgmt := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	fw := &Firewall{Allow: []Allow{
		{Proto: "tcp", Ports: [][2]uint16{{80, 80}, {443, 443}}},                                                     // anyone
		{Proto: "tcp", Ports: [][2]uint16{{5432, 5432}}, From: []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")}}, // the app
	}}
	f := &facts.Facts{
		Init: "systemd",
		Inbound: []facts.Flow{
			flow("10.0.0.5", 22),     // management: kept
			flow("203.0.113.9", 443), // allowed to anyone: kept
			flow("10.0.2.7", 5432),   // allowed from the app range: kept
			flow("10.0.3.7", 5432),   // not from the app range: cut
			flow("10.0.9.1", 9100),   // a monitoring scrape nobody allowed: cut
			flow("127.0.0.1", 6379),  // loopback: kept
		},
		Services: []facts.Service{
			{Name: "php-fpm", Exists: true, Unit: &units.Unit{Active: "active", Enablement: "enabled"}},
			{Name: "crond", Exists: false, Unit: &units.Unit{Enablement: "not-found"}},
		},
		Firewall: facts.Firewall{Backends: []string{"legacy", "nft"}, CoOwners: []string{"docker"},
			Evidence: map[string][]string{"docker": {"chain DOCKER in nft/ip4/filter"}}},
		Audit: facts.Audit{
			SSHD:           facts.SSHD{PasswordAuthentication: "yes", PermitRootLogin: "yes"},
			EmptyPasswords: []string{"guest"},
			Updates:        facts.Updates{State: "known", Security: 2, Packages: []string{"libssl3", "openssh-server"}},
			WorldWritable:  []string{"/var/www/uploads"},
		},
	}

	r := &Report{Facts: f, ControlAddr: "10.0.0.5"}
	judge(r, Host{Firewall: fw}, mgmt)
	if r.Status != StatusRefused {
		t.Errorf("status %s, want refused", r.Status)
	}
	if len(r.WouldCut) != 2 || r.WouldCut[0].Remote.String() != "10.0.3.7" || r.WouldCut[1].LocalPort != 9100 {
		t.Errorf("would cut %+v", r.WouldCut)
	}
	want := map[string]string{
		"service-missing": SevError, "firewall-both-backends": SevError, "firewall-co-owner": SevError,
		"flows-cut": SevWarning, "ssh-password-login": SevWarning, "ssh-root-login": SevWarning,
		"empty-password": SevWarning, "security-updates": SevWarning, "world-writable-webroot": SevWarning,
	}
	got := codes(r)
	for c, sev := range want {
		if got[c] != sev {
			t.Errorf("finding %s: %q, want %s (all: %v)", c, got[c], sev, got)
		}
	}
	// A co-owner's refusal says what was found and what to do.
	for _, f := range r.Findings {
		if f.Code == "firewall-co-owner" && (!strings.Contains(f.Message, "found: chain DOCKER in nft/ip4/filter") || !strings.Contains(f.Message, "DOCKER-USER") || !strings.Contains(f.Message, "take firewall: off this host")) {
			t.Errorf("co-owner refusal without what was found and what to do: %s", f.Message)
		}
	}
	if _, ok := got["control-outside-management"]; ok || r.ControlInManagement == nil || !*r.ControlInManagement {
		t.Errorf("control 10.0.0.5 judged outside management")
	}
	if r.Findings[0].Severity != SevError {
		t.Errorf("errors not first: %+v", r.Findings)
	}

	// A host whose firewall the plan leaves alone: nothing is cut and
	// co-owners are no reason to refuse; the control node outside
	// management still is.
	f.Services = nil
	r = &Report{Facts: f, ControlAddr: "192.0.2.1"}
	judge(r, Host{}, mgmt)
	got = codes(r)
	if len(r.WouldCut) != 0 || got["firewall-co-owner"] != "" || got["control-outside-management"] != SevError || r.Status != StatusRefused {
		t.Errorf("no-firewall host: cut %v, findings %v, status %s", r.WouldCut, got, r.Status)
	}

	// Only audit warnings: warn, not refused.
	f.Firewall = facts.Firewall{}
	r = &Report{Facts: f, ControlAddr: "10.0.0.5"}
	judge(r, Host{}, mgmt)
	if r.Status != StatusWarn {
		t.Errorf("status %s, want warn", r.Status)
	}
}
