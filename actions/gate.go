package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/journal"
)

// HostKeptClosed is restore's status for a host its integrity gate did
// not reopen (indicators found, or it could not be checked): nothing was
// reverted, its services stay stopped and its firewall stays. The journal
// records the verdict.
const HostKeptClosed = "kept-closed"

// GateVerdict is restore's integrity gate for one host, as the journal
// records it (the restore's run-begin entry) and the result shows it.
// restore fills it in before reverting anything (DESIGN §8).
type GateVerdict struct {
	// Checked: the host was compared with its baseline.
	Checked bool   `json:"checked"`
	Verdict string `json:"verdict"` // "no indicators found", "2 compromise indicator(s) found", "not checked: …"
	// Reopen: restore reverts the lockdown. False: kept closed.
	Reopen     bool     `json:"reopen"`
	Indicators int      `json:"indicators"`
	Drift      int      `json:"drift"`
	Findings   []string `json:"findings,omitempty"` // the indicators, one line each
	// AcceptedFindings is the operator's reason (--accept-findings) for
	// reopening a host with indicators, or one that could not be checked.
	AcceptedFindings string    `json:"accepted_findings,omitempty"`
	Baseline         string    `json:"baseline,omitempty"` // the snapshot compared with
	Evidence         string    `json:"evidence,omitempty"` // the kind:evidence snapshot taken
	EvidenceError    string    `json:"evidence_error,omitempty"`
	FirstIndicator   time.Time `json:"first_indicator,omitzero"`
	// Rollback is the newest backup snapshot older than the first
	// indicator: what `holiday rollback` should write back.
	Rollback string `json:"rollback,omitempty"`
	Why      string `json:"why"`
	// CheckJSON and EvidenceJSON are the gate's check and evidence on
	// the control node, as `holiday report --check/--evidence` read them.
	CheckJSON    string `json:"check_json,omitempty"`
	EvidenceJSON string `json:"evidence_json,omitempty"`
	// Isolate: kept closed for indicators, and the plan says
	// on_compromise: isolate — restore isolates the host (on top of its
	// lockdown firewall) instead of leaving it as it is.
	Isolate bool `json:"isolate,omitempty"`
	// Isolated is what became of that: IsolatedNow or IsolatedAlready;
	// IsolateError why it failed (the host stays as lockdown left it).
	Isolated     string `json:"isolated,omitempty"`
	IsolateError string `json:"isolate_error,omitempty"`
}

// What restore's isolation of a kept-closed host did (GateVerdict.Isolated).
const (
	IsolatedNow     = "isolated"
	IsolatedAlready = "already isolated"
)

// isolateStep is containment's step: `holiday isolate`'s only one, and
// the one restore's gate adds to a kept-closed host's journal.
var isolateStep = Step{Slot: SlotFirewall, Kind: KindFirewall, Target: "isolate", Action: Firewall{Isolate: true}}

// isolateKeptClosed isolates a host restore keeps closed for indicators
// when its plan says on_compromise: isolate (DESIGN §8). The step,
// firewall:isolate, goes into the journal of the run being restored,
// after the lockdown's steps — not into a run of its own — so that:
//
//   - restoring again (the gate still finds indicators) sees it applied
//     and leaves it, and never takes isolation off by picking a newer run;
//   - restore --accept-findings reverts newest first: isolation (back to
//     the lockdown firewall), then the lockdown (back to the rules from
//     before it), each exactly;
//   - holiday isolate --undo finds it (the latest run holding an
//     isolate step not reverted) and reverts that step alone: the host is
//     locked down again, and the next restore's gate decides anew.
//
// A host without a lockdown firewall is isolated on its own rules, as
// holiday isolate does. If applying fails, the step is reverted like a
// failed lockdown step: the host stays as lockdown left it.
func isolateKeptClosed(ctx context.Context, o *Options, write journalWrite, h *Host, steps []JournaledStep, hr *HostResult) {
	g := hr.Gate
	for _, s := range steps {
		if s.ID == isolateStep.ID() && !s.Reverted && s.HasDone && s.ApplyErr == "" {
			g.Isolated = IsolatedAlready
			return
		}
	}
	fail := func(err error) {
		g.IsolateError = err.Error()
		hr.Error = strings.TrimPrefix(hr.Error+"; isolating: "+err.Error(), "; ")
	}
	o.progress(Progress{Host: h.Name, Step: isolateStep.ID(), What: "isolate (on_compromise: isolate)"})
	a := isolateStep.Action
	prior, err := a.Observe(ctx, h)
	if err != nil {
		fail(fmt.Errorf("observe: %w; nothing changed", err))
		return
	}
	if err := write(journal.Entry{Step: isolateStep.ID(), Kind: KindFirewall, Phase: journal.Intent, Record: mustJSON(prior)}); err != nil {
		fail(fmt.Errorf("journal: %w; nothing changed", err))
		return
	}
	done, aerr := a.Apply(ctx, h, prior)
	e := journal.Entry{Step: isolateStep.ID(), Kind: KindFirewall, Phase: journal.Result, Record: mustJSON(done)}
	if aerr != nil {
		e.Error = aerr.Error()
	}
	werr := write(e)
	sr := StepResult{ID: isolateStep.ID(), Kind: KindFirewall, Target: isolateStep.Target, Status: StepApplied}
	if err := errors.Join(aerr, werr); err != nil {
		sr.Status, sr.Error = StepFailed, err.Error()
		if rerr := revertStep(ctx, o, write, h, KindFirewall, isolateStep.Target, a, prior, done); rerr != nil {
			sr.Status, sr.Error = StepRevertFailed, sr.Error+"; revert: "+rerr.Error()
		} else {
			sr.Status = StepReverted
		}
		hr.Steps = append(hr.Steps, sr)
		fail(err)
		return
	}
	hr.Steps = append(hr.Steps, sr)
	g.Isolated = IsolatedNow
	o.progress(Progress{Host: h.Name, Step: isolateStep.ID(), What: "isolated"})
}

// gateRecord is the restore's run-begin record: the gate's verdict.
type gateRecord struct {
	Gate *GateVerdict `json:"gate"`
}

func (g *GateVerdict) record() json.RawMessage {
	if g == nil {
		return nil
	}
	b, err := json.Marshal(gateRecord{Gate: g})
	if err != nil {
		panic(err) // plain data
	}
	return b
}

// Closed reports whether the host's journal of the run holds a step
// that is not reverted: whether restore would change the host, and so
// whether its gate has anything to decide. A journal that cannot be read
// counts as closed (restore reports why it cannot revert it).
func (j RevertJob) Closed(key journal.Key) bool {
	if notInRun(j.Journal) {
		return false
	}
	jr, err := readJournal(j.Journal, j.Name, key)
	if err != nil {
		return true
	}
	steps, err := Steps(jr)
	if err != nil {
		return true
	}
	for _, s := range steps {
		if !s.Reverted {
			return true
		}
	}
	return false
}
