package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
)

func newLockdownCmd() *cobra.Command {
	var f runFlags
	var withoutBackups bool
	cmd := &cobra.Command{
		Use:   "lockdown -f PLAN",
		Short: "Stop what the plan names on every host, journaling every step",
		Long: `lockdown runs the plan's per-host steps in order (preflight, baseline,
backups, verify, services, firewall, power off), hosts in parallel and
high-risk hosts first. Every step is journaled before and after it changes
the host; a failed step reverts what that host started. Ctrl-C stops and
reverts. Undo with holiday restore.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			jobs := actions.Jobs(p, conn, f.hosts)
			if len(jobs) == 0 {
				return &usageError{errNoHosts}
			}
			o.WithoutBackups = withoutBackups
			res, err := actions.Lockdown(cmd.Context(), o, jobs)
			if err != nil {
				return planError(cmd.ErrOrStderr(), err)
			}
			return printResult(cmd, &f, res, p, cmd.Context())
		},
	}
	f.add(cmd)
	f.addWait(cmd)
	cmd.Flags().BoolVar(&withoutBackups, "without-backups", false, "lock down hosts whose plan names backups although this build cannot take them (backups: NOT TAKEN)")
	return cmd
}
