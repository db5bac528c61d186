package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
)

func newBackupCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "backup -f PLAN [HOST...]",
		Short: "Take the plan's host backups alone, as lockdown takes them",
		Long: `backup takes each host's backups exactly as lockdown's backup step does —
one snapshot per source, verified before the command ends — and changes
nothing else: no hook runs, no service stops, no firewall changes. Run it
before the break to test the plan's backups; the scheduler runs it for the
plan's schedule.backup.

It is a run of its own (its ID, journaled on this control node, under the
same per-host run lock as lockdown). Its snapshots are tagged holiday,
run:<id>, kind:<files|disk|postgres|mysql> and plan:<name>, and are NOT
pinned: only lockdown's snapshots are. restore never picks a backup run.

HOST names pick hosts (default: every host with backup sources).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f.hosts = append(f.hosts, args...)
			p, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			jobs, err := actions.BackupJobs(p, conn, f.hosts)
			if err != nil {
				return &usageError{err}
			}
			if err := actions.CheckPlan(p); err != nil {
				return planError(cmd.ErrOrStderr(), err)
			}
			o.RunID = actions.NewRunID()
			b, release, err := openBackups(cmd, p, jobs, o.RunID, false)
			if err != nil {
				return err
			}
			defer release()
			o.Backups = b
			res, err := actions.Backup(cmd.Context(), o, jobs)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			perr := printResult(cmd, &f, res, p, cmd.Context())
			if err := backupsError(b); err != nil {
				return err // every host was refused, unchanged, for it
			}
			return perr
		},
	}
	f.add(cmd)
	f.addWait(cmd)
	return cmd
}
