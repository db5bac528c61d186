package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoInitCmd(f *repoFlags) *cobra.Command {
	var o repocmd.InitOptions
	cmd := &cobra.Command{
		Use:   "init [--object-lock-days N]",
		Short: "Create a new repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Init(cmd.Context(), f.with(cmd), o)
		},
	}
	cmd.Flags().IntVar(&o.ObjectLockDays, "object-lock-days", 0, "S3 only: retain every file but locks this many days under Object Lock (a missing bucket is created with Object Lock)")
	cmd.Flags().StringVar(&o.ObjectLockMode, "object-lock-mode", "", "governance (default) or compliance: compliance cannot be lifted by anyone until the date")
	return cmd
}
