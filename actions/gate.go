package actions

import (
	"encoding/json"
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
