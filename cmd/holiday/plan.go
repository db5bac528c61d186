package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Check a plan and show what lockdown would do",
	}
	plan.AddCommand(&cobra.Command{
		Use:   "validate FILE...",
		Short: "Load, validate and lint plans without touching any host",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("not implemented yet")
		},
	})
	return plan
}
