package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoKeyCmd(f *repoFlags) *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Manage the passwords (keys) that open the repository"}
	var newPwFile, user, host string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a key with a new password",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.KeyAdd(cmd.Context(), f.with(cmd), newPwFile, user, host)
		},
	}
	add.Flags().StringVar(&newPwFile, "new-password-file", "", "file holding the new key's password")
	add.Flags().StringVar(&user, "user", "", "user name recorded in the key (default: current user)")
	add.Flags().StringVar(&host, "host", "", "host name recorded in the key (default: this host)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.KeyList(cmd.Context(), f.with(cmd))
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a key (not the one in use)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.KeyRemove(cmd.Context(), f.with(cmd), args[0])
		},
	}
	key.AddCommand(add, list, remove)
	return key
}
