package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/plans"
)

// Options are shared by Baselines, Check and Evidence.
type Options struct {
	Log      *slog.Logger
	Version  string // holiday's version, for the agent hello and snapshots
	Parallel int    // hosts at once (default 8)
	// Binaries overrides the agent binaries (tests); nil: this process's
	// own executable.
	Binaries map[string]agentctl.Binary
	Store    StoreOptions
}

func (o Options) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Log
}

// connectFresh dials a plan host and uploads a fresh agent to a new path
// (removed on close): check and evidence never run a binary that was left
// on a host that may be compromised.
func connectFresh(ctx context.Context, p *plans.Plan, h *plans.Host, o Options) (*agentctl.Agent, func(), error) {
	t, ao := actions.Target(p, h)
	so := actions.SSHOptions(p)
	so.Logger = o.log()
	conn, err := sshx.Dial(ctx, t, so)
	if err != nil {
		return nil, nil, err
	}
	ao.Logger, ao.Version, ao.Fresh, ao.Binaries = o.log(), o.Version, true, o.Binaries
	if ao.Preinstalled != "" {
		// A site's pre-installed agent is exactly the binary a check
		// must not trust: upload a fresh one regardless.
		ao.Preinstalled = ""
	}
	ag, err := agentctl.Deploy(ctx, conn, ao)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return ag, func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		ag.Close(cctx)
		conn.Close()
	}, nil
}

// eachHost runs fn for every host, o.Parallel at a time.
func eachHost(hosts []*plans.Host, o Options, fn func(i int, h *plans.Host)) {
	var g errgroup.Group
	n := o.Parallel
	if n <= 0 {
		n = 8
	}
	g.SetLimit(n)
	for i, h := range hosts {
		g.Go(func() error {
			fn(i, h)
			return nil
		})
	}
	_ = g.Wait()
}

// HostBaseline is one host's outcome of Baselines.
type HostBaseline struct {
	Host     string        `json:"host"`
	Snapshot string        `json:"snapshot,omitempty"`
	Files    int           `json:"files"`
	Problems int           `json:"problems"`
	Took     time.Duration `json:"took"`
	Error    string        `json:"error,omitempty"`
}

// Baselines takes a baseline of each host now and stores it. r must be
// open with its index loaded and a shared lock held. Lockdown's baseline
// step (actions.Baseline) does the same for one host inside a run.
func Baselines(ctx context.Context, p *plans.Plan, hosts []*plans.Host, r *repo.Repository, o Options) []HostBaseline {
	out := make([]HostBaseline, len(hosts))
	if o.Store.Share == nil { // hosts in parallel, one repository
		o.Store.Share = hostbackup.NewStore(ctx, r)
	}
	store := RepoStore{R: r, StoreOptions: o.Store}
	eachHost(hosts, o, func(i int, h *plans.Host) {
		start := time.Now()
		res := HostBaseline{Host: h.Name}
		defer func() { res.Took = time.Since(start); out[i] = res }()
		ag, done, err := connectFresh(ctx, p, h, o)
		if err != nil {
			res.Error = err.Error()
			return
		}
		defer done()
		st, err := integrity.CollectOn(ctx, ag, integrity.Args{WebRoots: h.WebRoots})
		if err != nil {
			res.Error = err.Error()
			return
		}
		res.Files, res.Problems = len(st.Files), len(st.Errors)
		if res.Snapshot, err = store.SaveBaseline(ctx, h.Name, st); err != nil {
			res.Error = err.Error()
		}
	})
	return out
}

// HostCheck is one host's outcome of Check.
type HostCheck struct {
	Host     string            `json:"host"`
	Baseline string            `json:"baseline,omitempty"` // the snapshot compared with
	Result   *integrity.Result `json:"result,omitempty"`
	Agent    string            `json:"agent,omitempty"` // the fresh agent's SHA-256
	Error    string            `json:"error,omitempty"`
}

// Check compares each host with its newest baseline through a fresh
// agent. r must be open with its index loaded.
func Check(ctx context.Context, p *plans.Plan, hosts []*plans.Host, r *repo.Repository, o Options) []HostCheck {
	out := make([]HostCheck, len(hosts))
	eachHost(hosts, o, func(i int, h *plans.Host) {
		out[i] = CheckHost(ctx, p, h, r, o)
	})
	return out
}

// CheckHost checks one host against its newest baseline.
func CheckHost(ctx context.Context, p *plans.Plan, h *plans.Host, r *repo.Repository, o Options) HostCheck {
	return checkAgainst(ctx, p, h, o, func() (*integrity.State, *repo.Snapshot, error) {
		return LatestBaseline(ctx, r, h.Name)
	})
}

// checkAgainst checks one host against the baseline load returns.
func checkAgainst(ctx context.Context, p *plans.Plan, h *plans.Host, o Options, load func() (*integrity.State, *repo.Snapshot, error)) HostCheck {
	res := HostCheck{Host: h.Name}
	base, sn, err := load()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Baseline = sn.ID.String()
	ag, done, err := connectFresh(ctx, p, h, o)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer done()
	res.Agent = ag.Info().AgentBuild
	now, err := integrity.CollectOn(ctx, ag, integrity.CheckArgs(base, h.WebRoots))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if res.Result, err = integrity.Compare(base, now); err != nil {
		res.Error = err.Error()
	}
	return res
}

// ExitError returns the error carrying a check's exit code: 5 when any
// host has indicators, else 2 when a host could not be checked, else 4
// for drift, else nil.
func ExitError(cs []HostCheck) error {
	var ind, failed, drift []string
	for _, c := range cs {
		switch {
		case c.Error != "":
			failed = append(failed, c.Host)
		case c.Result.ExitCode() == exitcode.Compromise:
			ind = append(ind, c.Host)
		case c.Result.ExitCode() == exitcode.Drift:
			drift = append(drift, c.Host)
		}
	}
	switch {
	case len(ind) > 0:
		return exitcode.WithHint(exitcode.Compromise, fmt.Errorf("compromise indicators on %v", ind),
			"keep these hosts closed; take evidence (holiday evidence -f PLAN HOST) before changing anything")
	case len(failed) > 0:
		return exitcode.With(exitcode.HostsFailed, fmt.Errorf("could not check %v", failed))
	case len(drift) > 0:
		return exitcode.With(exitcode.Drift, fmt.Errorf("drift on %v: review the findings", drift))
	}
	return nil
}

// errNoRepo is returned when the plan names no repository.
var errNoRepo = errors.New("the plan names no repository: baselines and evidence live there")

// NeedRepository refuses a plan without a repository.
func NeedRepository(p *plans.Plan) error {
	if p.Repository == nil {
		return errNoRepo
	}
	return nil
}
