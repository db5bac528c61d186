package main

import (
	"github.com/spf13/cobra"
)

// version is set at link time (-X main.version=...).
var version = "dev"

// usageError marks a bad command line (exit code 1).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "holiday",
		Short: "Back up, lock down and restore a fleet around a long break",
		Long: `holiday turns the pre-holiday checklist into one declarative plan:
back up every host and device, verify the backups restore, stop what
nobody needs, tighten the firewalls — and afterwards put everything
back exactly as it was, checking each host for compromise first.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err}
	})
	root.AddCommand(newPlanCmd())
	root.AddCommand(newRepoCmd())
	root.AddCommand(newDevicesCmd())
	root.AddCommand(newAgentCmd())
	root.AddCommand(newLockdownCmd(), newRestoreCmd(), newStatusCmd(), newIsolateCmd(), newRollbackCmd(), newBackupCmd())
	root.AddCommand(newSaveJournalCmd())
	root.AddCommand(newCheckCmd(), newBaselineCmd(), newEvidenceCmd(), newReportCmd())
	return root
}
