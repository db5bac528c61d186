package main

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

func newRepoBackupCmd(f *repoFlags) *cobra.Command {
	o := repocmd.BackupOptions{Version: version}
	cmd := &cobra.Command{
		Use:   "backup PATH... | backup - --stdin-filename NAME",
		Short: "Back up files and folders, or a stream on stdin, into a new snapshot",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGCForBackup()
			return repocmd.Backup(cmd.Context(), f.with(cmd), args, o)
		},
	}
	cmd.Flags().StringSliceVar(&o.Tags, "tag", nil, "tag the snapshot (repeatable)")
	cmd.Flags().StringVar(&o.BlockSize, "block-size", "", "fixed-size blocks (≥ 1MiB, e.g. 4MiB) instead of content-defined chunks, for disk images")
	cmd.Flags().StringVar(&o.StdinFilename, "stdin-filename", "", "file name for data read from stdin (with PATH -)")
	cmd.Flags().StringVar(&o.Host, "host", "", "host name recorded in the snapshot (default: this host)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "read every file, even those unchanged since the last snapshot of these paths")
	return cmd
}

// tuneGCForBackup sets this process's garbage collector for a backup; it
// is the process's business, so it stays here rather than in a library.
// A backup's live heap is mostly large reused buffers (~70 MiB; the index
// lives outside the heap); the default GOGC=100 would let garbage double
// it before a collection. A soft limit of 100 MiB and GOGC=50 keep peak
// RSS near 100 MiB for no measurable CPU; both yield to GOGC/GOMEMLIMIT
// if set.
func tuneGCForBackup() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(100 << 20)
	}
}
