package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
)

func newRepoInitCmd(f *repoFlags) *cobra.Command {
	var o repocmd.InitOptions
	var planFile string
	var copyTo bool
	cmd := &cobra.Command{
		Use:   "init [--object-lock-days N] | init -f PLAN [--copy-to]",
		Short: "Create a new repository",
		Long: `init creates a repository at --repo, or with -f PLAN the plan's repository
(with --copy-to its copy_to): its url, password and S3 settings, and the
Object Lock of its object_lock: {days: N, mode: governance|compliance}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if planFile == "" {
				if copyTo {
					return &usageError{errors.New("--copy-to needs -f PLAN")}
				}
				return repocmd.Init(cmd.Context(), f.with(cmd), o)
			}
			for _, fl := range []string{"repo", "password-file", "object-lock-days", "object-lock-mode"} {
				if cmd.Flags().Changed(fl) {
					return &usageError{errors.New("--" + fl + " and -f PLAN: the plan says where the repository is and how it is locked; give one")}
				}
			}
			p, err := plans.Load(planFile)
			if err != nil {
				return exitcode.WithHint(exitcode.Usage, err, "`holiday plan validate` shows every problem of the plan")
			}
			r, po, err := actions.PlanRepoInit(p, copyTo)
			if err != nil {
				return exitcode.With(exitcode.Usage, err)
			}
			e := planRepoEnv(cmd, r)
			e.JSON, e.Quiet = f.env.JSON, f.env.Quiet
			return repocmd.Init(cmd.Context(), e, po)
		},
	}
	cmd.Flags().IntVar(&o.ObjectLockDays, "object-lock-days", 0, "S3 only: retain every file but locks this many days under Object Lock (a missing bucket is created with Object Lock)")
	cmd.Flags().StringVar(&o.ObjectLockMode, "object-lock-mode", "", "governance (default) or compliance: compliance cannot be lifted by anyone until the date")
	cmd.Flags().StringVarP(&planFile, "file", "f", "", "create the plan's repository, with the plan's object_lock")
	cmd.Flags().BoolVar(&copyTo, "copy-to", false, "with -f: create the plan's repository.copy_to instead")
	return cmd
}
