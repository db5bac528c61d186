package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
)

func newLockdownCmd() *cobra.Command {
	var f runFlags
	var withoutBackups, withoutDevices bool
	cmd := &cobra.Command{
		Use:   "lockdown -f PLAN",
		Short: "Stop what the plan names on every host, journaling every step",
		Long: `lockdown runs the plan's per-host steps in order (preflight, backups,
verify, services, firewall, integrity baseline, power off), hosts in parallel and
high-risk hosts first. Each host's backups (one snapshot per source, read
back) are taken before any of its services stops or its firewall changes; a
host whose backup fails is not locked down. Every step is journaled before and after it changes
the host; a failed step reverts what that host started. Ctrl-C stops and
reverts. Undo with holiday restore.

The plan's network devices are backed up beside the hosts, each as a
kind:device snapshot tagged with the run (as holiday devices backup does);
their summary follows the hosts'. A failed device does not stop the hosts.`,
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
			o.WithoutBackups, o.WithoutBaseline = withoutBackups, f.withoutBaseline
			if err := actions.CheckPlan(p); err != nil {
				return planError(cmd.ErrOrStderr(), err)
			}
			// The plan's network devices are read beside the hosts
			// (not with --host, which picks hosts).
			o.RunID = actions.NewRunID()
			devices := func() error { return nil }
			if len(f.hosts) == 0 && !withoutDevices {
				devices = lockdownDevices(cmd, p, o.RunID, f.json)
			}
			release, err := openRunRepo(cmd, p, jobs, &o, withoutBackups, f.withoutBaseline)
			if err != nil {
				return err
			}
			defer release()
			res, err := actions.Lockdown(cmd.Context(), o, jobs)
			if err != nil {
				return planError(cmd.ErrOrStderr(), err)
			}
			herr := printResult(cmd, &f, res, p, cmd.Context())
			if err := backupsError(o.Backups); err != nil {
				return err // every host was refused, unchanged, for it
			}
			derr := devices()
			// the run's snapshots to repository.copy_to, both checked
			herr = errors.Join(herr, lockdownCopy(cmd, p, o.RunID, f.json))
			if herr == nil {
				return derr
			} else if derr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "holiday: devices: %v\n", derr)
			}
			return herr
		},
	}
	f.add(cmd)
	f.addWait(cmd)
	cmd.Flags().BoolVar(&withoutDevices, "without-devices", false, "do not back up the plan's network devices in this run")
	cmd.Flags().BoolVar(&f.withoutBaseline, "without-baseline", false, "lock down without the integrity baseline (restore then cannot check the hosts: they stay closed unless --accept-findings)")
	cmd.Flags().BoolVar(&withoutBackups, "without-backups", false, "lock down without taking the plan's host backups (backups: NOT TAKEN)")
	return cmd
}
