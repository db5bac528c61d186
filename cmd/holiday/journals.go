package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
)

// printOffsite says where the run's journals were kept besides this
// control node and the hosts: the repository, or — loudly, on stderr —
// that they were not, with the command that saves them once the
// repository is back.
func printOffsite(cmd *cobra.Command, f *runFlags, res actions.RunResult) {
	off := res.Offsite
	if off == nil {
		return
	}
	if off.Error == "" {
		if !f.json {
			fmt.Fprintf(cmd.OutOrStdout(), "journals: saved to the repository %s (%d kind:journal snapshot%s, tag run:%s)\n",
				off.Repository, len(off.Snapshots), plural(len(off.Snapshots)), res.Run)
		}
		return
	}
	w := cmd.ErrOrStderr()
	fmt.Fprintf(w, "\nWARNING: the journals of run %s were NOT saved to the repository: %s\n", res.Run, off.Error)
	if off.Hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", off.Hint)
	}
	if len(off.Snapshots) > 0 {
		var saved []string
		for h := range off.Snapshots {
			saved = append(saved, h)
		}
		sort.Strings(saved)
		fmt.Fprintf(w, "  (saved for %s only)\n", strings.Join(saved, ", "))
	}
	fmt.Fprintf(w, "  Only this control node and the hosts hold them: if this control node is lost, another one\n")
	fmt.Fprintf(w, "  can restore the run only from the hosts' copies. Once the repository is reachable, run:\n")
	fmt.Fprintf(w, "    %s\n", saveJournalCommand(f, res.Run))
}

// saveJournalCommand is the command that saves run's journals again,
// with the flags this run was given that differ from the defaults.
func saveJournalCommand(f *runFlags, run string) string {
	c := fmt.Sprintf("holiday save-journal -f %s --run %s", f.plan, run)
	if f.stateDir != defaultStateDir() {
		c += " --state-dir " + f.stateDir
	}
	if f.keyFile != defaultKeyFile() {
		c += " --journal-key " + f.keyFile
	}
	return c
}

func newSaveJournalCmd() *cobra.Command {
	var f runFlags
	var run string
	cmd := &cobra.Command{
		Use:   "save-journal -f PLAN [--run ID]",
		Short: "Save a run's journals (and the key that verifies them) to the plan's repository",
		Long: `save-journal stores each host's journal of a run, as this control node
holds it, in the plan's repository as a kind:journal snapshot, with the
journal key that verifies it (encrypted by the repository). Lockdown,
isolate and restore do this at their end; run it when they could not reach
the repository, so that another control node with only the plan and the
repository password can restore the run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.json = true // no progress lines
			_, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			conn.Close()
			off, err := actions.SaveRunJournals(cmd.Context(), o, run)
			if err != nil {
				return err
			}
			var hosts []string
			for h, id := range off.Snapshots {
				hosts = append(hosts, fmt.Sprintf("%s: snapshot %.8s", h, id))
			}
			sort.Strings(hosts)
			fmt.Fprintf(cmd.OutOrStdout(), "journals saved to the repository %s:\n  %s\n", off.Repository, strings.Join(hosts, "\n  "))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.plan, "file", "f", "", "the plan file (required)")
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where runs and their journals live on this control node")
	fl.StringVar(&f.keyFile, "journal-key", defaultKeyFile(), "the control node's journal key")
	fl.StringVar(&run, "run", "", "the run (default: the newest in the state dir)")
	cmd.MarkFlagRequired("file")
	return cmd
}
