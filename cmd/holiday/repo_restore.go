package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoRestoreCmd(f *repoFlags) *cobra.Command {
	var target string
	var include []string
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR [--include PATH]...",
		Short: "Restore a snapshot, or parts of it, under a folder",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Restore(cmd.Context(), f.with(cmd), args[0], target, include)
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "folder to restore into")
	cmd.Flags().StringSliceVar(&include, "include", nil, "restore only this snapshot path (repeatable)")
	return cmd
}
