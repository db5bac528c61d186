package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoLsCmd(f *repoFlags) *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List the files in a snapshot (SNAPSHOT: ID, unique prefix or latest)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := ""
			if len(args) == 2 {
				path = args[1]
			}
			return repocmd.Ls(cmd.Context(), f.with(cmd), args[0], path, long)
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "long listing")
	return cmd
}
