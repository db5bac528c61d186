package incident

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/plans"
)

// GateOptions shape the restore gate.
type GateOptions struct {
	Options
	// AcceptFindings, when set, reopens hosts with indicators anyway, and
	// hosts that could not be checked; the reason is returned in each
	// such GateResult for the run's journal.
	AcceptFindings string
	// Run, when set, is the lockdown run being restored: each host is
	// compared with the baseline that run took (RunBaseline), not with
	// a newer one taken during the break.
	Run string
}

// GateResult is the restore gate's verdict for one host.
type GateResult struct {
	Host  string    `json:"host"`
	Check HostCheck `json:"check"`
	// Reopen says restore may revert this host's lockdown. False: its
	// services stay stopped and its firewall stays.
	Reopen bool `json:"reopen"`
	// Accepted is the operator's reason when indicators were accepted.
	Accepted string `json:"accepted,omitempty"`
	// Evidence is taken for a host with indicators, before anything
	// changes it.
	Evidence *EvidenceResult `json:"evidence,omitempty"`
	// Rollback is the newest backup snapshot of the host older than the
	// first indicator (or than the baseline, when no indicator carries a
	// time): what `holiday rollback` should restore. "" if none.
	Rollback string `json:"rollback,omitempty"`
	// Cut is the time Rollback is older than.
	Cut time.Time `json:"cut,omitzero"`
	Why string    `json:"why"`
}

// Gate is what `holiday restore` runs first for each host: check it; a
// host with indicators is not reopened unless findings are accepted,
// evidence is taken, and the snapshot to roll back to is named. A host
// that cannot be checked (no baseline, unreachable) is not reopened
// either: the gate fails closed, unless findings are accepted. Drift alone
// reopens. r must be open with its index loaded and a shared lock held.
// Evidence is tagged with o.Store.Tags.
func Gate(ctx context.Context, p *plans.Plan, hosts []*plans.Host, r *repo.Repository, o GateOptions) []GateResult {
	out := make([]GateResult, len(hosts))
	if o.Store.Share == nil { // evidence of hosts in parallel, one repository
		o.Store.Share = hostbackup.NewStore(ctx, r)
	}
	eachHost(hosts, o.Options, func(i int, h *plans.Host) {
		load := func() (*integrity.State, *repo.Snapshot, error) { return LatestBaseline(ctx, r, h.Name) }
		if o.Run != "" {
			load = func() (*integrity.State, *repo.Snapshot, error) { return RunBaseline(ctx, r, h.Name, o.Run) }
		}
		g := GateResult{Host: h.Name, Check: checkAgainst(ctx, p, h, o.Options, load)}
		defer func() { out[i] = g }()
		switch {
		case g.Check.Error != "" && o.AcceptFindings != "":
			g.Reopen, g.Accepted = true, o.AcceptFindings
			g.Why = fmt.Sprintf("not checked (%s); reopened anyway: %q", g.Check.Error, o.AcceptFindings)
			return
		case g.Check.Error != "":
			g.Why = "not checked, so not reopened: " + g.Check.Error
			return
		case g.Check.Result.Count(integrity.Indicator) == 0:
			g.Reopen, g.Why = true, g.Check.Result.Verdict()
			return
		}
		ev := Evidence(ctx, p, h, r, g.Check.Result.Baseline, o.Options)
		g.Evidence = &ev
		cut := g.Check.Result.FirstIndicator()
		if cut.IsZero() {
			cut = g.Check.Result.Baseline
		}
		g.Cut = cut
		if sns, err := r.Snapshots(ctx, func(repo.ID, error) {}); err == nil {
			if sn := RollbackCandidate(sns, h.Name, cut); sn != nil {
				g.Rollback = sn.ID.String()
			}
		}
		if o.AcceptFindings != "" {
			g.Reopen, g.Accepted = true, o.AcceptFindings
			g.Why = fmt.Sprintf("%s; reopened anyway: %q", g.Check.Result.Verdict(), o.AcceptFindings)
			return
		}
		g.Why = fmt.Sprintf("%s: kept closed (services stopped, firewall held)", g.Check.Result.Verdict())
		if g.Rollback != "" {
			g.Why += fmt.Sprintf("; roll back from snapshot %s (the newest before %s)", g.Rollback[:8], cut.UTC().Format(time.RFC3339))
		}
	})
	return out
}

// backupKinds are the snapshots rollback writes back: baselines,
// evidence and journals are not backups.
var backupKinds = []string{"kind:files", "kind:disk", "kind:postgres", "kind:mysql"}

// RollbackCandidate returns host's newest backup snapshot taken before
// cut.
func RollbackCandidate(sns []*repo.Snapshot, host string, cut time.Time) *repo.Snapshot {
	var best *repo.Snapshot
	for _, sn := range sns {
		if sn.Hostname != host || !sn.Time.Before(cut) || !slices.ContainsFunc(backupKinds, func(k string) bool { return slices.Contains(sn.Tags, k) }) {
			continue
		}
		if best == nil || sn.Time.After(best.Time) {
			best = sn
		}
	}
	return best
}
