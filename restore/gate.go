package restore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/atomicfile"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/plans"
)

// Gate files in the run's directory: what `holiday report --check` and
// `--evidence` read.
const (
	GateCheckFile      = "gate-check.json"
	gateEvidencePrefix = "gate-evidence-"
)

// gate is the integrity gate (DESIGN §8): before anything is reverted,
// each host the run left closed is checked against the baseline that
// run took, through a freshly uploaded agent. The verdict goes on its
// job, and so into the restore's journal entry and the result:
//
//   - no indicators (drift alone included): reopened, as before;
//   - indicators: kept closed (services stopped, firewall held),
//     evidence taken as a kind:evidence snapshot, the newest backup older
//     than the first indicator named for `holiday rollback`;
//   - not checked (no baseline of the run, host or repository
//     unreachable): kept closed — the gate fails closed;
//   - the plan names no repository: lockdown took no baseline, which
//     `holiday plan` and lockdown's summary said. Reopened, with the
//     verdict "NOT CHECKED" on the host: failing closed here would make
//     every restore of such a plan need an override, and an override
//     given every time stops meaning anything.
//
// o.AcceptFindings reopens the hosts kept closed; the reason is
// journaled with each. Runs of `holiday isolate`, and `isolate --undo`
// of a run restore isolated, are not gated: undoing containment is the
// operator's explicit decision.
func gate(ctx context.Context, ao actions.Options, p *plans.Plan, o Options, jobs []actions.RevertJob) {
	if p == nil || o.Command == "isolate" || runCommand(o.StateDir, ao.RunID) == "isolate" {
		return
	}
	var idx []int
	var hosts []*plans.Host
	for i, j := range jobs {
		if h := p.Host(j.Name); h != nil && j.Closed(ao.Key) {
			idx, hosts = append(idx, i), append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return
	}
	if why := actions.NoBaseline(p); why != "" {
		for _, i := range idx {
			jobs[i].Gate = &actions.GateVerdict{Reopen: true, Verdict: "NOT CHECKED: " + why, Why: "reopened unchecked: " + why}
		}
		return
	}
	r, release, err := openGateRepo(ctx, p)
	if err != nil {
		for _, i := range idx {
			jobs[i].Gate = notChecked(err, o.AcceptFindings)
		}
		return
	}
	defer release()
	iopts := o.Incident
	if iopts.Parallel <= 0 {
		iopts.Parallel = o.Parallel
	}
	iopts.Store.Tags = append([]string{"run:" + ao.RunID, "plan:" + p.Name}, pinTags(p)...)
	res := incident.Gate(ctx, p, hosts, r, incident.GateOptions{Options: iopts, AcceptFindings: o.AcceptFindings, Run: ao.RunID})
	files := saveGateFiles(o.StateDir, ao.RunID, res)
	for k, g := range res {
		v := verdict(g)
		v.CheckJSON, v.EvidenceJSON = files.check, files.evidence[g.Host]
		// Kept closed for indicators (not for "could not look"), and
		// the plan says so: isolated too (actions: on top of the
		// lockdown firewall, in the run's journal).
		v.Isolate = !v.Reopen && v.Indicators > 0 && hosts[k].OnCompromise == plans.OnCompromiseIsolate
		jobs[idx[k]].Gate = v
	}
}

// pinTags pin the gate's evidence like the run's backups.
func pinTags(p *plans.Plan) []string {
	if p.Window == nil || p.Window.End.IsZero() {
		return repo.PinTags(time.Time{})
	}
	return repo.PinTags(p.Window.End.Add(repo.PinGrace))
}

// openGateRepo opens the plan's repository with a shared lock and its
// index loaded, for the gate's baselines and evidence.
func openGateRepo(ctx context.Context, p *plans.Plan) (*repo.Repository, func(), error) {
	r, release, err := actions.PlanRepoEnv(p.Repository).Open(ctx, repocmd.SharedLock)
	if err != nil {
		return nil, nil, fmt.Errorf("the repository with the baselines: %w", err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		release()
		return nil, nil, fmt.Errorf("the repository with the baselines: load the index: %w", err)
	}
	return r, release, nil
}

func notChecked(err error, accept string) *actions.GateVerdict {
	v := &actions.GateVerdict{Verdict: "not checked: " + err.Error()}
	if accept != "" {
		v.Reopen, v.AcceptedFindings = true, accept
		v.Why = fmt.Sprintf("not checked (%v); reopened anyway: %q", err, accept)
		return v
	}
	v.Why = "not checked, so not reopened: " + err.Error()
	return v
}

// verdict is the journal's and the result's form of a gate result.
func verdict(g incident.GateResult) *actions.GateVerdict {
	v := &actions.GateVerdict{Reopen: g.Reopen, AcceptedFindings: g.Accepted, Baseline: g.Check.Baseline, Rollback: g.Rollback, Why: g.Why}
	c := g.Check
	if c.Error != "" || c.Result == nil {
		v.Verdict = "not checked: " + c.Error
		return v
	}
	v.Checked, v.Verdict = true, c.Result.Verdict()
	v.Indicators, v.Drift = c.Result.Count(integrity.Indicator), c.Result.Count(integrity.Drift)
	v.FirstIndicator = c.Result.FirstIndicator()
	for _, f := range c.Result.Of(integrity.Indicator) {
		v.Findings = append(v.Findings, f.String())
	}
	if e := g.Evidence; e != nil {
		v.Evidence, v.EvidenceError = e.Snapshot, e.Error
	}
	return v
}

type gateFiles struct {
	check    string
	evidence map[string]string
}

// saveGateFiles keeps the gate's checks and evidence results in the run's
// directory, in the form `holiday check --json` and `holiday evidence
// --json` write, so `holiday report` reads them as they are. A file that
// cannot be written is left out (its path stays empty): the verdicts are
// in the journal either way.
func saveGateFiles(stateDir, run string, res []incident.GateResult) gateFiles {
	dir := actions.RunDir(stateDir, run)
	out := gateFiles{evidence: map[string]string{}}
	var checks []incident.HostCheck
	for _, g := range res {
		checks = append(checks, g.Check)
		if g.Evidence != nil && g.Evidence.Error == "" {
			p := filepath.Join(dir, gateEvidencePrefix+g.Host+".json")
			if writeJSONFile(p, g.Evidence) == nil {
				out.evidence[g.Host] = p
			}
		}
	}
	p := filepath.Join(dir, GateCheckFile)
	if writeJSONFile(p, checks) == nil {
		out.check = p
	}
	return out
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}
