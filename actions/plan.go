package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/plans"
)

// Connector reaches a plan's hosts: one SSH connection per host, the
// agent deployed on it.
type Connector struct {
	Plan    *plans.Plan
	Log     *slog.Logger
	Version string
	// Fresh uploads the agent to a new path on every connection and
	// removes it at the end: rollback (and check, evidence) never trust
	// a binary cached on a host that may be compromised (DESIGN §2).
	Fresh bool
	pool  *sshx.Pool
}

// NewConnector returns a Connector for p's hosts.
func NewConnector(p *plans.Plan, log *slog.Logger, version string) *Connector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := SSHOptions(p)
	opts.Logger = log
	return &Connector{Plan: p, Log: log, Version: version, pool: sshx.NewPool(opts)}
}

// Close closes every connection.
func (c *Connector) Close() error { return c.pool.Close() }

// Connect dials the host and deploys the agent, as Target says.
func (c *Connector) Connect(ctx context.Context, h *plans.Host) (*Host, func(), error) {
	t, ao := Target(c.Plan, h)
	ao.Logger, ao.Version, ao.Lazy, ao.Fresh = c.Log, c.Version, true, c.Fresh
	conn, err := c.pool.Get(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	a, err := agentctl.Deploy(ctx, conn, ao)
	if err != nil {
		return nil, nil, err
	}
	confirm := func(ctx context.Context) error {
		// A fresh dial (not the pool's connection): a new TCP handshake
		// through the firewall as it is now.
		opts := SSHOptions(c.Plan)
		opts.Logger = c.Log
		nc, err := sshx.Dial(ctx, t, opts)
		if err != nil {
			return err
		}
		defer nc.Close()
		_, err = nc.Output(ctx, "true")
		return err
	}
	release := a.Release
	if c.Fresh {
		release = func() { _ = a.Close(context.WithoutCancel(ctx)) }
	}
	return &Host{Name: h.Name, Plan: h, Agent: a, Info: a.Info(), Management: Management(c.Plan), Confirm: confirm}, release, nil
}

// StepsFor returns the lockdown steps plan p gives its host h: hooks,
// backups, services, firewall, the integrity baseline (when p names a
// repository to keep it in: without one restore cannot check the host,
// and NoBaseline says so), power. The runner orders them by Slot.
func StepsFor(p *plans.Plan, h *plans.Host) []Step {
	var steps []Step
	if hk := h.Hooks; hk != nil {
		if len(hk.After) > 0 {
			steps = append(steps, Step{Slot: SlotHooksAfter, Kind: KindHook, Target: "after", Action: Hook{When: "after"}})
		}
		if len(hk.Before) > 0 {
			steps = append(steps, Step{Slot: SlotHooksBefore, Kind: KindHook, Target: "before", Action: Hook{When: "before"}})
		}
	}
	if b := h.Backup; b != nil && !b.None && len(b.Sources) > 0 {
		steps = append(steps, Step{Slot: SlotBackups, Kind: KindBackup, Target: "host", Action: HostBackup{Sources: b.Sources}})
	}
	for _, name := range h.Stop {
		// Batch is left to the runner: only units really stopped at
		// the same time may leave each other out of their side effects.
		steps = append(steps, Step{Slot: SlotServices, Kind: KindService, Target: name, Action: Service{Name: name}})
	}
	if h.Firewall != nil {
		steps = append(steps, Step{Slot: SlotFirewall, Kind: KindFirewall, Target: "lockdown", Action: Firewall{}})
	}
	if NoBaseline(p) == "" {
		steps = append(steps, Step{Slot: SlotBaseline, Kind: KindBaseline, Target: BaselineTarget, Action: Baseline{WebRoots: h.WebRoots}})
	}
	if h.Power != nil && h.Power.Off {
		steps = append(steps, Step{Slot: SlotPower, Kind: KindPower, Target: "off", Action: Power{}})
	}
	return steps
}

// Jobs turns a plan into the runner's jobs; only names the plan selects
// (all when only is empty).
func Jobs(p *plans.Plan, c *Connector, only []string) []Job {
	var jobs []Job
	for _, h := range p.Hosts() {
		if len(only) > 0 && !contains(only, h.Name) {
			continue
		}
		h := h
		jobs = append(jobs, Job{
			Name: h.Name, Risk: h.Risk, Steps: StepsFor(p, h), Plan: h,
			BackupsNone: h.Backup != nil && h.Backup.None,
			Connect:     func(ctx context.Context) (*Host, func(), error) { return c.Connect(ctx, h) },
		})
	}
	return jobs
}

// IsolateJobs are `holiday isolate`'s jobs: the named hosts of the plan,
// each with the one step firewall:isolate.
func IsolateJobs(p *plans.Plan, c *Connector, names []string) []Job {
	var jobs []Job
	for _, h := range p.Hosts() {
		if !contains(names, h.Name) {
			continue
		}
		h := h
		jobs = append(jobs, Job{
			Name: h.Name, Risk: h.Risk, Plan: h,
			Steps:   []Step{isolateStep},
			Connect: func(ctx context.Context) (*Host, func(), error) { return c.Connect(ctx, h) },
		})
	}
	return jobs
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Change is one line of what lockdown would do on a host.
type Change struct {
	Step string `json:"step"`
	What string `json:"what"`
	Err  string `json:"error,omitempty"`
}

// Diff observes (read-only) every step lockdown would run on h and says
// what it would change: for `holiday plan` to print per host.
func Diff(ctx context.Context, h *Host, steps []Step) []Change {
	var out []Change
	for _, s := range steps {
		prior, err := s.Action.Observe(ctx, h)
		if err != nil {
			out = append(out, Change{Step: s.ID(), Err: err.Error()})
			continue
		}
		out = append(out, Change{Step: s.ID(), What: describePrior(s, prior)})
	}
	return out
}

func describePrior(s Step, prior Record) string {
	switch s.Kind {
	case KindHook:
		var p HookPrior
		prior.Decode(&p)
		when := "at lockdown, before anything changes"
		if p.When == "after" {
			when = "at restore, after everything else"
		}
		return fmt.Sprintf("run %d command(s) %s: %s", len(p.Commands), when, strings.Join(p.Commands, "; "))
	case KindBaseline:
		return "collect the integrity baseline through the agent into the repository (kind:baseline), once services are stopped and the firewall is in place: what holiday check and restore's gate compare the host with"
	case KindPower:
		var p PowerPrior
		prior.Decode(&p)
		return "power off last; comes back " + p.HowBack()
	case KindFirewall:
		var p FirewallPrior
		prior.Decode(&p)
		return fmt.Sprintf("tighten the firewall (%s, both families): %s first from INPUT; the rules saved now are put back at restore", p.Backend, FirewallChain)
	case KindService:
	default:
		return "apply"
	}
	var p ServicePrior
	if err := prior.Decode(&p); err != nil {
		return err.Error()
	}
	var parts []string
	for _, t := range p.Triggers {
		if t.Running() {
			parts = append(parts, "stop "+t.Name)
		}
		if ok, _ := disableable(t.Enablement); ok || (p.Init != "systemd" && t.Enablement == "enabled") {
			parts = append(parts, "disable "+t.Name)
		}
	}
	u := p.Unit
	if u.Running() {
		parts = append(parts, fmt.Sprintf("stop %s (%s)", u.Name, describe(u)))
	}
	if ok, _ := disableable(u.Enablement); ok || (p.Init == "sysv" && u.Enablement == "enabled") {
		parts = append(parts, "disable "+u.Name+" ("+u.Enablement+")")
	}
	if len(parts) == 0 {
		return fmt.Sprintf("nothing: %s is already stopped and %s", u.Name, u.Enablement)
	}
	return strings.Join(parts, ", ")
}

// BackupJobs are `holiday backup`'s jobs: the hosts the plan gives backup
// sources (those of only, when given; a host named there without sources
// is an error), each with its backup step alone.
func BackupJobs(p *plans.Plan, c *Connector, only []string) ([]Job, error) {
	var jobs []Job
	for _, j := range Jobs(p, c, only) {
		var steps []Step
		for _, s := range j.Steps {
			if s.Kind == KindBackup {
				steps = append(steps, s)
			}
		}
		if len(steps) == 0 {
			if len(only) > 0 {
				return nil, fmt.Errorf("%s: the plan gives this host no backup sources", j.Name)
			}
			continue
		}
		j.Steps = steps
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil, errors.New("the plan gives no host backup sources: nothing to back up")
	}
	return jobs, nil
}
