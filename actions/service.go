package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/runlock"
	"github.com/holiday-ops/holiday/internal/units"
)

// KindService is the service action's kind.
const KindService = "service"

func init() {
	RegisterKind(KindService, func(target string) (Action, error) { return Service{Name: target}, nil })
}

// Service stops a service (systemd unit or SysV script) for the break and
// disables it so that a reboot or its socket, timer or path unit can't
// bring it back; Revert puts back exactly the recorded prior state.
type Service struct {
	Name string // as the plan writes it: nginx, nginx.service, lab-echo.socket
	// Batch are the other units the runner stops at the very same time
	// (a SysV batch): their changes are theirs, not side effects of this
	// one. The runner sets it; it is empty when units stop one by one.
	Batch []string
}

// ServicePrior is the service action's Observe record.
type ServicePrior struct {
	Init units.Init `json:"init"`
	Unit units.Unit `json:"unit"`
	// Triggers are the .socket/.timer/.path units that could start the
	// unit again, with their states.
	Triggers []units.Unit `json:"triggers,omitempty"`
	// Related are units a stop or disable of the unit may change as a side
	// effect (RequiredBy, BoundBy, ConsistsOf, Also), with their states:
	// what Revert puts back when the result never got journaled.
	Related []units.Unit `json:"related,omitempty"`
	Ports   []int        `json:"ports,omitempty"` // ports the host listened on before (all)
}

// ServiceDone is the service action's Apply record.
type ServiceDone struct {
	Init     units.Init `json:"init"`
	Stopped  []string   `json:"stopped,omitempty"`  // units this step stopped
	Disabled []string   `json:"disabled,omitempty"` // units this step disabled
	// SideEffects are the other units whose state changed between the
	// unit list before and after (their state before): the difference of
	// the two lists.
	SideEffects []units.Unit `json:"side_effects,omitempty"`
	// Ports stopped listening with the stop; Verify checks they stay shut.
	Ports []int      `json:"ports,omitempty"`
	After units.Unit `json:"after"`
	Error string     `json:"error,omitempty"` // Apply failed half-way
}

type serviceArgs struct {
	Name  string        `json:"name"`
	Batch []string      `json:"batch,omitempty"`
	Prior *ServicePrior `json:"prior,omitempty"`
	Done  *ServiceDone  `json:"done,omitempty"`
}

// Observe reads the prior state on the host.
func (s Service) Observe(ctx context.Context, h *Host) (Record, error) {
	var p ServicePrior
	if err := h.Agent.Call(ctx, "service-observe", serviceArgs{Name: s.Name}, &p); err != nil {
		return Record{}, err
	}
	return NewRecord(KindService, s.Name, p)
}

// Apply stops and disables on the host.
func (s Service) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	var p ServicePrior
	if err := prior.Decode(&p); err != nil {
		return Record{}, err
	}
	var d ServiceDone
	if err := h.Agent.Call(ctx, "service-apply", serviceArgs{Name: s.Name, Batch: s.Batch, Prior: &p}, &d); err != nil {
		return Record{}, err
	}
	rec, err := NewRecord(KindService, s.Name, d)
	if err != nil {
		return rec, err
	}
	if d.Error != "" {
		return rec, errors.New(d.Error)
	}
	return rec, nil
}

// Verify checks on the host that the unit and its triggers are stopped,
// not enabled again, and nothing listens on the ports it had.
func (s Service) Verify(ctx context.Context, h *Host, done Record) error {
	var d ServiceDone
	if err := done.Decode(&d); err != nil {
		return err
	}
	return h.Agent.Call(ctx, "service-verify", serviceArgs{Name: s.Name, Done: &d}, nil)
}

// Revert puts the recorded prior state back on the host.
func (s Service) Revert(ctx context.Context, h *Host, prior, done Record) error {
	a, err := serviceRevertArgs(s.Name, prior, done)
	if err != nil {
		return err
	}
	return h.Agent.Call(ctx, "service-revert", a, nil)
}

// --- host side (runs in the agent) ---

// AgentHandlers are the host-side operations of the built-in actions, for
// `holiday agent` to register.
func AgentHandlers() []agent.Handler {
	return []agent.Handler{
		{Name: "service-observe", Class: agent.ClassRead, Run: hostOp(serviceObserve)},
		{Name: "service-apply", Class: agent.ClassChange, Run: hostOp(lockedShared(serviceApply))},
		{Name: "service-verify", Class: agent.ClassRead, Run: hostOp(serviceVerify)},
		{Name: "service-revert", Class: agent.ClassChange, Run: hostOp(locked(serviceRevert))},
		{Name: "service-batch", Class: agent.ClassChange, Run: serviceBatchOp},
		{Name: "service-revert-batch", Class: agent.ClassChange, Run: serviceRevertBatchOp},
		{Name: "journal-put", Class: agent.ClassChange, Run: journalPut},
		{Name: "journal-get", Class: agent.ClassRead, Run: journalGet},
		{Name: "hook-run", Class: agent.ClassChange, Run: hookRun},
		{Name: "power-observe", Class: agent.ClassRead, Run: powerObserve},
		// The power class: the agent refuses it on the control node's
		// own machine (internal/agent's guard).
		{Name: "power-off", Class: agent.ClassPower, Run: powerOff},
		{Name: "power-revert", Class: agent.ClassChange, Run: powerRevert},
		// The firewall: whatever can cut the network is of the firewall
		// class, refused on the control node's own machine.
		{Name: "firewall-observe", Class: agent.ClassRead, Run: firewallObserve},
		{Name: "firewall-apply", Class: agent.ClassFirewall, Run: firewallApply},
		{Name: "firewall-disarm", Class: agent.ClassFirewall, Run: firewallDisarm},
		{Name: "firewall-verify", Class: agent.ClassRead, Run: firewallVerify},
		{Name: "firewall-revert", Class: agent.ClassFirewall, Run: firewallRevert},
		runlock.Handler(),
	}
}

func hostOp(f func(ctx context.Context, a serviceArgs) (any, error)) func(ctx context.Context, op *agent.Op) (any, error) {
	return func(ctx context.Context, op *agent.Op) (any, error) {
		var a serviceArgs
		if err := jsonUnmarshal(op.Args, &a); err != nil {
			return nil, err
		}
		if a.Name == "" {
			return nil, errors.New("no service name")
		}
		return f(ctx, a)
	}
}

// HostLockFile serializes changes on a host. An apply whose control node
// died goes on to its end on the host (nothing cancels it); a restore
// started meanwhile must wait for it, or the orphan's disable could land
// after the restore's enable.
var HostLockFile = "/run/holiday-actions.lock"

// locked holds the host lock exclusively (reverts); lockedShared holds it
// shared (applies, which a run may do several at once on different
// units): a revert waits for every apply in flight.
func locked(f func(ctx context.Context, a serviceArgs) (any, error)) func(ctx context.Context, a serviceArgs) (any, error) {
	return hostLocked(syscall.LOCK_EX, f)
}

func lockedShared(f func(ctx context.Context, a serviceArgs) (any, error)) func(ctx context.Context, a serviceArgs) (any, error) {
	return hostLocked(syscall.LOCK_SH, f)
}

func hostLocked(how int, f func(ctx context.Context, a serviceArgs) (any, error)) func(ctx context.Context, a serviceArgs) (any, error) {
	return func(ctx context.Context, a serviceArgs) (any, error) {
		fd, err := syscall.Open(HostLockFile, syscall.O_CREAT|syscall.O_RDWR|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("host lock: %w", err)
		}
		defer syscall.Close(fd)
		if err := syscall.Flock(fd, how); err != nil {
			return nil, fmt.Errorf("host lock: %w", err)
		}
		return f(ctx, a)
	}
}

func serviceObserve(ctx context.Context, a serviceArgs) (any, error) {
	init := units.Detect()
	u, err := units.State(ctx, init, a.Name)
	if err != nil {
		return nil, err
	}
	p := ServicePrior{Init: init, Unit: u}
	for _, t := range u.TriggeredBy {
		tu, err := units.State(ctx, init, t)
		if err != nil && !errors.Is(err, units.ErrNotFound) {
			return nil, err
		}
		p.Triggers = append(p.Triggers, tu)
	}
	for _, r := range append(append([]string{}, u.Stoppers...), u.Also...) {
		if r == u.Name || slices.Contains(u.TriggeredBy, r) || hasUnit(p.Related, r) {
			continue
		}
		ru, err := units.State(ctx, init, r)
		if err != nil && !errors.Is(err, units.ErrNotFound) {
			return nil, err
		}
		p.Related = append(p.Related, ru)
	}
	ls, err := units.Listening()
	if err != nil {
		return nil, err
	}
	p.Ports = units.Ports(ls)
	return p, nil
}

func hasUnit(us []units.Unit, name string) bool {
	return slices.ContainsFunc(us, func(u units.Unit) bool { return u.Name == name })
}

// disableable: the enablement words a `disable` changes and an `enable`
// puts back. static, indirect, generated, masked and alias are left alone.
func disableable(word string) (ok, runtime bool) {
	switch word {
	case "enabled":
		return true, false
	case "enabled-runtime":
		return true, true
	}
	return false, false
}

func serviceApply(ctx context.Context, a serviceArgs) (any, error) {
	if a.Prior == nil {
		return nil, errors.New("service-apply without the prior state")
	}
	p := a.Prior
	init := p.Init
	d := ServiceDone{Init: init}
	before, err := units.ListFor(ctx, init, units.Canonical(init, p.Unit.Name))
	if err != nil {
		return nil, err
	}
	lsBefore, err := units.Listening()
	if err != nil {
		return nil, err
	}
	var errs []string
	// A SysV script's state was just asked for the list: not again.
	listed := func(list []units.Unit, name string) (units.Unit, bool) {
		if init != units.SysV {
			return units.Unit{}, false
		}
		for _, u := range list {
			if u.Name == name && u.Status != units.StatusNotAsked {
				return u, true
			}
		}
		return units.Unit{}, false
	}
	stop := func(u units.Unit) {
		cur, ok := listed(before, u.Name)
		if !ok {
			var err error
			cur, err = units.State(ctx, init, u.Name)
			if err != nil && !errors.Is(err, units.ErrNotFound) {
				errs = append(errs, err.Error())
				return
			}
		}
		if cur.Running() || (init == units.Systemd && cur.Active == "failed") {
			if err := units.Stop(ctx, init, u.Name); err != nil {
				errs = append(errs, err.Error())
			}
			d.Stopped = append(d.Stopped, u.Name)
		}
		if init == units.SysV {
			if cur.Enablement == "enabled" {
				if err := units.Disable(ctx, init, u.Name, false); err != nil {
					errs = append(errs, err.Error())
				}
				d.Disabled = append(d.Disabled, u.Name)
			}
			return
		}
		if ok, rt := disableable(cur.Enablement); ok {
			if err := units.Disable(ctx, init, u.Name, rt); err != nil {
				errs = append(errs, err.Error())
			}
			d.Disabled = append(d.Disabled, u.Name)
		}
	}
	// Triggers first, so the socket can't start the service again between
	// its stop and the socket's.
	for _, t := range p.Triggers {
		stop(t)
	}
	stop(p.Unit)

	after, err := units.ListFor(ctx, init, units.Canonical(init, p.Unit.Name))
	if err != nil {
		errs = append(errs, err.Error())
	}
	mine := map[string]bool{p.Unit.Name: true}
	for _, b := range a.Batch {
		mine[units.Canonical(init, b)] = true
	}
	for _, t := range p.Triggers {
		mine[t.Name] = true
	}
	d.SideEffects = diffUnits(before, after, mine)
	for i, u := range d.SideEffects {
		if u.Init == units.SysV && u.Status == units.StatusNotAsked {
			// Only its rc links changed (the status was not asked
			// around the stop): take its running state as it is now.
			if now, err := units.State(ctx, init, u.Name); err == nil {
				d.SideEffects[i].Status, d.SideEffects[i].Active = now.Status, now.Active
			}
		}
	}
	lsAfter, err := units.Listening()
	if err != nil {
		errs = append(errs, err.Error())
	}
	d.Ports = minus(units.Ports(lsBefore), units.Ports(lsAfter))
	if u, ok := listed(after, p.Unit.Name); ok {
		d.After = u
	} else {
		d.After, _ = units.State(ctx, init, p.Unit.Name)
	}
	if len(errs) > 0 {
		d.Error = strings.Join(errs, "; ")
	}
	return d, nil
}

// diffUnits returns the before-state of units whose running state,
// enablement or mask differ between before and after, leaving out skip.
func diffUnits(before, after []units.Unit, skip map[string]bool) []units.Unit {
	am := map[string]units.Unit{}
	for _, u := range after {
		am[u.Name] = u
	}
	var out []units.Unit
	for _, b := range before {
		if skip[b.Name] {
			continue
		}
		a, ok := am[b.Name]
		if !ok {
			// Gone from the list: a unit stopped and unloaded as a side effect.
			if b.Running() || b.Enablement != "" {
				out = append(out, b)
			}
			continue
		}
		if a.Running() != b.Running() || a.Enablement != b.Enablement || a.Masked != b.Masked || !slices.Equal(a.RCLinks, b.RCLinks) {
			out = append(out, b)
		}
	}
	return out
}

func minus(a, b []int) []int {
	var out []int
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func serviceVerify(ctx context.Context, a serviceArgs) (any, error) {
	init := units.Detect()
	var problems []string
	check := func(name string, wasDisabled bool) {
		u, err := units.State(ctx, init, name)
		if err != nil && !errors.Is(err, units.ErrNotFound) {
			problems = append(problems, err.Error())
			return
		}
		if u.Running() {
			problems = append(problems, fmt.Sprintf("%s is %s again", u.Name, describe(u)))
		}
		if wasDisabled && u.Enablement == "enabled" {
			problems = append(problems, fmt.Sprintf("%s is enabled again", u.Name))
		}
	}
	var d ServiceDone
	if a.Done != nil {
		d = *a.Done
	}
	check(a.Name, slices.Contains(d.Disabled, units.Canonical(init, a.Name)))
	for _, n := range d.Stopped {
		if n != units.Canonical(init, a.Name) {
			check(n, slices.Contains(d.Disabled, n))
		}
	}
	if len(d.Ports) > 0 {
		ls, err := units.Listening()
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			if slices.Contains(d.Ports, l.Port) {
				problems = append(problems, fmt.Sprintf("port %d (%s) is listening again (pids %v)", l.Port, l.Proto, l.PIDs))
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(dedup(problems), "; "))
	}
	return map[string]bool{"holds": true}, nil
}

func dedup(s []string) []string {
	var out []string
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func describe(u units.Unit) string {
	if u.Init == units.SysV {
		return fmt.Sprintf("running (status %d)", u.Status)
	}
	return u.Active + "/" + u.Sub
}

// serviceRevert puts back the prior state of the unit, its triggers, its
// related units and (when the result was journaled) the side effects.
// It compares with the state now, so running it twice changes nothing.
func serviceRevert(ctx context.Context, a serviceArgs) (any, error) {
	if a.Prior == nil {
		return nil, errors.New("service-revert without the prior state")
	}
	p := a.Prior
	init := p.Init
	// In start order: triggers (sockets first), related, side effects,
	// then the unit itself.
	var set []units.Unit
	add := func(u units.Unit) {
		if u.Name != "" && u.Exists() && !hasUnit(set, u.Name) {
			set = append(set, u)
		}
	}
	for _, t := range p.Triggers {
		add(t)
	}
	for _, r := range p.Related {
		add(r)
	}
	if a.Done != nil {
		for _, s := range a.Done.SideEffects {
			add(s)
		}
	}
	add(p.Unit)

	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	// Files first (mask, enablement, rc links), then running state.
	for _, want := range set {
		if init == units.SysV {
			// Only the links matter here: no status script run.
			links, err := units.RCLinks(want.Name)
			if err != nil {
				note(err)
				continue
			}
			if !slices.Equal(links, want.RCLinks) {
				note(units.SetRCLinks(want.Name, want.RCLinks))
			}
			continue
		}
		cur, err := units.State(ctx, init, want.Name)
		if err != nil && !errors.Is(err, units.ErrNotFound) {
			note(err)
			continue
		}
		switch {
		case want.Masked && !cur.Masked:
			note(units.Mask(ctx, want.Name, want.Enablement == "masked-runtime"))
			continue
		case !want.Masked && cur.Masked:
			note(units.Unmask(ctx, want.Name, cur.Enablement == "masked-runtime"))
			cur, _ = units.State(ctx, init, want.Name)
		}
		if cur.Enablement != want.Enablement {
			if ok, rt := disableable(want.Enablement); ok {
				note(units.Enable(ctx, init, want.Name, rt))
			} else if want.Enablement == "disabled" {
				if ok, rt := disableable(cur.Enablement); ok {
					note(units.Disable(ctx, init, want.Name, rt))
				}
			}
		}
	}
	now := map[string]units.Unit{} // state after the files, of units not started or stopped since
	for _, want := range set {
		cur, err := units.State(ctx, init, want.Name)
		if err != nil && !errors.Is(err, units.ErrNotFound) {
			note(err)
			continue
		}
		switch {
		case want.Running() && !cur.Running():
			note(units.Start(ctx, init, want.Name))
		case !want.Running() && cur.Running() && want.Name == p.Unit.Name:
			// Exactly the prior state: a unit that was stopped before
			// the break stays stopped, even if someone started it.
			note(units.Stop(ctx, init, want.Name))
		default:
			now[want.Name] = cur
		}
	}
	// Check what we reached. A daemon that forks (redis-server's init
	// script) may have its pid file a moment after `start` returned, so
	// a running-state mismatch is asked again for a few seconds. A unit
	// left as it was is not asked again.
	for _, want := range set {
		cur, ok := now[want.Name]
		var err error
		for deadline := time.Now().Add(settleTimeout); !ok; {
			cur, err = units.State(ctx, init, want.Name)
			if err != nil || cur.Running() == want.Running() || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, units.ErrNotFound) {
			note(err)
			continue
		}
		if cur.Running() != want.Running() || cur.Enablement != want.Enablement || cur.Masked != want.Masked {
			errs = append(errs, fmt.Sprintf("%s: want %s, have %s", want.Name, stateWords(want), stateWords(cur)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(dedup(errs), "; "))
	}
	return map[string]bool{"reverted": true}, nil
}

// settleTimeout bounds how long a revert waits for a started or stopped
// unit to show its new running state.
const settleTimeout = 5 * time.Second

func stateWords(u units.Unit) string {
	if u.Init == units.SysV {
		return fmt.Sprintf("status %d, %s", u.Status, u.Enablement)
	}
	return fmt.Sprintf("%s/%s, %s", u.Active, u.Sub, u.Enablement)
}
