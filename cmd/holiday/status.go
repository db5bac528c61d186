package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
)

func newStatusCmd() *cobra.Command {
	var f runFlags
	var run string
	cmd := &cobra.Command{
		Use:   "status -f PLAN",
		Short: "Check on every host that the lockdown still holds",
		Long: `status runs each journaled step's Verify against the host itself, not
only the journal: a service someone started by hand during the break
shows as drift (exit code 4).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			o.Progress = nil
			jobs, runID, err := journalJobs(cmd.Context(), p, conn, &f, run, false)
			if err != nil {
				return err
			}
			o.RunID = runID
			res := actions.VerifyJournals(cmd.Context(), o, jobs)
			return printResult(cmd, &f, res, p, cmd.Context())
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&run, "run", "", "the run to check (default: the latest)")
	return cmd
}
