package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/restore"
)

func newRollbackCmd() *cobra.Command {
	var f runFlags
	var o restore.RollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback -f PLAN HOST",
		Short: "Write a snapshot's files, disk image or database dump back onto a host, exactly",
		Long: `rollback writes a files snapshot back onto HOST through a freshly uploaded
agent: content, owners, modes, times and xattrs exactly as the snapshot
holds them. What the host gained since under a restored directory is
removed (a file dropped into /var/www goes). Before anything is
overwritten, what will be replaced is snapshotted (tagged
rollback-of:<snapshot>), so rolling back with --snapshot <that one> undoes
the rollback. --dry-run lists what would be written and removed.

A disk snapshot (or --device DEV) is written onto an unmounted block device
(a mounted or held one is refused), only the blocks that differ from the
image crossing the wire.

A database dump (a postgres or mysql snapshot, or --database NAME) loads
--into a new database, or with --replace over the old one: loaded into a
new database first, swapped in only when complete. --replace asks first
unless --yes; without a terminal to ask on, it needs --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, conn, ao, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.Fresh = true
			if !cmd.Flags().Changed("revert-timeout") {
				ao.RevertTimeout = 0 // as long as the write: restore.Rollback
			}
			if o.Host = p.Host(args[0]); o.Host == nil {
				return &usageError{fmt.Errorf("%s: the plan has no such host", args[0])}
			}
			if p.Repository == nil {
				return &usageError{errors.New("the plan names no repository: rollback reads its snapshots from there")}
			}
			e := actions.PlanRepoEnv(p.Repository)
			e.Stdin, e.Stdout, e.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			r, unlock, err := e.Open(cmd.Context(), repocmd.SharedLock)
			if err != nil {
				return err
			}
			defer unlock()
			o.Repo, o.Version = r, "holiday "+version
			if tty, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(tty) {
				o.Progress, o.SnapshotProgress = rollbackProgress(tty, o.Host.Name)
			}
			if in, ok := cmd.InOrStdin().(*os.File); ok && isTerminal(in) {
				o.Confirm = func(q string) (bool, error) {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", q)
					line, err := bufio.NewReader(in).ReadString('\n')
					if err != nil && line == "" {
						return false, err
					}
					a := strings.ToLower(strings.TrimSpace(line))
					return a == "y" || a == "yes", nil
				}
			}
			res, err := restore.Rollback(cmd.Context(), ao, conn, o)
			if err != nil {
				return err
			}
			if err := writeResult(cmd.OutOrStdout(), f.json, res, func(w io.Writer) { printRollback(w, res) }); err != nil {
				return err
			}
			if res.Run == nil {
				return nil
			}
			return exitFor(cmd.Context(), *res.Run)
		},
	}
	f.add(cmd)
	f.addWait(cmd)
	cmd.Flags().Lookup("host").Hidden = true // the host is the argument
	cmd.Flags().Lookup("parallel").Hidden = true
	cmd.Flags().StringVar(&o.Snapshot, "snapshot", "", "the snapshot to roll back to (ID or unique prefix; default: the host's newest lockdown files snapshot)")
	cmd.Flags().StringVar(&o.Run, "run", "", "roll back to the host's files snapshot of this run")
	cmd.Flags().StringArrayVar(&o.Paths, "path", nil, "restore only this path of the snapshot (repeatable; default: all of it)")
	cmd.Flags().StringVar(&o.Device, "device", "", "roll a disk image back onto this unmounted block device (default for a disk snapshot: the device it was taken of)")
	cmd.Flags().StringVar(&o.Database, "database", "", "roll back this database (NAME, or postgres/NAME, mysql/NAME) from the host's newest dump of it (or the one in --run)")
	cmd.Flags().StringVar(&o.Into, "into", "", "load a database dump into this new database")
	cmd.Flags().BoolVar(&o.Replace, "replace", false, "load a database dump over the old database (it is dumped first; asks unless --yes)")
	cmd.Flags().BoolVar(&o.Yes, "yes", false, "do not ask before --replace")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "list what would be written and removed; change nothing")
	cmd.MarkFlagsMutuallyExclusive("snapshot", "run")
	cmd.MarkFlagsMutuallyExclusive("snapshot", "database")
	cmd.MarkFlagsMutuallyExclusive("into", "replace")
	cmd.MarkFlagsMutuallyExclusive("device", "database", "path")
	return cmd
}

// rollbackProgress prints a rollback's progress about every 5 s: its
// pre-rollback snapshot's as a backup's, then its writing's (what is
// written of the total, the rate and the time left).
func rollbackProgress(w io.Writer, host string) (func(what string, p restore.Progress), func(what string, st hostbackup.Stats)) {
	t := newLineThrottle(w)
	writing := func(what string, p restore.Progress) {
		t.print(host, func() string { return rollbackLine(host, what, p) })
	}
	snapshot := func(what string, st hostbackup.Stats) {
		t.print(host, func() string { return progressLine(host, what, st) })
	}
	return writing, snapshot
}

// rollbackLine is one progress line of a rollback's writing.
func rollbackLine(host, what string, p restore.Progress) string {
	counts := repocmd.Human(p.Bytes) + " written"
	switch p.Kind {
	case "files":
		counts = fmt.Sprintf("%d files, %s", p.Files, counts)
	case "disk":
		counts = fmt.Sprintf("%d blocks, %s", p.Blocks, counts)
	default: // a database's dump
		counts = repocmd.Human(p.Bytes) + " loaded"
	}
	return progressText(host, "rollback "+what, progressFigures{counts: counts, bytes: p.Bytes, total: p.Total, done: p.Bytes, elapsed: p.Elapsed})
}

func printRollback(w io.Writer, res restore.RollbackResult) {
	if res.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
	if res.Database != "" {
		where := "into the new database " + res.Into
		if res.Replace {
			where = "over the old database"
		}
		verb := "loaded"
		if res.DryRun {
			verb = "would load"
		}
		fmt.Fprintf(w, "%s: %s the dump of %s from snapshot %s %s\n", res.Host, verb, res.Database, res.Snapshot, where)
	} else if res.Device != "" {
		fmt.Fprintf(w, "%s: roll back disk %s from snapshot %s: %d of %d blocks (%d bytes each) differ\n", res.Host, res.Device, res.Snapshot, res.Blocks, res.BlocksTotal, res.BlockSize)
	} else {
		restore.RenderChanges(w, res.Host, res.Snapshot, res.Roots, res.Changes)
	}
	if res.PreSnapshot != "" {
		undo := ""
		if res.Database != "" {
			undo = " --replace"
		}
		fmt.Fprintf(w, "%s: what was replaced is in snapshot %s (undo: holiday rollback -f PLAN %s --snapshot %.8s%s)\n", res.Host, res.PreSnapshot, res.Host, res.PreSnapshot, undo)
	}
	if a := res.Applied; a != nil {
		fmt.Fprintf(w, "%s: wrote %d, set metadata of %d, removed %d (%d bytes)\n", res.Host, a.Written, a.Meta, a.Removed, a.Bytes)
	}
	if d := res.DiskApplied; d != nil {
		fmt.Fprintf(w, "%s: wrote %d blocks (%d bytes) to %s\n", res.Host, d.Blocks, d.Bytes, res.Device)
	}
	if p := res.Written; p != nil && res.Database != "" {
		fmt.Fprintf(w, "%s: loaded %s in %s\n", res.Host, repocmd.Human(p.Bytes), etaString(p.Elapsed))
	}
	if r := res.Run; r != nil {
		for _, h := range r.Hosts {
			fmt.Fprintf(w, "%s: rollback run %s %s", h.Host, r.Run, h.Status)
			if h.Journal != "" {
				fmt.Fprintf(w, ", journal %s", h.Journal)
			}
			fmt.Fprintln(w)
			if h.Error != "" {
				fmt.Fprintf(w, "%s: %s\n", h.Host, h.Error)
			}
		}
	}
}
