package plans

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"
)

// criticalUnits are services a host cannot be reached or run without;
// lint refuses to stop them. The value says why, for the message.
var criticalUnits = map[string]string{
	"ssh":                     "holiday (and you) reach the host through it",
	"sshd":                    "holiday (and you) reach the host through it",
	"ssh.socket":              "holiday (and you) reach the host through it",
	"sshd.socket":             "holiday (and you) reach the host through it",
	"networking":              "the host would drop off the network",
	"network":                 "the host would drop off the network",
	"NetworkManager":          "the host would drop off the network",
	"network-manager":         "the host would drop off the network",
	"dropbear":                "holiday (and you) reach the host through it",
	"systemd-networkd":        "the host would drop off the network",
	"systemd-resolved":        "the host would stop resolving names",
	"dbus":                    "systemd and logins (holiday's too) need it",
	"dbus-broker":             "systemd and logins (holiday's too) need it",
	"systemd-logind":          "systemd and logins (holiday's too) need it",
	"systemd-journald":        "the host would stop logging, including holiday's own steps",
	"dbus.socket":             "systemd and logins (holiday's too) need it",
	"systemd-networkd.socket": "the host would drop off the network",
}

// CriticalUnit reports whether a host cannot be reached or run without
// the unit (sshd, networking, dbus, …), and why: lint refuses to stop it,
// and so does the lockdown runner, whatever built its steps.
func CriticalUnit(name string) (why string, critical bool) {
	why, critical = criticalUnits[strings.TrimSuffix(name, ".service")]
	return why, critical
}

// Lint looks for plans that would decode fine but do harm: stopping the
// services holiday reaches a host through, leaving IPv6 unsaid, firewalls
// without a management path. It works on a plan Load returned, even one
// with errors, and returns findings sorted by position; those with
// SevError refuse the plan.
func Lint(p *Plan) Errors {
	if p == nil {
		return nil
	}
	l := &linter{p: p}
	l.layer(p.Defaults, "defaults")
	for _, g := range sortedGroupNames(p.Groups) {
		l.layer(p.Groups[g], "groups."+g)
	}
	for i, e := range p.HostEntries {
		if e != nil {
			l.layer(&e.HostFields, entryPath(p, i))
		}
	}
	for _, h := range p.resolved {
		l.host(h)
	}
	l.unusedGroups()
	if r := p.Repository; r != nil {
		l.objectLock(r, "repository")
		l.objectLock(r.CopyTo, "repository.copy_to")
	}
	if p.Schedule != nil && p.Window == nil {
		l.add(SevWarning, "schedule", "the daemon runs only inside the holiday window, and there is no window:; add window: {start: ..., end: ...}")
	}
	out := l.findings.dedup()
	out.Sort()
	return out
}

type linter struct {
	p        *Plan
	findings Errors
}

func (l *linter) add(sev Severity, path, format string, args ...any) {
	l.findings = append(l.findings, &Error{Pos: l.p.at(path), Path: displayPath(path), Msg: fmt.Sprintf(format, args...), Severity: sev})
}

// layer lints what one layer of host fields writes, so a finding points
// where the value is written rather than at every host inheriting it.
func (l *linter) layer(f *HostFields, from string) {
	if f == nil {
		return
	}
	l.stops(f, from)
	l.hooks(f, from)
}

// hookSecret matches the usual ways a password ends up on a command line.
// Hook commands are journaled (on the control node and on the host) and
// shown by holiday plan, so a secret there leaks.
var hookSecret = regexp.MustCompile(`(?i)(\b(mysql|mariadb|mysqldump|mariadb-dump)\b.*\s-p\S|--password[= ]\S|\bredis-cli\b.*\s-a\s+\S|\bcurl\b.*\s(-u|--user)\s+\S+:\S|authorization:|\bbearer\s+\S|\b(PGPASSWORD|MYSQL_PWD|[A-Z_]*(PASSWORD|TOKEN|SECRET))=\S)`)

// hooks refuses hook commands that carry a literal secret.
func (l *linter) hooks(f *HostFields, from string) {
	if f.Hooks == nil {
		return
	}
	for _, list := range []struct {
		name string
		cmds []string
	}{{"before", f.Hooks.Before}, {"after", f.Hooks.After}} {
		for i, c := range list.cmds {
			if hookSecret.MatchString(c) {
				l.add(SevError, fmt.Sprintf("%s.hooks.%s[%d]", from, list.name, i),
					"looks like a literal secret on the command line; hooks are journaled and shown by holiday plan: read it on the host instead (a file, ~/.my.cnf, ~/.pgpass)")
			}
		}
	}
}

// stops refuses critical services in one layer's stop: list, so the
// finding points where the unit is written.
func (l *linter) stops(f *HostFields, from string) {
	for i, u := range f.Stop {
		if why, ok := CriticalUnit(u); ok {
			l.add(SevError, fmt.Sprintf("%s.stop[%d]", from, i), "refusing to stop %s: %s", u, why)
		}
	}
}

func (l *linter) host(h *Host) {
	p := l.p
	if fw := h.Firewall; fw != nil {
		if _, written := p.pos["management"]; len(p.Management) == 0 && (!written || p.Management != nil) {
			l.add(SevError, h.Source("firewall"), "a lockdown firewall on %s, but management: lists no ranges; lockdown would cut everyone off", h.Name)
		}
		if fw.IPv6 == "" {
			for i, a := range fw.Allow {
				if a == nil || !onlyIPv4(a.From) {
					continue
				}
				at := fmt.Sprintf("%s.allow[%d].from", h.Source("firewall"), i)
				if h.HasIPv6() {
					l.add(SevError, at, "only IPv4 sources, and %s has IPv6; say what IPv6 gets with firewall.ipv6: drop-all or allow-same", h.Name)
				} else {
					l.add(SevWarning, at, "only IPv4 sources; if %s has IPv6, lockdown needs firewall.ipv6: drop-all or allow-same (holiday plan checks live)", h.Name)
				}
				break
			}
		}
		if h.HasIPv6() && len(p.Management) > 0 && !anyIPv6(p.Management) {
			l.add(SevWarning, h.Source("firewall"), "%s has IPv6 but management: has no IPv6 range; over IPv6 only replies and neighbour discovery will reach it", h.Name)
		}
	}
	if h.OnCompromise == OnCompromiseIsolate {
		switch {
		case len(p.Management) == 0:
			l.add(SevError, h.Source("on_compromise"), "on_compromise: isolate keeps only the management path to %s, and management: lists no ranges; isolating it would cut everyone off", h.Name)
		case p.Repository == nil:
			l.add(SevWarning, h.Source("on_compromise"), "on_compromise: isolate does nothing for %s: the plan names no repository, so lockdown takes no baseline and restore's gate cannot find indicators", h.Name)
		}
	}
	if h.Power != nil && h.Power.Off && h.Backup != nil && h.Backup.None {
		l.add(SevWarning, h.Source("power"), "%s is powered off with no backups (backup: none)", h.Name)
	}
}

func (l *linter) unusedGroups() {
	used := map[string]bool{}
	for _, h := range l.p.resolved {
		for _, g := range h.Groups {
			used[g] = true
		}
	}
	var names []string
	for g := range l.p.Groups {
		if !used[g] {
			names = append(names, g)
		}
	}
	sort.Strings(names)
	for _, g := range names {
		l.add(SevWarning, "groups."+g, "group %s applies to no host; add it to a host's groups: or to the inventory", g)
	}
}

func onlyIPv4(from []Prefix) bool {
	if len(from) == 0 {
		return false
	}
	for _, f := range from {
		if !f.Is4() {
			return false
		}
	}
	return true
}

func anyIPv6(ps []Prefix) bool {
	for _, f := range ps {
		if f.IsValid() && !f.Is4() {
			return true
		}
	}
	return false
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && !a.Is4In6()
}

// LintControl refuses a plan whose management: leaves out the control
// node (its addresses, as the hosts see it: `holiday plan validate
// --control ADDR`) while a host has a lockdown firewall, whose allow-list
// would then drop the operator: a CIDR typo such as 10.213.0.10/32 for
// 10.213.0.1/32. It says nothing without control addresses; lockdown's
// admission refuses the same host live, from the address the host sees.
func LintControl(p *Plan, control []netip.Addr) Errors {
	if p == nil || len(control) == 0 {
		return nil
	}
	var fw []string
	for _, h := range p.resolved {
		if h.Firewall != nil {
			fw = append(fw, h.Name)
		}
	}
	if len(fw) == 0 {
		return nil
	}
	l := &linter{p: p}
	for _, a := range control {
		a = a.Unmap()
		in := false
		for _, m := range p.Management {
			if m.IsValid() && m.Contains(a) {
				in = true
				break
			}
		}
		if !in {
			ms := make([]string, len(p.Management))
			for j, m := range p.Management {
				ms[j] = m.String()
			}
			l.add(SevError, "management", "the control node (%s) is outside management [%s]: the lockdown firewall of %s would drop it, and lockdown refuses those hosts (a typo in a range?)",
				a, strings.Join(ms, ", "), strings.Join(fw, ", "))
		}
	}
	out := l.findings.dedup()
	out.Sort()
	return out
}

// PinGrace is how long after the window's end the snapshots a lockdown
// takes stay pinned; it equals backup/repo.PinGrace (plans may not import
// backup; a test in actions/planview keeps the two equal).
const PinGrace = 30 * 24 * time.Hour

// objectLock warns when a repository's Object Lock ends before the pins
// of the snapshots lockdown takes at the window's start: between the two
// dates a compromised node with the repository's credentials could
// delete snapshots that forget would still keep.
func (l *linter) objectLock(r *Repository, rp string) {
	w := l.p.Window
	if r == nil || r.ObjectLock == nil || r.ObjectLock.Days < 1 || w == nil || w.Start.IsZero() || !w.End.After(w.Start) {
		return
	}
	protected := w.Start.Add(time.Duration(r.ObjectLock.Days) * 24 * time.Hour)
	pinned := w.End.Add(PinGrace)
	if !protected.Before(pinned) {
		return
	}
	need := int(math.Ceil(pinned.Sub(w.Start).Hours() / 24))
	const day = "2006-01-02"
	l.add(SevWarning, rp+".object_lock.days",
		"snapshots are protected until %s but pinned until %s (window end + %d days): lockdown's snapshots from the window's start could be deleted in between; days: %d or more covers them",
		protected.Format(day), pinned.Format(day), int(PinGrace.Hours()/24), need)
}
