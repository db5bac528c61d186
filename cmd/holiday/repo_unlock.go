package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoUnlockCmd(f *repoFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks (of dead processes or older than 30 minutes) and a dead writer's temporary files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Unlock(cmd.Context(), f.with(cmd), all)
		},
	}
	cmd.Flags().BoolVar(&all, "remove-all", false, "remove all locks, also those of live processes")
	return cmd
}
