package incident

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/internal/report"
)

// ReportInput turns the JSON of holiday check and holiday evidence, and a
// run's journal entries, into the report's input.
func ReportInput(title string, checks []HostCheck, evs []EvidenceResult, entries []journal.Entry) report.Input {
	in := report.Input{Title: title, Generated: time.Now().UTC(), Journal: entries}
	byHost := map[string]*report.Host{}
	var order []string
	host := func(name string) *report.Host {
		if h, ok := byHost[name]; ok {
			return h
		}
		byHost[name] = &report.Host{Name: name}
		order = append(order, name)
		return byHost[name]
	}
	for _, c := range checks {
		h := host(c.Host)
		h.Baseline, h.Check, h.CheckError = c.Baseline, c.Result, c.Error
	}
	for _, e := range evs {
		if e.Error != "" || e.Custody == nil {
			continue
		}
		ev := &report.Evidence{Snapshot: e.Snapshot, Items: e.Items, Bytes: e.Bytes, Operator: e.Custody.Operator,
			AgentSHA256: e.Custody.AgentSHA256, Acquired: e.Custody.Received}
		if a := e.Custody.Acquisition; a != nil {
			ev.Steps = a.Steps
		}
		host(e.Host).Evidence = ev
	}
	for _, n := range order {
		in.Hosts = append(in.Hosts, *byHost[n])
	}
	return in
}

// ReadCheckJSON reads the output of holiday check --json.
func ReadCheckJSON(path string) ([]HostCheck, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cs []HostCheck
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("%s: not the output of holiday check --json: %w", path, err)
	}
	return cs, nil
}

// ReadEvidenceJSON reads the output of holiday evidence --json.
func ReadEvidenceJSON(path string) (EvidenceResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return EvidenceResult{}, err
	}
	var e EvidenceResult
	if err := json.Unmarshal(b, &e); err != nil || e.Host == "" {
		return EvidenceResult{}, fmt.Errorf("%s: not the output of holiday evidence --json (%v)", path, err)
	}
	return e, nil
}

// RunJournal reads and verifies every host journal of a run.
func RunJournal(stateDir, run string, key journal.Key) ([]journal.Entry, error) {
	files, err := filepath.Glob(filepath.Join(actions.RunDir(stateDir, run), "*.journal"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("run %s: no journals in %s", run, actions.RunDir(stateDir, run))
	}
	var all []journal.Entry
	for _, f := range files {
		j, err := journal.ReadFile(f, key)
		if err != nil {
			return nil, err
		}
		all = append(all, j.Entries...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return all, nil
}

// BuildReport is report.Build over ReportInput.
func BuildReport(title string, checks []HostCheck, evs []EvidenceResult, entries []journal.Entry) *report.Report {
	return report.Build(ReportInput(title, checks, evs, entries))
}
