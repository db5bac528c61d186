package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
)

func newRepoCopyCmd(f *repoFlags) *cobra.Command {
	var o repocmd.CopyOptions
	var fromRepo, fromPw, toRepo, toPw string
	var tags []string
	cmd := &cobra.Command{
		Use:   "copy --from-repo SRC --to-repo DST [SNAPSHOT…]",
		Short: "Copy snapshots to another repository (only missing data crosses, encrypted for the target)",
		Long: `copy copies the snapshots given (default: all, or those of --host/--tag)
from --from-repo (default --repo) to --to-repo. Data the target already
holds is not sent again; a snapshot already copied is skipped. The target's
password is --to-password-file, else the source's.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			from := f.with(cmd)
			if fromRepo != "" {
				from.Repo = fromRepo
			}
			if fromPw != "" {
				from.PasswordFile = fromPw
			}
			to := *from
			to.Repo = toRepo
			if toPw != "" {
				to.PasswordFile = toPw
			}
			o.Snapshots, o.Tags = args, repocmd.ParseTagLists(tags)
			return repocmd.Copy(cmd.Context(), from, &to, o)
		},
	}
	cmd.Flags().StringVar(&fromRepo, "from-repo", "", "source repository (default --repo)")
	cmd.Flags().StringVar(&fromPw, "from-password-file", "", "source password file (default --password-file)")
	cmd.Flags().StringVar(&toRepo, "to-repo", "", "target repository (required)")
	cmd.Flags().StringVar(&toPw, "to-password-file", "", "target password file (default: the source's password)")
	cmd.Flags().StringVar(&o.Host, "host", "", "only snapshots of this host")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "only snapshots with all these tags (tag[,tag…], repeatable: any list)")
	cmd.Flags().BoolVar(&o.Check, "check", false, "check both repositories afterwards")
	_ = cmd.MarkFlagRequired("to-repo")
	return cmd
}

// planRepoEnv is the repository environment of a plan's repository (or
// its copy_to), writing to the command's outputs.
func planRepoEnv(cmd *cobra.Command, r *plans.Repository) *repocmd.Env {
	e := actions.PlanRepoEnv(r)
	e.Stdin, e.Stdout, e.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	return e
}

// lockdownCopy copies run's snapshots to the plan's repository.copy_to,
// if it has one, and checks both repositories (repocmd.CopyRun). Its
// report goes to stdout, or to stderr when stdout holds JSON.
func lockdownCopy(cmd *cobra.Command, p *plans.Plan, run string, jsonOut bool) error {
	if p.Repository == nil || p.Repository.CopyTo == nil {
		return nil
	}
	from, to := planRepoEnv(cmd, p.Repository), planRepoEnv(cmd, p.Repository.CopyTo)
	if jsonOut {
		from.Stdout = cmd.ErrOrStderr()
	}
	fmt.Fprintf(from.Stdout, "\nsecond copy (run:%s) to %s:\n", run, p.Repository.CopyTo.URL)
	if err := repocmd.CopyRun(cmd.Context(), from, to, run); err != nil {
		return exitcode.WithHint(exitcode.HostsFailed, err, "the snapshots are safe in the first repository; run holiday repo copy --to-repo "+p.Repository.CopyTo.URL+" --tag run:"+run+" --check")
	}
	return nil
}
