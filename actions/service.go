package actions

import (
	"context"
	"errors"
	"fmt"
	"github.com/holiday-ops/holiday/backup/hostbackup"
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
	// with separate Applies (an agent that can't stream, SysV): their
	// changes are theirs, not side effects of this one. The runner sets
	// it; it is empty when units stop one by one. A service-batch needs
	// none: it stops all its steps together (applyTogether).
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
		// The host side of the backup step: reads the host (and freezes
		// a disk's filesystem for the read when the plan says so).
		hostbackup.Handler(),
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
	ps, errs := observeTogether(ctx, []string{a.Name})
	if errs[0] != nil {
		return nil, errs[0]
	}
	return ps[0], nil
}

// observeTogether reads the prior state of each of names: the units, then
// their triggers and related units, each round asked at once, and the
// listening ports once for all.
func observeTogether(ctx context.Context, names []string) ([]ServicePrior, []error) {
	init := units.Detect()
	ps := make([]ServicePrior, len(names))
	us, errs := units.StatesEach(ctx, init, names)
	var more []string
	for i, u := range us {
		if errs[i] != nil {
			continue
		}
		ps[i] = ServicePrior{Init: init, Unit: u}
		for _, t := range u.TriggeredBy {
			more = appendNew(more, t)
		}
		for _, r := range append(append([]string{}, u.Stoppers...), u.Also...) {
			more = appendNew(more, r)
		}
	}
	mus, merrs := units.StatesEach(ctx, init, more)
	other := map[string]units.Unit{}
	for k, n := range more {
		if merrs[k] != nil && !errors.Is(merrs[k], units.ErrNotFound) {
			for i, u := range us {
				if errs[i] == nil && (slices.Contains(u.TriggeredBy, n) || slices.Contains(u.Stoppers, n) || slices.Contains(u.Also, n)) {
					errs[i] = merrs[k]
				}
			}
			continue
		}
		other[n] = mus[k]
	}
	ls, lerr := units.Listening()
	for i := range ps {
		if errs[i] != nil {
			continue
		}
		if lerr != nil {
			errs[i] = lerr
			continue
		}
		p := &ps[i]
		u := p.Unit
		for _, t := range u.TriggeredBy {
			p.Triggers = append(p.Triggers, other[t])
		}
		for _, r := range append(append([]string{}, u.Stoppers...), u.Also...) {
			if r == u.Name || slices.Contains(u.TriggeredBy, r) || hasUnit(p.Related, r) {
				continue
			}
			p.Related = append(p.Related, other[r])
		}
		p.Ports = units.Ports(ls)
	}
	return ps, errs
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
	done, _ := applyTogether(ctx, []serviceArgs{a}, a.Batch)
	return done[0], nil
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
	if err := verifyTogether(ctx, []serviceArgs{a}, nil)[0]; err != nil {
		return nil, err
	}
	return map[string]bool{"holds": true}, nil
}

// verifyTogether checks each step (Name and Done) as serviceVerify does,
// reading every unit's state and the listening ports once for all — or
// taking them from seen, what the apply saw once its stops had ended,
// where that has them.
func verifyTogether(ctx context.Context, steps []serviceArgs, seen *hostView) []error {
	init := units.Detect()
	out := make([]error, len(steps))
	var names []string
	ports := false
	for _, a := range steps {
		names = appendNew(names, units.Canonical(init, a.Name))
		if a.Done != nil {
			for _, n := range a.Done.Stopped {
				names = appendNew(names, n)
			}
			ports = ports || len(a.Done.Ports) > 0
		}
	}
	var states map[string]units.Unit
	var err error
	if seen != nil {
		states, err = units.PickOrAsk(ctx, init, seen.list, names)
	} else {
		states, err = units.Quick(ctx, init, names)
	}
	if err != nil {
		for i := range out {
			out[i] = err
		}
		return out
	}
	var ls []units.Listener
	if ports && seen != nil {
		ls = seen.ls
	} else if ports {
		if ls, err = units.Listening(); err != nil {
			for i := range out {
				out[i] = err
			}
			return out
		}
	}
	for i, a := range steps {
		var problems []string
		check := func(name string, wasDisabled bool) {
			u := states[name]
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
		name := units.Canonical(init, a.Name)
		check(name, slices.Contains(d.Disabled, name))
		for _, n := range d.Stopped {
			if n != name {
				check(n, slices.Contains(d.Disabled, n))
			}
		}
		for _, l := range ls {
			if slices.Contains(d.Ports, l.Port) {
				problems = append(problems, fmt.Sprintf("port %d (%s) is listening again (pids %v)", l.Port, l.Proto, l.PIDs))
			}
		}
		if len(problems) > 0 {
			out[i] = errors.New(strings.Join(dedup(problems), "; "))
		}
	}
	return out
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
// related units and (when the result was journaled) the side effects:
// revertTogether of the one step.
func serviceRevert(ctx context.Context, a serviceArgs) (any, error) {
	if a.Prior == nil {
		return nil, errors.New("service-revert without the prior state")
	}
	var rerr error
	revertTogether(ctx, []serviceArgs{a}, func(_ int, err error) { rerr = err })
	if rerr != nil {
		return nil, rerr
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
