package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/restore"
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
			hosts := selectedHosts(p, f.hosts)
			if len(hosts) == 0 {
				return &usageError{errNoHosts}
			}
			res, err := restore.Status(cmd.Context(), o, conn, restore.Options{StateDir: f.stateDir, Hosts: hosts, Run: run})
			if err != nil {
				return err
			}
			return printResult(cmd, &f, res, p, cmd.Context())
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&run, "run", "", "the run to check (default: the latest)")
	return cmd
}
