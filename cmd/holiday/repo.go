package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

// repoFlags are the flags every `holiday repo` subcommand shares. Each
// subcommand lives in repo_<name>.go and calls one function of
// backup/repocmd.
type repoFlags struct {
	env repocmd.Env
}

func newRepoCmd() *cobra.Command {
	f := &repoFlags{}
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Work with a backup repository (restic format v2; stock restic opens it too)",
		Long: `A backup repository in restic's format, version 2. Stock restic can open,
check and restore it. The repository is --repo or $HOLIDAY_REPOSITORY: a
directory, or s3:http(s)://host[:port]/bucket/prefix with credentials from
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or the AWS
shared files; AWS_REGION, default us-east-1); hosts outside amazonaws.com
are addressed path-style. The password comes from --password-file,
$HOLIDAY_PASSWORD_FILE or $HOLIDAY_PASSWORD.

Lock files name the control node by its hostname, or by $HOLIDAY_HOSTNAME
when set: give each control node sharing a repository a name of its own
when their hostnames collide (containers, clones of one image).`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.env.Repo, "repo", "r", "", "repository: a directory or s3:https://host/bucket/prefix (default $HOLIDAY_REPOSITORY)")
	pf.StringVar(&f.env.PasswordFile, "password-file", "", "file holding the repository password (default $HOLIDAY_PASSWORD_FILE)")
	pf.BoolVar(&f.env.JSON, "json", false, "machine-readable output on stdout")
	pf.BoolVarP(&f.env.Quiet, "quiet", "q", false, "no progress on stderr")
	cmd.AddCommand(newRepoInitCmd(f), newRepoKeyCmd(f), newRepoBackupCmd(f), newRepoSnapshotsCmd(f),
		newRepoLsCmd(f), newRepoDumpCmd(f), newRepoRestoreCmd(f), newRepoCheckCmd(f), newRepoUnlockCmd(f),
		newRepoForgetCmd(f), newRepoPruneCmd(f), newRepoUnpinCmd(f), newRepoCopyCmd(f))
	return cmd
}

// with returns the shared flags plus the command's stdin, stdout and stderr.
func (f *repoFlags) with(cmd *cobra.Command) *repocmd.Env {
	e := f.env
	e.Stdin, e.Stdout, e.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	return &e
}
