// Package preflight is the control node's side of `holiday plan`: it
// reaches every host in parallel (bounded), deploys holiday's agent (the
// only thing it changes on a host, under the agent's own directory), asks
// it for the facts, and judges them against what the plan will do — the
// planned services exist, the control node is on the management path, no
// other tool owns the firewall, which live inbound flows a lockdown would
// cut — plus the pre-holiday audit.
//
// It takes its hosts as plain values (the command resolves the plan), so it
// imports nothing of holiday's above internal/.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/facts"
	"github.com/holiday-ops/holiday/internal/sshx"
)

// Host is one host to check, resolved from the plan.
type Host struct {
	Name   string
	Target sshx.Target // how to reach it (actions.Target)
	Stop   []string
	// Firewall is nil when the plan leaves the host's firewall alone.
	Firewall *Firewall
}

// Firewall is the plan's lockdown firewall, as far as preflight needs it.
type Firewall struct {
	Allow []Allow
}

// Allow opens Ports (inclusive ranges) of Proto to From (any when empty).
type Allow struct {
	Proto string // tcp or udp
	Ports [][2]uint16
	From  []netip.Prefix
}

func (a Allow) permits(proto string, port uint16, src netip.Addr) bool {
	if !strings.HasPrefix(proto, a.Proto) {
		return false
	}
	in := false
	for _, r := range a.Ports {
		if port >= r[0] && port <= r[1] {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	return len(a.From) == 0 || contains(a.From, src)
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Options say how to reach hosts and what the plan requires.
type Options struct {
	SSH        sshx.Options
	Agent      agentctl.Options
	Management []netip.Prefix
	// Parallel bounds the hosts worked on at once (default 32).
	Parallel int
	// HostTimeout bounds one host's whole check (default 3m).
	HostTimeout time.Duration
	// Started and Done, if set, are called as each host starts and
	// finishes (from the host's goroutine).
	Started func(name string)
	Done    func(r *Report)
	// Then, if set, runs for each host whose agent answered, after the
	// judgement and before Done, on the host's own connection and agent
	// (no second dial): `holiday plan` observes there what lockdown would
	// change and fills r.Lockdown. It must only read.
	Then   func(ctx context.Context, h Host, ag *agentctl.Agent, r *Report)
	Logger *slog.Logger
}

// Status of a host after the preflight.
const (
	StatusOK      = "ok"      // reachable, agent runs, nothing to fix
	StatusWarn    = "warn"    // ready for lockdown, with findings to read
	StatusRefused = "refused" // lockdown would refuse this host as it stands
	StatusFailed  = "failed"  // could not be checked: unreachable, host key, auth, sudo, agent
)

// Severities of findings.
const (
	SevError   = "error"   // lockdown would refuse the host
	SevWarning = "warning" // the audit: fix before the break
	SevInfo    = "info"
)

// Finding is one thing the operator should read.
type Finding struct {
	Severity string `json:"severity"`
	Code     string `json:"code"` // stable: service-missing, control-outside-management, …
	Message  string `json:"message"`
}

// Report is one host's result.
type Report struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Status  string `json:"status"`
	// Error is why a failed host could not be checked, with its kind
	// (unreachable, timeout, host-key-unknown, host-key-changed, auth,
	// no-sudo, agent) and a hint.
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"error_kind,omitempty"`
	Hint      string `json:"hint,omitempty"`

	Reachable bool   `json:"reachable"`
	HostKey   string `json:"host_key"` // ok, unknown, changed, revoked, "" (not reached)
	LoginUser string `json:"login_user,omitempty"`
	Sudo      *bool  `json:"sudo,omitempty"` // the agent runs through sudo -n; nil: not known
	Agent     *Agent `json:"agent,omitempty"`

	ControlAddr         string `json:"control_addr,omitempty"`
	ControlInManagement *bool  `json:"control_in_management,omitempty"`

	Facts    *facts.Facts `json:"facts,omitempty"`
	Services []Service    `json:"services,omitempty"`
	// WouldCut are the established inbound flows a lockdown firewall
	// would drop: sources outside management, not the control node, not
	// allowed by the plan. Empty when the plan leaves the firewall alone.
	WouldCut []facts.Flow `json:"would_cut"`
	Findings []Finding    `json:"findings"`
	// Lockdown is what lockdown would do on this host, step by step, as
	// observed on the host now; nil when the host could not be checked.
	Lockdown *Lockdown `json:"lockdown,omitempty"`
	Took     string    `json:"took"`
}

// Lockdown is the per-host diff `holiday plan` prints: the steps of a
// lockdown in their order, each with what it would change.
type Lockdown struct {
	// Backups is "none" for a plan host with `backup: none`, and
	// "not-taken" when the run leaves its backups out (--without-backups);
	// either way the table says "backups: NOT TAKEN". Empty: taken.
	Backups string   `json:"backups"`
	Steps   []Change `json:"steps"`
}

// Backups values.
const (
	BackupsNone     = "none"
	BackupsNotTaken = "not-taken"
)

// Change is one lockdown step and what it would change on the host.
type Change struct {
	Slot  string `json:"slot"` // backups, services, firewall, … (the lockdown order)
	Step  string `json:"step"` // kind:target, as the journal names it
	What  string `json:"what,omitempty"`
	Error string `json:"error,omitempty"` // the step could not be observed
}

// Agent is what Deploy reported.
type Agent struct {
	Path     string `json:"path"`
	Uploaded bool   `json:"uploaded"`
	Replaced string `json:"replaced,omitempty"`
	Build    string `json:"build"`
	UID      int    `json:"uid"`
}

// Service is a planned service's verdict.
type Service struct {
	Name        string   `json:"name"`
	Exists      bool     `json:"exists"`
	Active      string   `json:"active,omitempty"`
	Enablement  string   `json:"enablement,omitempty"`
	Masked      bool     `json:"masked,omitempty"`
	TriggeredBy []string `json:"triggered_by,omitempty"`
}

// Run checks every host and returns the reports in the hosts' order. It
// fails only when ctx ends; each host's failure is in its report.
func Run(ctx context.Context, hosts []Host, opts Options) []*Report {
	par := opts.Parallel
	if par <= 0 {
		par = 32
	}
	if opts.HostTimeout <= 0 {
		opts.HostTimeout = 3 * time.Minute
	}
	pool := sshx.NewPool(opts.SSH)
	defer pool.Close()
	reports := make([]*Report, len(hosts))
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				reports[i] = &Report{Name: h.Name, Address: h.Target.Host, Status: StatusFailed,
					Error: "interrupted before it started", ErrorKind: "interrupted", Findings: []Finding{}}
				return
			}
			defer func() { <-sem }()
			if opts.Started != nil {
				opts.Started(h.Name)
			}
			r := checkHost(ctx, pool, h, opts)
			reports[i] = r
			if opts.Done != nil {
				opts.Done(r)
			}
		}()
	}
	wg.Wait()
	return reports
}

func checkHost(ctx context.Context, pool *sshx.Pool, h Host, opts Options) *Report {
	start := time.Now()
	r := &Report{Name: h.Name, Address: h.Target.Host, Findings: []Finding{}, WouldCut: []facts.Flow{}}
	defer func() { r.Took = time.Since(start).Round(time.Millisecond).String() }()
	ctx, cancel := context.WithTimeout(ctx, opts.HostTimeout)
	defer cancel()

	conn, err := pool.Get(ctx, h.Target)
	if err != nil {
		r.fail(err)
		return r
	}
	defer conn.Close()
	r.Reachable, r.HostKey = true, "ok"
	r.LoginUser = conn.User()

	aopts := opts.Agent
	if aopts.Logger == nil {
		aopts.Logger = opts.Logger
	}
	ag, err := agentctl.Deploy(ctx, conn, aopts)
	if err != nil {
		r.fail(err)
		return r
	}
	info := ag.Info()
	sudo := info.Sudo
	r.Sudo = &sudo
	r.LoginUser = info.LoginUser
	r.Agent = &Agent{Path: info.Path, Uploaded: info.Uploaded, Replaced: info.Replaced, Build: info.AgentBuild, UID: info.AgentUID}
	r.ControlAddr = info.ControlAddr

	var f facts.Facts
	if err := ag.Call(ctx, facts.OpName, facts.Args{Services: h.Stop}, &f); err != nil {
		r.fail(err)
		return r
	}
	r.Facts = &f
	judge(r, h, opts.Management)
	if opts.Then != nil {
		opts.Then(ctx, h, ag, r)
	}
	return r
}

// fail records why a host could not be checked.
func (r *Report) fail(err error) {
	r.Status = StatusFailed
	r.Error = err.Error()
	r.Hint = sshx.HintOf(err)
	var ae *agentctl.Error
	if errors.As(err, &ae) && ae.Hint != "" {
		r.Hint = ae.Hint
	}
	switch k := sshx.KindOf(err); k {
	case sshx.KindUnknown:
		switch {
		case errors.Is(err, agentctl.ErrNoSudo):
			r.ErrorKind = "no-sudo"
			r.Reachable, r.HostKey = true, "ok"
		case errors.Is(err, context.DeadlineExceeded):
			r.ErrorKind = "timeout"
		case errors.Is(err, context.Canceled):
			r.ErrorKind = "interrupted"
		default:
			r.ErrorKind = "agent"
			r.Reachable, r.HostKey = true, "ok"
		}
	default:
		r.ErrorKind = k.String()
		switch k {
		case sshx.KindHostKeyUnknown:
			r.Reachable, r.HostKey = true, "unknown"
		case sshx.KindHostKeyChanged:
			r.Reachable, r.HostKey = true, "changed"
		case sshx.KindHostKeyRevoked:
			r.Reachable, r.HostKey = true, "revoked"
		case sshx.KindAuth:
			r.Reachable, r.HostKey = true, "ok"
		case sshx.KindSession, sshx.KindClosed:
			r.Reachable = true
		}
	}
}

func (r *Report) add(sev, code, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)})
}

// Refusals are the findings for which lockdown refuses a host, before
// changing anything on it: the control node outside the management path
// (DESIGN §6.1), a planned service missing or unreadable, another owner
// of a firewall the plan would change. `holiday plan` prints them (judge)
// and lockdown obeys them (actions' admission), from the same facts: f
// needs only its init, services and, when the plan changes the
// firewall, firewall parts. f nil checks the management path alone.
func Refusals(h Host, controlAddr string, management []netip.Prefix, f *facts.Facts) []Finding {
	var out []Finding
	add := func(code, format string, args ...any) {
		out = append(out, Finding{Severity: SevError, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	if a, err := netip.ParseAddr(controlAddr); err == nil {
		if !contains(management, a) {
			add("control-outside-management",
				"the control node reaches this host from %s, which is outside management (%s): lockdown refuses it", a, prefixes(management))
		}
	} else if h.Firewall != nil {
		add("control-addr-unknown", "the host did not tell the control node's address ($SSH_CONNECTION empty): lockdown cannot prove the management path")
	}
	if f == nil {
		return out
	}
	for _, s := range f.Services {
		switch {
		case s.Error != "":
			add("service-unreadable", "stop: %s: cannot read its state: %s", s.Name, s.Error)
		case !s.Exists:
			add("service-missing", "stop: %s: no such service on this host (%s)", s.Name, f.Init)
		}
	}
	// Firewall backends and co-owners (DESIGN §6.2): only a refusal when
	// the plan would change this host's firewall.
	if fw := f.Firewall; h.Firewall != nil {
		if len(fw.Backends) > 1 {
			add("firewall-both-backends", "rules in both iptables-legacy and nft (%s): lockdown refuses rather than guess which one filters; "+
				"remove the stale backend's rules (iptables-legacy -F/-X, or nft delete table) or take firewall: off this host in the plan", strings.Join(fw.Tables, ", "))
		}
		for _, o := range fw.CoOwners {
			add("firewall-co-owner", "the firewall is also managed by %s (found: %s): lockdown refuses rather than fight it; %s",
				o, evidence(fw.Evidence[o]), coOwnerAdvice(o))
		}
	}
	return out
}

// evidence lists what showed a co-owner, the first few of it.
func evidence(ev []string) string {
	if len(ev) == 0 {
		return "its traces"
	}
	if len(ev) > 3 {
		return strings.Join(ev[:3], ", ") + fmt.Sprintf(" and %d more", len(ev)-3)
	}
	return strings.Join(ev, ", ")
}

// coOwnerAdvice says what the operator can do about a co-owner of the
// firewall: tighten the host with the co-owner's own tool, or remove it.
// Either way the plan must leave this host's firewall alone.
func coOwnerAdvice(owner string) string {
	const off = "take firewall: off this host in the plan"
	switch owner {
	case "docker":
		return "Docker rewrites its chains whenever a container starts: tighten this host in the DOCKER-USER chain and with the containers' published ports, and " + off
	case "firewalld":
		return "tighten the host with firewalld itself (a drop zone with the management ranges as sources of a trusted zone, or firewall-cmd --panic-on) and " + off + ", or stop and disable firewalld and remove its tables first"
	case "ufw":
		return "tighten the host with ufw itself (ufw default deny incoming, ufw allow from each management range to port 22) and " + off + ", or ufw disable first"
	case "nftables":
		return "a native nft ruleset filters beside iptables: tighten it there and " + off + ", or, if those tables are stale, nft delete table FAMILY NAME first"
	}
	return off
}

// judge turns facts into findings and a status.
func judge(r *Report, h Host, management []netip.Prefix) {
	f := r.Facts
	for _, p := range f.Errors {
		r.add(SevWarning, "facts-incomplete", "could not read %s: %s", p.Collector, p.Error)
	}

	if a, err := netip.ParseAddr(r.ControlAddr); err == nil {
		in := contains(management, a)
		r.ControlInManagement = &in
	}
	for _, s := range f.Services {
		v := Service{Name: s.Name, Exists: s.Exists}
		if s.Unit != nil {
			v.Active, v.Enablement, v.Masked, v.TriggeredBy = s.Unit.Active, s.Unit.Enablement, s.Unit.Masked, s.Unit.TriggeredBy
		}
		r.Services = append(r.Services, v)
		if s.Error == "" && s.Exists && len(v.TriggeredBy) > 0 {
			r.add(SevInfo, "service-triggered", "stop: %s can be started again by %s; lockdown stops those too", s.Name, strings.Join(v.TriggeredBy, ", "))
		}
	}
	// What lockdown would refuse: the same function lockdown obeys.
	r.Findings = append(r.Findings, Refusals(h, r.ControlAddr, management, f)...)

	// Live inbound flows the lockdown firewall would drop.
	if h.Firewall != nil {
		control, _ := netip.ParseAddr(r.ControlAddr)
		for _, fl := range f.Inbound {
			src := fl.Remote.Unmap()
			if src.IsLoopback() || src == control.Unmap() || contains(management, src) {
				continue
			}
			allowed := false
			for _, a := range h.Firewall.Allow {
				if a.permits(fl.Proto, fl.LocalPort, src) {
					allowed = true
					break
				}
			}
			if !allowed {
				r.WouldCut = append(r.WouldCut, fl)
			}
		}
		if n := len(r.WouldCut); n > 0 {
			var ex []string
			for i, fl := range r.WouldCut {
				if i == 5 {
					ex = append(ex, fmt.Sprintf("and %d more", n-5))
					break
				}
				ex = append(ex, fmt.Sprintf("%s → :%d%s", fl.Remote, fl.LocalPort, procSuffix(fl.Procs)))
			}
			r.add(SevWarning, "flows-cut", "lockdown would cut %d live inbound flow%s: %s", n, plural(n), strings.Join(ex, ", "))
		}
	}

	// The pre-holiday audit.
	a := f.Audit
	if a.SSHD.PasswordAuthentication == "yes" {
		r.add(SevWarning, "ssh-password-login", "sshd allows password logins (PasswordAuthentication yes, from %s)", a.SSHD.Source)
	}
	if a.SSHD.PermitRootLogin == "yes" {
		r.add(SevWarning, "ssh-root-login", "sshd allows root to log in with a password (PermitRootLogin yes, from %s)", a.SSHD.Source)
	}
	if len(a.EmptyPasswords) > 0 {
		r.add(SevWarning, "empty-password", "account%s without a password: %s", plural(len(a.EmptyPasswords)), strings.Join(a.EmptyPasswords, ", "))
	}
	switch {
	case a.Updates.State == "known" && a.Updates.Security > 0:
		r.add(SevWarning, "security-updates", "%d pending security update%s (apt's cache, %s old): %s",
			a.Updates.Security, plural(a.Updates.Security), a.Updates.ListsAge, strings.Join(first(a.Updates.Packages, 8), ", "))
	case a.Updates.State != "known":
		r.add(SevInfo, "security-updates-unknown", "pending security updates unknown: %s", a.Updates.Reason)
	}
	if n := len(a.WorldWritable); n > 0 {
		more := ""
		if a.WorldWritableMore {
			more = " and more"
		}
		r.add(SevWarning, "world-writable-webroot", "world-writable in web roots: %s%s", strings.Join(first(a.WorldWritable, 5), ", "), more)
	}

	sort.SliceStable(r.Findings, func(i, j int) bool { return sevRank(r.Findings[i].Severity) < sevRank(r.Findings[j].Severity) })
	r.Status = StatusOK
	for _, fd := range r.Findings {
		switch fd.Severity {
		case SevError:
			r.Status = StatusRefused
		case SevWarning:
			if r.Status == StatusOK {
				r.Status = StatusWarn
			}
		}
	}
}

// AddRefusals adds findings for which lockdown refuses the host that
// only the caller knows (actions' step checks), and sets the status.
func (r *Report) AddRefusals(fs []Finding) {
	if len(fs) == 0 {
		return
	}
	r.Findings = append(r.Findings, fs...)
	sort.SliceStable(r.Findings, func(i, j int) bool { return sevRank(r.Findings[i].Severity) < sevRank(r.Findings[j].Severity) })
	r.Status = StatusRefused
}

func sevRank(s string) int {
	switch s {
	case SevError:
		return 0
	case SevWarning:
		return 1
	}
	return 2
}

func procSuffix(ps []facts.Proc) string {
	if len(ps) == 0 {
		return ""
	}
	return " (" + ps[0].Comm + ")"
}

func first(s []string, n int) []string {
	if len(s) > n {
		return append(append([]string{}, s[:n]...), fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

func prefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
