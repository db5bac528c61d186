package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/internal/journal"
)

func newReportCmd() *cobra.Command {
	var checkFile, run, stateDir, keyFile, format, out, title string
	var evidence []string
	cmd := &cobra.Command{
		Use:   "report --check FILE [--evidence FILE...] [--run ID] [--format md|html|json] [-o FILE]",
		Short: "Write the incident report: cause, timeline, handling, prevention, summary",
		Long: `report prefills an incident report from the JSON of holiday check and
holiday evidence and from a run's journal (--run: lockdown, restore or
isolate). It writes Markdown, one self-contained HTML file, or JSON. The
text is a draft: it states what holiday saw and marks what a person has
to complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if checkFile == "" {
				return &usageError{errors.New("--check FILE is required (the output of holiday check --json)")}
			}
			checks, err := incident.ReadCheckJSON(checkFile)
			if err != nil {
				return &usageError{err}
			}
			var evs []incident.EvidenceResult
			for _, f := range evidence {
				e, err := incident.ReadEvidenceJSON(f)
				if err != nil {
					return &usageError{err}
				}
				evs = append(evs, e)
			}
			var entries []journal.Entry
			if run != "" {
				key, err := journal.LoadOrCreateKey(keyFile)
				if err != nil {
					return err
				}
				if entries, err = incident.RunJournal(stateDir, run, key); err != nil {
					return err
				}
			}
			r := incident.BuildReport(title, checks, evs, entries)
			var b bytes.Buffer
			switch format {
			case "md", "markdown":
				err = r.Markdown(&b)
			case "html":
				err = r.HTML(&b)
			case "json":
				err = r.JSON(&b)
			default:
				return &usageError{fmt.Errorf("--format %q: md, html or json", format)}
			}
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b.Bytes())
				return err
			}
			return os.WriteFile(out, b.Bytes(), 0o600)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&checkFile, "check", "", "the output of holiday check --json")
	fl.StringSliceVar(&evidence, "evidence", nil, "the output of holiday evidence --json (repeatable)")
	fl.StringVar(&run, "run", "", "a run whose journal goes into the timeline and handling")
	fl.StringVar(&stateDir, "state-dir", defaultStateDir(), "where runs and their journals live on this control node")
	fl.StringVar(&keyFile, "journal-key", defaultKeyFile(), "the control node's journal key")
	fl.StringVar(&format, "format", "md", "md, html or json")
	fl.StringVarP(&out, "output", "o", "", "write to FILE (default stdout)")
	fl.StringVar(&title, "title", "Incident report", "the report's title")
	return cmd
}
