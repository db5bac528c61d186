package actions

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// KindFirewall is the firewall's kind; its targets are "lockdown" and
// "isolate" (containment, `holiday isolate`).
const KindFirewall = "firewall"

func init() {
	RegisterKind(KindFirewall, func(target string) (Action, error) {
		switch target {
		case "lockdown":
			return Firewall{}, nil
		case "isolate":
			return Firewall{Isolate: true}, nil
		}
		return nil, fmt.Errorf("firewall: unknown target %q", target)
	})
}

// Firewall tightens the host's inbound filtering for the break (DESIGN
// §6) without ever locking the operator out:
//
//   - Observe saves iptables-save and ip6tables-save of all tables with the
//     backend's own tools (iptables-legacy-* or iptables-nft-*): the prior
//     state the journal holds.
//   - Apply lints the rule set (the management path must reach SSH),
//     keeps the saved rules on the host, arms an on-host dead-man that runs
//     exactly Revert after DeadmanSecs unless disarmed (a transient
//     systemd timer, or a setsid process on SysV), applies IPv6 then IPv4,
//     each as one `-restore --noflush -w` transaction (IPv6 rolled back if
//     IPv4 fails), confirms over a NEW SSH connection, and only then
//     disarms.
//   - Verify checks INPUT still jumps to HOLIDAY-IN first and the chain
//     still holds its rules, in each family.
//   - Revert deletes holiday's jumps and chains (go-iptables, in the agent)
//     and checks both families' saves equal the saved ones, comments and
//     counters aside.
//
// With Isolate (containment, DESIGN §6.8) the rule set is stricter: only
// the management path in, and out only replies to it (HOLIDAY-OUT, first
// from OUTPUT); the protocol is the same.
type Firewall struct{ Isolate bool }

func (f Firewall) target() string {
	if f.Isolate {
		return "isolate"
	}
	return "lockdown"
}

// DefaultDeadmanSecs is how long the host waits for the control node's
// confirmation before reverting by itself.
const DefaultDeadmanSecs = 90

// FirewallPrior is the firewall's Observe record.
type FirewallPrior struct {
	Backend string `json:"backend"` // legacy or nft
	Init    string `json:"init"`    // systemd or sysv: how the dead-man is armed
	Save4   string `json:"save4"`   // iptables-save, all tables
	Save6   string `json:"save6"`   // ip6tables-save, all tables
	// OnLockdown: isolate found holiday's lockdown firewall in place and
	// goes on top of it (DESIGN §6.8): Save4 and Save6 are then the
	// locked-down rules, and Lockdown4 and Lockdown6 the lockdown's own
	// rule set, which Revert puts back (not the rules from before the
	// lockdown: restoring the lockdown's run does that).
	OnLockdown bool   `json:"on_lockdown,omitempty"`
	Lockdown4  string `json:"lockdown4,omitempty"`
	Lockdown6  string `json:"lockdown6,omitempty"`
}

// firewallObserveArgs: OnLockdown lets observe find a lockdown firewall
// in place (isolate goes on top of it) instead of refusing the host.
type firewallObserveArgs struct {
	OnLockdown bool `json:"on_lockdown,omitempty"`
}

// FirewallDone is the firewall's Apply record.
type FirewallDone struct {
	Backend     string    `json:"backend"`
	Rules4      string    `json:"rules4"`
	Rules6      string    `json:"rules6"`
	Applied     []string  `json:"applied,omitempty"` // families applied, in order: ip6, ip4
	DeadmanSecs int       `json:"deadman_s"`
	DeadmanUnit string    `json:"deadman_unit,omitempty"` // systemd
	DeadmanPID  int       `json:"deadman_pid,omitempty"`  // SysV
	ArmedAt     time.Time `json:"armed_at"`
	Confirmed   bool      `json:"confirmed,omitempty"`
	Disarmed    bool      `json:"disarmed,omitempty"`
	Undo        string    `json:"undo,omitempty"` // the console undo line (/var/lib/holiday/UNDO)
	Boot        string    `json:"boot,omitempty"` // the boot-time re-apply: unit file or init script
	// OnLockdown: applied on top of the lockdown firewall (isolate); the
	// lockdown's boot-time re-apply re-applies isolation meanwhile.
	OnLockdown bool   `json:"on_lockdown,omitempty"`
	Error      string `json:"error,omitempty"`
}

// firewallApplyArgs is what the agent's firewall-apply needs.
type firewallApplyArgs struct {
	Prior       FirewallPrior `json:"prior"`
	Rules4      string        `json:"rules4"`
	Rules6      string        `json:"rules6"`
	DeadmanSecs int           `json:"deadman_s"`
}

// firewallRevertArgs names what to revert to; empty prior: the host's
// own saved copy.
type firewallRevertArgs struct {
	Prior FirewallPrior `json:"prior"`
}

type firewallVerifyArgs struct {
	Backend string   `json:"backend"`
	Applied []string `json:"applied"`
	Rules4  string   `json:"rules4"`
	Rules6  string   `json:"rules6"`
}

func (f Firewall) Observe(ctx context.Context, h *Host) (Record, error) {
	var p FirewallPrior
	if err := h.Agent.Call(ctx, "firewall-observe", firewallObserveArgs{OnLockdown: f.Isolate}, &p); err != nil {
		return Record{}, err
	}
	return NewRecord(KindFirewall, f.target(), p)
}

// rulesFor builds and lints the host's rule set.
func (f Firewall) rulesFor(h *Host) (FirewallRules, error) {
	if h.Plan == nil || (h.Plan.Firewall == nil && !f.Isolate) {
		return FirewallRules{}, errors.New("no firewall in the plan for this host")
	}
	control, err := netip.ParseAddr(h.Info.ControlAddr)
	if err != nil {
		return FirewallRules{}, errors.New("the host did not tell the control node's address: cannot prove the management path; nothing changed")
	}
	port := uint16(22)
	if h.Plan.Port > 0 {
		port = uint16(h.Plan.Port)
	}
	in := FirewallInput{Firewall: h.Plan.Firewall, Management: h.Management, Control: control.Unmap(), SSHPort: port}
	build, lint := BuildFirewallRules, LintFirewallRules
	if f.Isolate {
		build, lint = BuildIsolateRules, LintIsolateRules
	}
	r, err := build(in)
	if err != nil {
		return r, err
	}
	if err := lint(r, in.Control, in.Management, port); err != nil {
		return r, fmt.Errorf("lint: %w; nothing changed", err)
	}
	return r, nil
}

func (f Firewall) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	rec := func(d FirewallDone, err error) (Record, error) {
		if err != nil && d.Error == "" {
			d.Error = err.Error()
		}
		r, rerr := NewRecord(KindFirewall, f.target(), d)
		if err == nil {
			err = rerr
		}
		return r, err
	}
	var p FirewallPrior
	if err := prior.Decode(&p); err != nil {
		return rec(FirewallDone{}, err)
	}
	rules, err := f.rulesFor(h)
	if err != nil {
		return rec(FirewallDone{}, err)
	}
	if h.Confirm == nil {
		return rec(FirewallDone{}, errors.New("no way to confirm over a new SSH connection from here; nothing changed"))
	}
	switch firewallTestHook() {
	case "block-control":
		rules = blockControl(rules, h.Info.ControlAddr)
	case "fail-v4":
		rules.V4 = failV4(rules.V4)
	}
	secs := deadmanSecs()
	var d FirewallDone
	if err := h.Agent.Call(ctx, "firewall-apply", firewallApplyArgs{Prior: p, Rules4: rules.V4, Rules6: rules.V6, DeadmanSecs: secs}, &d); err != nil {
		d.Backend, d.Rules4, d.Rules6 = p.Backend, rules.V4, rules.V6
		return rec(d, fmt.Errorf("applying: %w", err))
	}
	crashPoint(KindFirewall, "before-disarm")
	if firewallTestHook() == "no-confirm" {
		// Test hook: neither confirm nor disarm; the dead-man reverts.
		return rec(d, nil)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second/2)
	err = h.Confirm(cctx)
	cancel()
	if err != nil {
		return rec(d, fmt.Errorf("the control node cannot reach the host over a new SSH connection after the firewall change (%v): not disarmed, the host reverts by itself within %ds", err, secs))
	}
	d.Confirmed = true
	if err := h.Agent.Call(ctx, "firewall-disarm", struct{}{}, nil); err != nil {
		return rec(d, fmt.Errorf("disarming the dead-man: %w", err))
	}
	d.Disarmed = true
	return rec(d, nil)
}

func (Firewall) Verify(ctx context.Context, h *Host, done Record) error {
	var d FirewallDone
	if err := done.Decode(&d); err != nil {
		return err
	}
	return h.Agent.Call(ctx, "firewall-verify", firewallVerifyArgs{Backend: d.Backend, Applied: d.Applied, Rules4: d.Rules4, Rules6: d.Rules6}, nil)
}

func (Firewall) Revert(ctx context.Context, h *Host, prior, done Record) error {
	var p FirewallPrior
	if err := prior.Decode(&p); err != nil {
		return err
	}
	return h.Agent.Call(ctx, "firewall-revert", firewallRevertArgs{Prior: p}, nil)
}

// noteApplied prints the console undo line with the host's result.
func (Firewall) noteApplied(hr *HostResult, prior, done Record) {
	var d FirewallDone
	if done.Decode(&d) != nil || d.Undo == "" {
		return
	}
	n := "firewall console undo: " + UndoFile + " holds `" + d.Undo + "`"
	if hr.Note != "" {
		n = hr.Note + "; " + n
	}
	hr.Note = n
}

// blockControl (test hook) puts a DROP of everything from the control
// node first in holiday's chain, in its family: the rule set lint would
// have refused, applied anyway.
func blockControl(r FirewallRules, control string) FirewallRules {
	a, err := netip.ParseAddr(control)
	if err != nil {
		return r
	}
	a = a.Unmap()
	fam := &r.V4
	if a.Is6() {
		fam = &r.V6
	}
	head := ":" + FirewallChain + " - [0:0]\n"
	*fam = strings.Replace(*fam, head, head+fmt.Sprintf("-A %s -s %s -j DROP\n", FirewallChain, netip.PrefixFrom(a, a.BitLen())), 1)
	return r
}

// failV4 (test hook) adds to the IPv4 rules a line iptables-restore
// rejects, so the IPv4 transaction fails for real after IPv6 applied.
func failV4(v4 string) string {
	return strings.Replace(v4, "\nCOMMIT", "\n-A "+FirewallChain+" --holiday-test-fail-v4\nCOMMIT", 1)
}
