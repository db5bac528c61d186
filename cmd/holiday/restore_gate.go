package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

// printGate is the summary's lines for restore's integrity gate on one
// host: the verdict, and for a host kept closed what to do next.
func printGate(w io.Writer, h actions.HostResult, planFile, run string) {
	g := h.Gate
	if g == nil {
		return
	}
	switch {
	case g.AcceptedFindings != "":
		fmt.Fprintf(w, "%s: gate: %s; reopened anyway, as --accept-findings said: %q (journaled)\n", h.Host, g.Verdict, g.AcceptedFindings)
	case g.Reopen && !g.Checked:
		fmt.Fprintf(w, "%s: gate: %s\n", h.Host, g.Verdict)
	case g.Reopen:
		fmt.Fprintf(w, "%s: gate: %s (against baseline %.8s)\n", h.Host, g.Verdict, g.Baseline)
	default:
		fmt.Fprintf(w, "%s: gate: %s: KEPT CLOSED (services stopped, firewall held; nothing reverted)\n", h.Host, g.Verdict)
	}
	for i, f := range g.Findings {
		if i == 10 {
			fmt.Fprintf(w, "%s:   … and %d more (holiday report)\n", h.Host, len(g.Findings)-i)
			break
		}
		fmt.Fprintf(w, "%s:   %s\n", h.Host, f)
	}
	if g.Evidence != "" {
		fmt.Fprintf(w, "%s: evidence: snapshot %.8s (kind:evidence), taken before anything changed\n", h.Host, g.Evidence)
	} else if g.EvidenceError != "" {
		fmt.Fprintf(w, "%s: evidence: NOT TAKEN: %s\n", h.Host, g.EvidenceError)
	}
	if g.Reopen {
		return
	}
	switch {
	case g.Isolated != "":
		how := "on_compromise: isolate"
		if g.Isolated == actions.IsolatedAlready {
			how += "; already by an earlier restore"
		}
		fmt.Fprintf(w, "%s: isolated: only the management path reaches it; its own outgoing connections are dropped (%s)\n", h.Host, how)
		fmt.Fprintf(w, "%s: back to the lockdown firewall alone: holiday isolate --undo -f %s %s\n", h.Host, planFile, h.Host)
	case g.IsolateError != "":
		fmt.Fprintf(w, "%s: NOT ISOLATED (on_compromise: isolate): %s; it stays as lockdown left it\n", h.Host, g.IsolateError)
	}
	if g.Indicators > 0 {
		if g.Rollback != "" {
			fmt.Fprintf(w, "%s: roll back: holiday rollback -f %s %s --snapshot %.8s (the newest backup before %s)\n",
				h.Host, planFile, h.Host, g.Rollback, g.FirstIndicator.UTC().Format(time.RFC3339))
		} else {
			fmt.Fprintf(w, "%s: roll back: no backup of this host is older than the first indicator; rebuild it\n", h.Host)
		}
		if g.CheckJSON != "" {
			cmd := "holiday report --check " + g.CheckJSON
			if g.EvidenceJSON != "" {
				cmd += " --evidence " + g.EvidenceJSON
			}
			fmt.Fprintf(w, "%s: report: %s --run %s\n", h.Host, cmd, run)
		}
	}
	fmt.Fprintf(w, "%s: to reopen it anyway: holiday restore -f %s --host %s --accept-findings \"WHY\"\n", h.Host, planFile, h.Host)
}

// gateError is restore's error when its gate found indicators on a host:
// exit 5 (exitcode.Compromise), whether or not they were accepted; nil
// when no host had any.
func gateError(res actions.RunResult) error {
	var kept, accepted []string
	for _, h := range res.Hosts {
		switch {
		case h.Gate == nil || h.Gate.Indicators == 0:
		case h.Gate.Reopen:
			accepted = append(accepted, h.Host)
		default:
			kept = append(kept, h.Host)
		}
	}
	switch {
	case len(kept) > 0:
		return exitcode.WithHint(exitcode.Compromise, fmt.Errorf("compromise indicators on %s: kept closed", strings.Join(kept, ", ")),
			"evidence is taken; holiday report writes the incident report, holiday rollback writes the named snapshot back")
	case len(accepted) > 0:
		return exitcode.With(exitcode.Compromise, fmt.Errorf("compromise indicators on %s: reopened anyway (--accept-findings)", strings.Join(accepted, ", ")))
	}
	return nil
}
