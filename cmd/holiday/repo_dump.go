package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoDumpCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "dump SNAPSHOT FILE",
		Short: "Write one file of a snapshot to stdout",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Dump(cmd.Context(), f.with(cmd), args[0], args[1])
		},
	}
}
