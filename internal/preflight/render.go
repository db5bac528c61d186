package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Output is `holiday plan`'s whole answer: what --json prints, and what
// the table is drawn from.
type Output struct {
	Plan  string    `json:"plan"`
	Name  string    `json:"name,omitempty"`
	Hosts []*Report `json:"hosts"`
	// Repositories are the plan's repository and its copy_to, as found.
	Repositories []*Repository  `json:"repositories,omitempty"`
	Summary      map[string]int `json:"summary"` // hosts per status
	Took         string         `json:"took"`
}

// NewOutput gathers the reports of one run of plan file planFile (the
// plan named name) that took took.
func NewOutput(planFile, name string, reports []*Report, took time.Duration) *Output {
	sum := map[string]int{StatusOK: 0, StatusWarn: 0, StatusRefused: 0, StatusFailed: 0}
	for _, r := range reports {
		sum[r.Status]++
	}
	return &Output{Plan: planFile, Name: name, Hosts: reports, Summary: sum, Took: took.Round(time.Millisecond).String()}
}

// NotReady is the number of hosts lockdown would not run on as they
// stand: refused or not checked.
func (o *Output) NotReady() int { return o.Summary[StatusRefused] + o.Summary[StatusFailed] }

// WriteJSON writes o as indented JSON, for scripts.
func (o *Output) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(o)
}

// WriteTable writes the plan's repositories first (lockdown opens them
// before any host), then one line per host, then indented under it why it
// failed, what lockdown would do there step by step, and the findings;
// then a summary line.
func (o *Output) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	nameW := 4
	for _, r := range o.Hosts {
		nameW = max(nameW, len(r.Name))
	}
	writeRepositories(ew, o.Repositories)
	fmt.Fprintf(ew, "%-*s  %-7s  %-15s  %s\n", nameW, "HOST", "STATUS", "ADDRESS", "DETAILS")
	for _, r := range o.Hosts {
		fmt.Fprintf(ew, "%-*s  %-7s  %-15s  %s\n", nameW, r.Name, r.Status, r.Address, details(r))
		ind := strings.Repeat(" ", nameW+2) + "  "
		if r.Status == StatusFailed && r.Hint != "" {
			fmt.Fprintf(ew, "%shint: %s\n", ind, r.Hint)
		}
		if r.Lockdown != nil {
			writeLockdown(ew, ind, r.Lockdown, r.Status == StatusRefused)
		} else {
			for _, s := range r.Services {
				if s.Exists {
					fmt.Fprintf(ew, "%sstop %s: now %s+%s\n", ind, s.Name, s.Active, s.Enablement)
				}
			}
		}
		for _, f := range r.Findings {
			fmt.Fprintf(ew, "%s%s: %s\n", ind, f.Severity, f.Message)
		}
	}
	n := len(o.Hosts)
	fmt.Fprintf(ew, "\n%d host%s: %d ok, %d warn, %d refused, %d failed (%s)\n", n, plural(n),
		o.Summary[StatusOK], o.Summary[StatusWarn], o.Summary[StatusRefused], o.Summary[StatusFailed], o.Took)
	return ew.err
}

// writeLockdown prints the diff: a heading that always says whether
// backups would be taken, then one line per step in lockdown's order.
func writeLockdown(w io.Writer, ind string, l *Lockdown, refused bool) {
	var notes []string
	if refused {
		notes = append(notes, "once the errors below are fixed")
	}
	if l.Backups != "" {
		notes = append(notes, "backups: NOT TAKEN")
	}
	head := "lockdown would:"
	if len(notes) > 0 {
		head = "lockdown would (" + strings.Join(notes, "; ") + "):"
	}
	fmt.Fprintf(w, "%s%s\n", ind, head)
	if len(l.Steps) == 0 {
		fmt.Fprintf(w, "%s  nothing: the plan names no step for this host\n", ind)
		return
	}
	slotW, stepW := 0, 0
	for _, c := range l.Steps {
		slotW, stepW = max(slotW, len(c.Slot)), max(stepW, len(c.Step))
	}
	for _, c := range l.Steps {
		what := c.What
		if c.Error != "" {
			what = "cannot observe: " + c.Error
		}
		fmt.Fprintf(w, "%s  %-*s  %-*s  %s\n", ind, slotW, c.Slot, stepW, c.Step, what)
	}
}

func details(r *Report) string {
	if r.Status == StatusFailed {
		return r.ErrorKind + ": " + r.Error
	}
	var d []string
	f := r.Facts
	if f == nil {
		return ""
	}
	if f.OS.ID != "" {
		d = append(d, f.OS.ID+" "+f.OS.VersionID)
	}
	d = append(d, f.Init)
	fw := "fw:none"
	if len(f.Firewall.Backends) > 0 {
		fw = "fw:" + strings.Join(f.Firewall.Backends, "+")
	}
	if len(f.Firewall.CoOwners) > 0 {
		fw += "(+" + strings.Join(f.Firewall.CoOwners, ",") + ")"
	}
	d = append(d, fw)
	if r.Sudo != nil && *r.Sudo {
		d = append(d, "sudo")
	} else if r.Agent != nil && r.Agent.UID == 0 {
		d = append(d, "root")
	}
	if r.Agent != nil {
		if r.Agent.Uploaded {
			d = append(d, "agent:uploaded")
		} else {
			d = append(d, "agent:cached")
		}
	}
	if r.ControlAddr != "" {
		in := "outside"
		if r.ControlInManagement != nil && *r.ControlInManagement {
			in = "in"
		}
		d = append(d, "control "+r.ControlAddr+" "+in+" management")
	}
	d = append(d, fmt.Sprintf("%d listening, %d inbound", len(f.Listeners), len(f.Inbound)))
	return strings.Join(d, ", ")
}

// errWriter keeps the first write error, so the table code stays plain.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
