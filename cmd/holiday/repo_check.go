package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoCheckCmd(f *repoFlags) *cobra.Command {
	var readData bool
	var subset string
	cmd := &cobra.Command{
		Use:   "check [--read-data | --read-data-subset N/T]",
		Short: "Verify the repository and name what any damage touches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Check(cmd.Context(), f.with(cmd), readData, subset)
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "read and verify every blob")
	cmd.Flags().StringVar(&subset, "read-data-subset", "", "read and verify the packs of group N of T")
	return cmd
}
