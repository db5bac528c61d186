// Package report builds holiday's incident report (DESIGN §8): cause,
// attack timeline, handling, prevention and summary, prefilled from a
// check's findings, the evidence's custody record and the run's journal,
// and renders it as Markdown, one self-contained HTML file, or JSON.
//
// The prefilled text is a draft for the operator to finish: it states
// what holiday saw and names its sources, and marks what a person has to
// decide. It imports internal/integrity and internal/journal only.
package report

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/internal/journal"
)

// Input is what the report is prefilled from.
type Input struct {
	Title     string
	Generated time.Time
	Hosts     []Host
	// Journal are the run's journal entries (lockdown, restore, isolate),
	// any hosts: the handling and the timeline cite them.
	Journal []journal.Entry
}

// Host is one host's check and evidence.
type Host struct {
	Name       string
	Baseline   string // the baseline snapshot compared with
	Check      *integrity.Result
	CheckError string
	Evidence   *Evidence
}

// Evidence is what the report says of one evidence snapshot.
type Evidence struct {
	Snapshot    string              `json:"snapshot"`
	Items       int                 `json:"items"`
	Bytes       int64               `json:"bytes"`
	Operator    string              `json:"operator"`
	AgentSHA256 string              `json:"agent_sha256"`
	Acquired    time.Time           `json:"acquired"`
	Steps       []integrity.AcqStep `json:"steps"`
}

// Report is the incident report.
type Report struct {
	Title      string        `json:"title"`
	Generated  time.Time     `json:"generated"`
	Summary    string        `json:"summary"`
	Cause      []string      `json:"cause"`
	Timeline   []Event       `json:"timeline"`
	Handling   []string      `json:"handling"`
	Prevention []string      `json:"prevention"`
	Hosts      []HostSummary `json:"hosts"`
}

// Event is one line of the timeline.
type Event struct {
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	What   string    `json:"what"`
	Source string    `json:"source"` // where holiday learned it: check, evidence, journal
}

// HostSummary is one host's part of the report.
type HostSummary struct {
	Name           string              `json:"name"`
	Verdict        string              `json:"verdict"`
	Baseline       string              `json:"baseline,omitempty"`
	FirstIndicator time.Time           `json:"first_indicator,omitzero"`
	Indicators     []integrity.Finding `json:"indicators"`
	Drift          []integrity.Finding `json:"drift"`
	Churn          int                 `json:"churn"`
	Evidence       *Evidence           `json:"evidence,omitempty"`
	Error          string              `json:"error,omitempty"`
}

// entryVectors name the likely way in for the indicators that tell one.
var entryVectors = []struct {
	kind, cause, prevent string
}{
	{"login-after-failures", "password guessing over SSH succeeded", "Turn off SSH password logins (PasswordAuthentication no), rate-limit or block SSH from outside the management ranges, and rotate the passwords of the accounts that logged in."},
	{"webshell", "a web application was made to write a script into its web root", "Patch or remove the web application whose root held the webshell; make web roots read-only to the web server's user and keep uploads outside them."},
	{"new-authorized-key", "an SSH key was added for persistent access", "Review authorized_keys of every account; manage keys centrally (AuthorizedKeysFile under /etc, root-owned)."},
	{"new-uid0-account", "a second root account was created", "Remove the account; alert on changes to /etc/passwd."},
	{"changed-binary", "system binaries were replaced (a rootkit or trojan)", "Rebuild or roll the host back from a snapshot older than the first indicator; do not trust binaries on it."},
	{"hidden-process", "a rootkit hides processes from ps", "Roll the host back from a snapshot older than the first indicator; rebuild if the kernel may be affected."},
	{"new-kernel-module", "a kernel module was loaded (possible kernel rootkit)", "Rebuild the host; enable module signing and lock module loading after boot."},
	{"ld.so.preload", "a library is preloaded into every process (userland rootkit)", "Remove /etc/ld.so.preload entries and roll back the library they name."},
}

// Build prefills the report from its input.
func Build(in Input) *Report {
	r := &Report{Title: in.Title, Generated: in.Generated.UTC()}
	if r.Title == "" {
		r.Title = "Incident report"
	}
	seenCause := map[string]bool{}
	var compromised, clean, unchecked []string
	for _, h := range in.Hosts {
		hs := HostSummary{Name: h.Name, Baseline: h.Baseline, Evidence: h.Evidence, Error: h.CheckError}
		if c := h.Check; c != nil {
			hs.Verdict = c.Verdict()
			hs.Indicators, hs.Drift, hs.Churn = c.Of(integrity.Indicator), c.Of(integrity.Drift), c.Count(integrity.Churn)
			hs.FirstIndicator = c.FirstIndicator()
			r.Timeline = append(r.Timeline, Event{Time: c.Baseline, Host: h.Name, What: "baseline taken (snapshot " + short(h.Baseline) + ")", Source: "check"})
			for _, f := range hs.Indicators {
				if !f.Time.IsZero() {
					r.Timeline = append(r.Timeline, Event{Time: f.Time, Host: h.Name, What: fmt.Sprintf("%s %s: %s", f.Kind, f.Object, f.Detail), Source: "check"})
				}
			}
			r.Timeline = append(r.Timeline, Event{Time: c.Checked, Host: h.Name, What: "checked: " + c.Verdict(), Source: "check"})
			for _, v := range entryVectors {
				for _, f := range hs.Indicators {
					if f.Kind == v.kind && !seenCause[v.kind] {
						seenCause[v.kind] = true
						r.Cause = append(r.Cause, fmt.Sprintf("%s: %s (%s %s)", h.Name, v.cause, f.Kind, f.Object))
						r.Prevention = append(r.Prevention, v.prevent)
					}
				}
			}
			if len(hs.Indicators) > 0 {
				compromised = append(compromised, h.Name)
			} else {
				clean = append(clean, h.Name)
			}
		} else {
			hs.Verdict = "not checked"
			unchecked = append(unchecked, h.Name)
		}
		if e := h.Evidence; e != nil {
			r.Timeline = append(r.Timeline, Event{Time: e.Acquired, Host: h.Name, What: fmt.Sprintf("evidence stored as snapshot %s (%d items, SHA-256 manifest, custody log)", short(e.Snapshot), e.Items), Source: "evidence"})
			r.Handling = append(r.Handling, fmt.Sprintf("%s: live evidence saved before any change, by %s with a fresh agent %s: snapshot %s.", h.Name, e.Operator, short(e.AgentSHA256), e.Snapshot))
		}
		if len(hs.Indicators) > 0 {
			when := "the first indicator"
			if !hs.FirstIndicator.IsZero() {
				when = hs.FirstIndicator.Format(time.RFC3339)
			}
			r.Handling = append(r.Handling, fmt.Sprintf("%s: kept closed (services stopped, firewall held). Roll back from the newest snapshot older than %s: holiday rollback.", h.Name, when))
		}
		r.Hosts = append(r.Hosts, hs)
	}
	lifted := map[[2]string]bool{} // run, host: an isolation lifted
	for _, e := range in.Journal {
		if e.Step == isolationStep && e.Phase == journal.RevertResult && e.Error == "" {
			lifted[[2]string{e.Run, e.Host}] = true
		}
	}
	for _, e := range in.Journal {
		if line := gateHandling(e); line != "" {
			r.Handling = append(r.Handling, line)
		}
		if line := isolationHandling(e, lifted[[2]string{e.Run, e.Host}]); line != "" {
			r.Handling = append(r.Handling, line)
		}
		if e.Phase == journal.Result || e.Phase == journal.RevertResult || e.Phase == journal.RunBegin || e.Phase == journal.RunEnd {
			what := string(e.Phase)
			if (e.Phase == journal.RunBegin || e.Phase == journal.RunEnd) && e.Kind != "" {
				what += " " + e.Kind
			}
			if e.Step != "" {
				what += " " + e.Step
			}
			if e.Error != "" {
				what += ": " + e.Error
			}
			r.Timeline = append(r.Timeline, Event{Time: e.Time, Host: e.Host, What: "run " + e.Run + ": " + what, Source: "journal"})
		}
	}
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].Time.Before(r.Timeline[j].Time) })
	if len(r.Cause) == 0 && len(compromised) > 0 {
		r.Cause = append(r.Cause, "No indicator names the way in; read the evidence (auth summary, access-log hits, changed files) to find it. [to be completed]")
	}
	if len(compromised) == 0 {
		r.Cause = append(r.Cause, "No compromise indicators found. [to be completed if there was an incident]")
	}
	r.Prevention = append(r.Prevention, "Take a new baseline after the hosts are restored or rebuilt: it is what the next check compares with.")
	switch {
	case len(compromised) > 0:
		r.Summary = fmt.Sprintf("Compromise indicators on %s (%d host(s)); no indicators found on %d; %d not checked. Evidence was taken before any change; the affected hosts stay closed until rolled back.",
			strings.Join(compromised, ", "), len(compromised), len(clean), len(unchecked))
	default:
		r.Summary = fmt.Sprintf("No indicators found on %d host(s); %d not checked. (The check ran on each host's own kernel: \"no indicators found\", not \"clean\".)", len(clean), len(unchecked))
	}
	return r
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// isolationStep is the journal step of a host's isolation (holiday
// isolate, or a restore whose gate isolated the host).
const isolationStep = "firewall:isolate"

// isolationHandling is the handling line for an isolation's result or
// its undoing, as the journal records them; lifted: a later entry of the
// run lifted it (the line then names no way to lift it).
func isolationHandling(e journal.Entry, lifted bool) string {
	if e.Step != isolationStep {
		return ""
	}
	at := e.Time.UTC().Format(time.RFC3339)
	switch {
	case e.Phase == journal.Result && e.Error == "" && lifted:
		return fmt.Sprintf("%s: isolated at %s (run %s): only the management path reached it, and it answered only that.", e.Host, at, e.Run)
	case e.Phase == journal.Result && e.Error == "":
		return fmt.Sprintf("%s: isolated at %s (run %s): only the management path reaches it, and it answers only that; `holiday isolate --undo` lifts it.", e.Host, at, e.Run)
	case e.Phase == journal.Result:
		return fmt.Sprintf("%s: isolating it failed at %s (run %s): %s.", e.Host, at, e.Run, e.Error)
	case e.Phase == journal.RevertResult && e.Error == "":
		return fmt.Sprintf("%s: isolation lifted at %s (run %s).", e.Host, at, e.Run)
	case e.Phase == journal.RevertResult:
		return fmt.Sprintf("%s: lifting the isolation failed at %s (run %s): %s.", e.Host, at, e.Run, e.Error)
	}
	return ""
}

// gateHandling is the handling line for a restore's integrity gate, as
// its run-begin journal entry records it: a host reopened despite its
// findings (with the operator's reason), or one kept closed.
func gateHandling(e journal.Entry) string {
	if e.Phase != journal.RunBegin || e.Kind != "restore" || len(e.Record) == 0 {
		return ""
	}
	var rec struct {
		Gate *struct {
			Verdict  string `json:"verdict"`
			Reopen   bool   `json:"reopen"`
			Accepted string `json:"accepted_findings"`
		} `json:"gate"`
	}
	if json.Unmarshal(e.Record, &rec) != nil || rec.Gate == nil {
		return ""
	}
	g := rec.Gate
	switch {
	case g.Accepted != "":
		return fmt.Sprintf("%s: reopened by restore (run %s) at %s despite the gate's verdict (%s); the operator accepted the findings: %q.", e.Host, e.Run, e.Time.UTC().Format(time.RFC3339), g.Verdict, g.Accepted)
	case !g.Reopen:
		return fmt.Sprintf("%s: restore (run %s) at %s kept it closed: %s.", e.Host, e.Run, e.Time.UTC().Format(time.RFC3339), g.Verdict)
	}
	return ""
}
