package main

import (
	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoForgetCmd(f *repoFlags) *cobra.Command {
	var o repocmd.ForgetOptions
	var tags, keepTags []string
	cmd := &cobra.Command{
		Use:   "forget --keep-… [--prune]",
		Short: "Remove snapshots by restic's keep rules; pinned snapshots (holiday-pin) are always kept",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Tags, o.Policy.Tags = repocmd.ParseTagLists(tags), repocmd.ParseTagLists(keepTags)
			return repocmd.Forget(cmd.Context(), f.with(cmd), o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.Policy.Last, "keep-last", 0, "keep the last n snapshots (-1: all)")
	fl.IntVar(&o.Policy.Hourly, "keep-hourly", 0, "keep the last n hourly snapshots (-1: all)")
	fl.IntVar(&o.Policy.Daily, "keep-daily", 0, "keep the last n daily snapshots (-1: all)")
	fl.IntVar(&o.Policy.Weekly, "keep-weekly", 0, "keep the last n weekly snapshots (-1: all)")
	fl.IntVar(&o.Policy.Monthly, "keep-monthly", 0, "keep the last n monthly snapshots (-1: all)")
	fl.IntVar(&o.Policy.Yearly, "keep-yearly", 0, "keep the last n yearly snapshots (-1: all)")
	fl.StringArrayVar(&keepTags, "keep-tag", nil, "keep snapshots with all these tags (tag[,tag…], repeatable)")
	fl.StringVar(&o.Host, "host", "", "only consider snapshots of this host")
	fl.StringArrayVar(&tags, "tag", nil, "only consider snapshots with all these tags (tag[,tag…], repeatable: any list)")
	fl.BoolVar(&o.DryRun, "dry-run", false, "print what would be removed, remove nothing")
	fl.BoolVar(&o.Prune, "prune", false, "prune the unused data afterwards")
	fl.StringVar(&o.MaxUnused, "max-unused", "5%", "with --prune: unused data allowed to stay in partly used packs")
	return cmd
}

func newRepoPruneCmd(f *repoFlags) *cobra.Command {
	var o repocmd.PruneOptions
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune [--max-unused 5%]",
		Short: "Remove the data no snapshot uses (exclusive lock; crash-safe)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Prune(cmd.Context(), f.with(cmd), o, dryRun)
		},
	}
	cmd.Flags().StringVar(&o.MaxUnused, "max-unused", "5%", "unused data allowed to stay in partly used packs rather than be repacked")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	return cmd
}

func newRepoUnpinCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "unpin SNAPSHOT…",
		Short: "Remove the pin (holiday-pin, pin-until:DAY) from snapshots so that forget may remove them",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return repocmd.Unpin(cmd.Context(), f.with(cmd), args)
		},
	}
}
