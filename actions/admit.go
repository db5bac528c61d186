package actions

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/holiday-ops/holiday/internal/facts"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/plans"
)

// Admission is what decides whether lockdown may change a host from this
// control node. Refusals is the one function `holiday plan` prints and
// lockdown obeys (DESIGN §5: the library guards itself): a host with any
// refusal is left untouched by lockdown, whatever built its steps.
type Admission struct {
	Plan *plans.Plan // for the preflight view of the host; may be nil
	Host *plans.Host // the plan's host; nil for a job without one
	// Steps are the host's lockdown steps.
	Steps      []Step
	Management []netip.Prefix
	// ControlAddr is the control node's address as the host sees it.
	ControlAddr string
	// Facts are the host's init, services and (when the plan changes its
	// firewall) firewall facts; nil when they could not be read.
	Facts *facts.Facts
	// WithoutBackups: the operator locks down without the plan's
	// backups (backups: NOT TAKEN).
	WithoutBackups bool
	// Containment: the run is `holiday isolate`, which takes no backups
	// and stops no service.
	Containment bool
}

// Refusals are the reasons lockdown refuses the host, as preflight
// findings (severity error): preflight's own (management path, missing
// services, firewall co-owners) and the steps' (a unit the host cannot be
// reached without).
func (a Admission) Refusals() []preflight.Finding {
	var ph preflight.Host
	if a.Host != nil && a.Plan != nil {
		ph = PreflightHost(a.Plan, a.Host)
	}
	if a.Containment && ph.Firewall == nil {
		// isolate changes the firewall whatever the plan says of it:
		// backends and co-owners are refused the same way.
		ph.Firewall = &preflight.Firewall{}
	}
	out := preflight.Refusals(ph, a.ControlAddr, a.Management, a.Facts)
	return append(out, a.StepRefusals()...)
}

// StepRefusals are the refusals only actions knows of: `holiday plan`
// adds them to the preflight's.
func (a Admission) StepRefusals() []preflight.Finding {
	var out []preflight.Finding
	add := func(code, format string, args ...any) {
		out = append(out, preflight.Finding{Severity: preflight.SevError, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	for _, s := range a.Steps {
		if s.Kind != KindService {
			continue
		}
		if why, ok := plans.CriticalUnit(s.Target); ok {
			add("service-critical", "stop: refusing to stop %s: %s", s.Target, why)
		}
	}
	return out
}

// admissionFacts reads what Refusals needs from the host: init and the
// planned services (and the firewall when the plan changes it), not the
// whole of `holiday plan`'s facts.
func admissionFacts(ctx context.Context, h *Host, steps []Step) (*facts.Facts, error) {
	args := facts.Args{Only: []string{"services"}}
	for _, s := range steps {
		if s.Kind == KindService {
			args.Services = append(args.Services, s.Target)
		}
	}
	fw := h.Plan != nil && h.Plan.Firewall != nil
	for _, s := range steps {
		fw = fw || s.Kind == KindFirewall
	}
	if fw {
		args.Only = append(args.Only, "firewall")
	}
	var f facts.Facts
	if err := h.Agent.Call(ctx, facts.OpName, args, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// refusalError is a host lockdown refuses; nothing changed on it.
type refusalError struct{ fs []preflight.Finding }

func (e *refusalError) Error() string {
	var msgs []string
	for _, f := range e.fs {
		msgs = append(msgs, f.Message)
	}
	return "nothing was changed on it: " + strings.Join(msgs, "; ")
}
