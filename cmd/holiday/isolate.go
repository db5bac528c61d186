package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/restore"
)

func newIsolateCmd() *cobra.Command {
	var f runFlags
	var undo bool
	cmd := &cobra.Command{
		Use:   "isolate -f PLAN HOST...",
		Short: "Contain hosts: drop everything but the management path, both ways",
		Long: `isolate cuts the named hosts off from everything but the plan's
management path (and the control node): in, only connections from it; out,
only replies to it; both families. Same safety protocol as the lockdown
firewall (dead-man, confirmation over a new SSH connection), journaled as
its own run. Undo with holiday isolate --undo (or holiday restore).

On a host under holiday's lockdown firewall, isolation goes on top of it,
straight from the lockdown rules to isolate's in one transaction per family;
isolate --undo puts the lockdown firewall back exactly, and restoring the
lockdown's run reopens the host. isolate --undo also takes off the isolation
restore's gate put on a compromised host (on_compromise: isolate), leaving
it locked down.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.hosts = args
			p, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			if undo {
				res, err := restore.Run(cmd.Context(), o, conn, restore.Options{
					StateDir: f.stateDir, Hosts: selectedHosts(p, args), Command: "isolate", Parallel: f.parallel,
				})
				if err != nil {
					return err
				}
				return printResult(cmd, &f, res, p, cmd.Context())
			}
			if err := actions.CheckPlan(p); err != nil {
				return planError(cmd.ErrOrStderr(), err)
			}
			res, err := actions.Isolate(cmd.Context(), o, actions.IsolateJobs(p, conn, args))
			if err != nil {
				return planError(cmd.ErrOrStderr(), err)
			}
			return printResult(cmd, &f, res, p, cmd.Context())
		},
	}
	f.add(cmd)
	f.addWait(cmd)
	cmd.Flags().BoolVar(&undo, "undo", false, "undo the latest isolation on these hosts (an isolate run, or restore's on_compromise: isolate)")
	return cmd
}
