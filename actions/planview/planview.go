// Package planview is `holiday plan` behind its flags: it turns a resolved
// plan into the preflight's plain inputs, runs the preflight over every
// host, and on each host that answered observes — read-only, on the same
// connection and agent — what lockdown would change there, step by step
// (actions.Diff), so the table and --json show the per-host diff. Beside
// the hosts it opens the plan's repository and its copy_to read-only and
// says whether each is reachable and immutable, and until when.
//
// It lives under actions because it needs actions' steps; it may import
// actions, plans, backup and internal/..., never restore or cmd.
package planview

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/plans"
)

// Options are `holiday plan`'s knobs.
type Options struct {
	// WithoutBackups judges hosts as `lockdown --without-backups` would.
	WithoutBackups bool
	// WithoutBaseline judges the plan as `lockdown --without-baseline`.
	WithoutBaseline bool
	Parallel        int           // hosts at once (preflight's default when 0)
	HostTimeout     time.Duration // bound on one host's whole check
	// AgentBinary, if set, is the static build pushed as the agent for
	// every architecture instead of this executable.
	AgentBinary string
	Version     string // this build's version, for the agent handshake
	Log         *slog.Logger
	// Started and Done report progress (preflight.Progress fits).
	Started func(name string)
	Done    func(r *preflight.Report)
}

// Run checks every host of p and returns the reports, each with the
// lockdown diff of its host, and beside them the plan's repositories
// (Repositories). planFile names p in the output. It fails
// only when the options are wrong or ctx ends; a host's failure is in its
// report.
func Run(ctx context.Context, planFile string, p *plans.Plan, o Options) (*preflight.Output, error) {
	hosts, sopts, aopts := Inputs(p)
	if o.AgentBinary != "" {
		b, err := agentctl.LoadBinary(o.AgentBinary)
		if err != nil {
			return nil, err
		}
		aopts.Binaries = map[string]agentctl.Binary{"x86_64": b, "aarch64": b}
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	aopts.Version = o.Version
	sopts.Logger, aopts.Logger = log, log

	byName := map[string]*plans.Host{}
	for _, h := range p.Hosts() {
		byName[h.Name] = h
	}
	start := time.Now()
	// the repositories beside the hosts: lockdown opens them first
	repos := make(chan []*preflight.Repository, 1)
	go func() { repos <- Repositories(ctx, p, o.WithoutBackups, o.WithoutBaseline) }()
	reports := preflight.Run(ctx, hosts, preflight.Options{
		SSH: sopts, Agent: aopts, Management: actions.Management(p),
		Parallel: o.Parallel, HostTimeout: o.HostTimeout, Logger: log,
		Started: o.Started, Done: o.Done,
		Then: func(ctx context.Context, h preflight.Host, ag *agentctl.Agent, r *preflight.Report) {
			if ph := byName[h.Name]; ph != nil {
				r.Lockdown = Lockdown(ctx, p, ph, &actions.Host{Name: ph.Name, Plan: ph, Agent: readOnly{ag}, Info: ag.Info()}, o.WithoutBackups, o.WithoutBaseline)
				// What lockdown refuses beyond the preflight's own
				// (actions.Admission: the same check lockdown runs).
				adm := actions.Admission{Plan: p, Host: ph, Steps: actions.StepsFor(p, ph), WithoutBackups: o.WithoutBackups}
				r.AddRefusals(adm.StepRefusals())
			}
		},
	})
	rs := <-repos
	took := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := preflight.NewOutput(planFile, p.Name, reports, took)
	out.Repositories = rs
	return out, nil
}

// Lockdown is the diff of one host: its backups first (one line per
// source; NOT TAKEN with withoutBackups or `backup: none`), then every
// other step actions.StepsFor gives it, observed on h; a plan without a
// repository gets the line that says no baseline is taken.
func Lockdown(ctx context.Context, p *plans.Plan, ph *plans.Host, h *actions.Host, withoutBackups, withoutBaseline bool) *preflight.Lockdown {
	l := &preflight.Lockdown{}
	switch {
	case ph.Backup == nil || ph.Backup.None:
		l.Backups = preflight.BackupsNone
	case withoutBackups:
		l.Backups = preflight.BackupsNotTaken
	}
	type slotted struct {
		slot actions.Slot
		c    preflight.Change
	}
	var all []slotted
	for _, c := range BackupSteps(ph, withoutBackups) {
		all = append(all, slotted{actions.SlotBackups, c})
	}
	var steps []actions.Step
	for _, s := range actions.StepsFor(p, ph) {
		switch {
		case s.Kind == actions.KindBackup: // listed per source above
		case s.Kind == actions.KindBaseline && withoutBaseline:
			all = append(all, slotted{s.Slot, preflight.Change{Slot: s.Slot.String(), Step: s.ID(), What: "NOT TAKEN (--without-baseline): restore cannot check this host"}})
		default:
			steps = append(steps, s)
		}
	}
	for i, c := range actions.Diff(ctx, h, steps) {
		slot := steps[i].Slot // Diff answers one Change per step, in order
		all = append(all, slotted{slot, preflight.Change{Slot: slot.String(), Step: c.Step, What: c.What, Error: c.Err}})
	}
	for _, c := range unbuilt(ph, steps) {
		all = append(all, slotted{c.slot, c.Change})
	}
	if why := actions.NoBaseline(p); why != "" {
		all = append(all, slotted{actions.SlotBaseline, preflight.Change{Slot: actions.SlotBaseline.String(), Step: actions.KindBaseline + ": none", What: why}})
	}
	all = append(all, slotted{actions.SlotBaseline, onCompromise(p, ph, withoutBaseline)})
	// The order lockdown runs them in, whatever order StepsFor lists.
	sort.SliceStable(all, func(i, j int) bool { return all[i].slot < all[j].slot })
	for _, s := range all {
		l.Steps = append(l.Steps, s.c)
	}
	return l
}

// onCompromise is the diff's line for what restore's gate does with the
// host if it finds indicators (the plan's on_compromise).
func onCompromise(p *plans.Plan, ph *plans.Host, withoutBaseline bool) preflight.Change {
	oc := ph.OnCompromise
	if oc == "" {
		oc = plans.OnCompromiseKeep
	}
	c := preflight.Change{Slot: actions.SlotBaseline.String(), Step: "on_compromise: " + string(oc)}
	switch {
	case actions.NoBaseline(p) != "" || withoutBaseline:
		c.What = "nothing: without a baseline restore's gate cannot find indicators on this host"
	case ph.OnCompromise == plans.OnCompromiseIsolate:
		c.What = "at restore, if the gate finds indicators: kept closed and isolated — only the management path reaches it, its own outgoing connections are dropped (on top of the lockdown firewall); holiday isolate --undo goes back to the lockdown firewall"
	default:
		c.What = "at restore, if the gate finds indicators: kept closed — services stay stopped, the firewall stays as lockdown left it"
	}
	return c
}

type slotChange struct {
	slot actions.Slot
	preflight.Change
}

// unbuilt lists what the plan asks of the host that this build has no
// step for yet (StepsFor gives none in that slot), so the diff does not
// read as if lockdown would do it.
func unbuilt(ph *plans.Host, steps []actions.Step) []slotChange {
	has := map[actions.Slot]bool{}
	for _, s := range steps {
		has[s.Slot] = true
	}
	var out []slotChange
	note := func(slot actions.Slot, planned bool, step, what string) {
		if planned && !has[slot] {
			out = append(out, slotChange{slot, preflight.Change{Slot: slot.String(), Step: step, What: what}})
		}
	}
	note(actions.SlotHooksBefore, ph.Hooks != nil && len(ph.Hooks.Before) > 0, "hooks:before",
		"not implemented in this build: the commands would not run")
	note(actions.SlotPower, ph.Power != nil && ph.Power.Off, "power:off",
		"not implemented in this build: the host would stay on")
	return out
}

// BackupSteps are the backup lines of a host's diff, one per source:
// what lockdown backs up before anything on the host changes.
func BackupSteps(ph *plans.Host, withoutBackups bool) []preflight.Change {
	slot := actions.SlotBackups.String()
	if ph.Backup == nil || ph.Backup.None {
		return []preflight.Change{{Slot: slot, Step: "backup: none", What: "the plan says this host has no backups"}}
	}
	var out []preflight.Change
	for _, s := range ph.Backup.Sources {
		what := "snapshot kind:" + sourceKind(s) + ", read back before any service stops or the firewall changes"
		switch {
		case withoutBackups:
			what = "NOT TAKEN (--without-backups)"
		case s.Disk != "" && !s.Freeze:
			what += "; crash-consistent (no freeze:)"
		case s.Disk != "":
			what += "; its mounted filesystem frozen during the read"
		}
		out = append(out, preflight.Change{Slot: slot, Step: "backup:" + actions.DescribeSource(s), What: what})
	}
	return out
}

func sourceKind(s *plans.BackupSource) string {
	switch {
	case s.Disk != "":
		return "disk"
	case s.Postgres != nil:
		return "postgres"
	case s.MySQL != nil:
		return "mysql"
	}
	return "files"
}

// readOnly lets through only the operations the agent classes as reads:
// `holiday plan` changes nothing on a host but holiday's agent directory,
// whatever an Action's Observe would like to call.
type readOnly struct{ c actions.Caller }

var readOps = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range actions.AgentHandlers() {
		if h.Class == agent.ClassRead {
			m[h.Name] = true
		}
	}
	return m
}()

func (r readOnly) Call(ctx context.Context, op string, args, result any) error {
	if !readOps[op] {
		return fmt.Errorf("holiday plan is read-only: it does not run %q", op)
	}
	return r.c.Call(ctx, op, args, result)
}

// Inputs turns the resolved plan into preflight's plain values, through
// the same functions the runs use to reach a host (actions.Target).
func Inputs(p *plans.Plan) ([]preflight.Host, sshx.Options, agentctl.Options) {
	var hosts []preflight.Host
	var aopts agentctl.Options
	for _, h := range p.Hosts() {
		hosts = append(hosts, actions.PreflightHost(p, h))
		_, aopts = actions.Target(p, h) // the agent options are the plan's, the same for every host
	}
	return hosts, actions.SSHOptions(p), aopts
}
