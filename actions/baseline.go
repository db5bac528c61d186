package actions

import (
	"context"
	"fmt"
	"time"

	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/plans"
)

// KindBaseline is the integrity baseline's kind: lockdown takes the
// baseline (DESIGN §8) once the host's services are stopped and its
// firewall is in place (SlotBaseline), so that holiday check and the
// restore gate compare the host with itself as it was when the break
// began — stopped services, closed listeners, holiday's boot-time
// firewall unit and all.
const KindBaseline = "baseline"

func init() {
	RegisterKind(KindBaseline, func(target string) (Action, error) { return Baseline{}, nil })
}

// BaselineStore keeps a host's baseline off the host (in the plan's
// repository: incident.RepoStore) and returns the snapshot's ID.
type BaselineStore interface {
	SaveBaseline(ctx context.Context, host string, st *integrity.State) (string, error)
}

// Baseline is the lockdown step that collects the host's integrity state
// through its agent and stores it. It changes nothing on the host, so
// Revert has nothing to undo; the snapshot stays in the repository.
type Baseline struct {
	WebRoots []string
	// Store keeps the snapshot; nil: the run's (Host.Baselines). With
	// neither the step fails: StepsFor gives no baseline step to a host
	// whose plan has no repository.
	Store BaselineStore
}

// BaselineDone is what the journal records: where the baseline went.
type BaselineDone struct {
	Snapshot string    `json:"snapshot"`
	Taken    time.Time `json:"taken"`
	Files    int       `json:"files"`
	Problems []string  `json:"problems,omitempty"`
}

// Observe records nothing of the host: the baseline changes nothing.
func (b Baseline) Observe(ctx context.Context, h *Host) (Record, error) {
	return NewRecord(KindBaseline, "integrity", struct{}{})
}

// Apply collects and stores the baseline.
func (b Baseline) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	store := b.Store
	if store == nil {
		store = h.Baselines
	}
	if store == nil {
		return Record{}, fmt.Errorf("baseline: this run has no repository open to keep it in")
	}
	st, err := integrity.CollectOn(ctx, h.Agent, integrity.Args{WebRoots: b.WebRoots})
	if err != nil {
		return Record{}, fmt.Errorf("baseline: %w", err)
	}
	id, err := store.SaveBaseline(ctx, h.Name, st)
	if err != nil {
		return Record{}, fmt.Errorf("baseline: %w", err)
	}
	d := BaselineDone{Snapshot: id, Taken: st.Taken, Files: len(st.Files)}
	for _, p := range st.Errors {
		d.Problems = append(d.Problems, p.Collector+": "+p.Error)
	}
	return NewRecord(KindBaseline, "integrity", d)
}

// noteApplied records the baseline's snapshot on the host's result, for
// the summary.
func (Baseline) noteApplied(hr *HostResult, prior, done Record) {
	var d BaselineDone
	if done.Decode(&d) == nil {
		hr.Baseline = &d
	}
}

// Verify has nothing on the host to look at: the baseline is in the
// repository.
func (b Baseline) Verify(ctx context.Context, h *Host, done Record) error { return nil }

// Revert leaves the host alone (nothing was changed) and the snapshot in
// the repository (it describes the host as it was).
func (b Baseline) Revert(ctx context.Context, h *Host, prior, done Record) error { return nil }

// BaselineTarget is the baseline step's target: its journal ID is
// baseline:integrity.
const BaselineTarget = "integrity"

// NoBaseline says why lockdown takes no baseline under plan p ("" when
// it takes one): `holiday plan` prints it, and restore's gate, finding no
// baseline, says the same.
func NoBaseline(p *plans.Plan) string {
	if p == nil || p.Repository == nil {
		return "no baseline: the plan names no repository to keep it in; restore cannot check this host"
	}
	return ""
}
