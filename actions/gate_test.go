package actions

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/holiday-ops/holiday/internal/journal"
)

var gateLog struct {
	sync.Mutex
	l []string
}

func init() {
	RegisterKind("gate-test", func(target string) (Action, error) {
		return gateTestAction{target}, nil
	})
}

type gateTestAction struct{ name string }

func (a gateTestAction) Observe(ctx context.Context, h *Host) (Record, error) {
	return NewRecord("gate-test", a.name, map[string]string{"was": "on"})
}
func (a gateTestAction) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	return NewRecord("gate-test", a.name, map[string]string{"did": "off"})
}
func (gateTestAction) Verify(ctx context.Context, h *Host, done Record) error { return nil }
func (a gateTestAction) Revert(ctx context.Context, h *Host, prior, done Record) error {
	gateLog.Lock()
	defer gateLog.Unlock()
	gateLog.l = append(gateLog.l, h.Name+" revert "+a.name)
	return nil
}

// A host the gate does not reopen keeps every step (nothing reverted)
// and its journal records the verdict and the kept-closed end; a reopened
// host is reverted as before and its journal records the verdict too
// (with the operator's reason for accepted findings); a later restore
// without a gate still puts the kept-closed host back.
func TestRevertJournalsGate(t *testing.T) {
	dir := t.TempDir()
	key, _ := journal.NewKey()
	conn := func(name string) func(context.Context) (*Host, func(), error) {
		return func(context.Context) (*Host, func(), error) { return &Host{Name: name}, func() {}, nil }
	}
	var jobs []Job
	for _, n := range []string{"bad", "good", "accepted"} {
		jobs = append(jobs, Job{Name: n, Connect: conn(n), Steps: []Step{
			{Slot: SlotServices, Kind: "gate-test", Target: "svc", Action: gateTestAction{"svc"}},
			{Slot: SlotFirewall, Kind: "gate-test", Target: "fw", Action: gateTestAction{"fw"}},
		}})
	}
	run := NewRunID()
	if _, err := Lockdown(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true, RunID: run}, jobs); err != nil {
		t.Fatal(err)
	}
	verdicts := map[string]*GateVerdict{
		"bad":      {Checked: true, Verdict: "2 compromise indicator(s) found", Indicators: 2, Why: "kept closed", Rollback: "abcd"},
		"good":     {Checked: true, Verdict: "no indicators found", Reopen: true},
		"accepted": {Checked: true, Verdict: "1 compromise indicator(s) found", Indicators: 1, Reopen: true, AcceptedFindings: "lab test host, planted on purpose"},
	}
	var rjobs []RevertJob
	for _, n := range []string{"bad", "good", "accepted"} {
		rjobs = append(rjobs, RevertJob{Name: n, Journal: JournalPath(dir, run, n), Connect: conn(n), Gate: verdicts[n]})
	}
	gateLog.l = nil
	res := RevertJournals(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true, RunID: run}, rjobs)
	status := map[string]HostResult{}
	for _, h := range res.Hosts {
		status[h.Host] = h
	}
	if h := status["bad"]; h.Status != HostKeptClosed || h.Gate == nil || h.Gate.Rollback != "abcd" {
		t.Errorf("bad: %s %+v, want kept-closed with its verdict", h.Status, h.Gate)
	}
	for _, n := range []string{"good", "accepted"} {
		if status[n].Status != HostDone {
			t.Errorf("%s: %s %s, want done", n, status[n].Status, status[n].Error)
		}
	}
	slices.Sort(gateLog.l)
	want := []string{"accepted revert fw", "accepted revert svc", "good revert fw", "good revert svc"}
	if !slices.Equal(gateLog.l, want) {
		t.Errorf("reverts %q, want %q (nothing on bad)", gateLog.l, want)
	}
	for n, v := range verdicts {
		j, err := journal.ReadFile(JournalPath(dir, run, n), key)
		if err != nil {
			t.Fatal(err)
		}
		var begin, end *journal.Entry
		for i, e := range j.Entries {
			if e.Kind == "restore" && e.Phase == journal.RunBegin {
				begin = &j.Entries[i]
			}
			if e.Kind == "restore" && e.Phase == journal.RunEnd {
				end = &j.Entries[i]
			}
		}
		if begin == nil || end == nil {
			t.Fatalf("%s: no restore begin/end in the journal", n)
		}
		var rec gateRecord
		if err := json.Unmarshal(begin.Record, &rec); err != nil || rec.Gate == nil || rec.Gate.Verdict != v.Verdict || rec.Gate.AcceptedFindings != v.AcceptedFindings {
			t.Errorf("%s: journaled gate %s (%v), want %+v", n, begin.Record, err, v)
		}
		if wantEnd := map[bool]string{true: HostDone, false: HostKeptClosed}[v.Reopen]; end.Step != wantEnd {
			t.Errorf("%s: restore ended %q, want %q", n, end.Step, wantEnd)
		}
	}

	// Once the host is dealt with, a restore that reopens it reverts
	// everything the lockdown left.
	gateLog.l = nil
	res = RevertJournals(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true, RunID: run},
		[]RevertJob{{Name: "bad", Journal: JournalPath(dir, run, "bad"), Connect: conn("bad"), Gate: &GateVerdict{Reopen: true, AcceptedFindings: "rolled back"}}})
	if res.Hosts[0].Status != HostDone || !slices.Equal(gateLog.l, []string{"bad revert fw", "bad revert svc"}) {
		t.Errorf("reopening bad later: %s, reverts %q", res.Hosts[0].Status, gateLog.l)
	}
}
