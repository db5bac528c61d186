package incident

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/holiday-ops/holiday/internal/integrity"
)

// WriteCheck prints check results for an operator: per host the verdict,
// then indicators and drift one per line with what they name; churn is
// counted, and listed with verbose.
func WriteCheck(w io.Writer, cs []HostCheck, verbose bool) {
	for i, c := range cs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if c.Error != "" {
			fmt.Fprintf(w, "%s: NOT CHECKED: %s\n", c.Host, c.Error)
			continue
		}
		r := c.Result
		fmt.Fprintf(w, "%s: %s\n", c.Host, r.Verdict())
		fmt.Fprintf(w, "  baseline %s taken %s; checked %s", shortID(c.Baseline), r.Baseline.UTC().Format(time.RFC3339), r.Checked.UTC().Format(time.RFC3339))
		if r.Took != "" {
			fmt.Fprintf(w, " in %s", r.Took)
		}
		if c.Agent != "" {
			fmt.Fprintf(w, " by a fresh agent %s", shortID(c.Agent))
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, f := range r.Findings {
			if f.Class == integrity.Churn && !verbose {
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", strings.ToUpper(string(f.Class)), f.Kind, f.Object, f.Detail)
		}
		tw.Flush()
		if n := r.Count(integrity.Churn); n > 0 && !verbose {
			fmt.Fprintf(w, "  churn: %d (%s; -v lists them)\n", n, churnSummary(r))
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  could not fully collect %s: %s\n", p.Collector, p.Error)
		}
	}
}

func churnSummary(r *integrity.Result) string {
	count := map[string]int{}
	var order []string
	for _, f := range r.Of(integrity.Churn) {
		if count[f.Kind] == 0 {
			order = append(order, f.Kind)
		}
		count[f.Kind]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[k], k))
	}
	return strings.Join(parts, ", ")
}

func shortID(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// WriteBaselines prints the outcome of Baselines.
func WriteBaselines(w io.Writer, bs []HostBaseline) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSNAPSHOT\tFILES\tTIME\tPROBLEMS")
	for _, b := range bs {
		if b.Error != "" {
			fmt.Fprintf(tw, "%s\tNOT TAKEN\t-\t%.1fs\t%s\n", b.Host, b.Took.Seconds(), b.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1fs\t%d\n", b.Host, shortID(b.Snapshot), b.Files, b.Took.Seconds(), b.Problems)
	}
	tw.Flush()
}

// WriteEvidence prints an evidence run: where it is stored and each
// step's time.
func WriteEvidence(w io.Writer, e EvidenceResult) {
	if e.Error != "" {
		fmt.Fprintf(w, "%s: evidence NOT STORED: %s\n", e.Host, e.Error)
		return
	}
	fmt.Fprintf(w, "%s: evidence stored as snapshot %s (%s, %d items, %d bytes) in %.1fs\n",
		e.Host, shortID(e.Snapshot), EvidenceFile, e.Items, e.Bytes, e.Took.Seconds())
	if cu := e.Custody; cu != nil && cu.Acquisition != nil {
		fmt.Fprintf(w, "  by %s with a fresh agent %s; window since %s\n", cu.Operator, shortID(cu.AgentSHA256), cu.Since.Format(time.RFC3339))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, s := range cu.Acquisition.Steps {
			status := fmt.Sprintf("%d items", s.Items)
			if s.Error != "" {
				status += "; " + s.Error
			}
			fmt.Fprintf(tw, "  %s\t%s\t%.2fs\t%s\n", s.Name, s.Start.Format("15:04:05.000"), s.End.Sub(s.Start).Seconds(), status)
		}
		tw.Flush()
	}
}
