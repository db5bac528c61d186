package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
)

// openRunRepo opens the plan's repository once for the run, with a
// shared lock held until release, and gives it to o: for the backup
// steps (o.Backups, when a selected host has backup sources and backups
// are not left out) and for the baseline steps (o.Baselines, whenever
// the plan names a repository: actions.StepsFor gives every host one
// then). Both stay nil when there is nothing to keep.
//
// The lock's second check for conflicting locks (repo.LockSharedAsync)
// runs while the hosts connect; every host waits for it (o.RepoLock)
// before anything is journaled or changed there, and the repository's
// write guard waits for it before any index or snapshot is written.
func openRunRepo(cmd *cobra.Command, p *plans.Plan, jobs []actions.Job, o *actions.Options, withoutBackups, withoutBaseline bool) (func(), error) {
	needBackups := false
	for _, j := range jobs {
		if j.Plan != nil && j.Plan.Backup != nil && !j.Plan.Backup.None && len(j.Plan.Backup.Sources) > 0 {
			needBackups = !withoutBackups
		}
	}
	if p.Repository == nil || (!needBackups && withoutBaseline) {
		if needBackups {
			return nil, &usageError{fmt.Errorf("the plan backs up hosts but names no repository")}
		}
		return func() {}, nil
	}
	what := "baselines"
	if needBackups {
		what = "backups"
	}
	e := actions.PlanRepoEnv(p.Repository)
	e.Stdin, e.Stderr = cmd.InOrStdin(), cmd.ErrOrStderr()
	ctx := cmd.Context()
	r, release, err := e.Open(ctx, repocmd.SharedLockAsync)
	if err != nil && !needBackups {
		return nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("%s: %w", what, err),
			"the plan's repository keeps each host's integrity baseline, which restore checks the host against; fix it, or lock down --without-baseline (restore then cannot check the hosts)")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := r.LoadIndex(ctx); err != nil {
		release()
		return nil, fmt.Errorf("%s: load the repository index: %w", what, err)
	}
	var until time.Time
	if p.Window != nil {
		until = p.Window.End.Add(repo.PinGrace)
	}
	// One store for the run: backups and baselines share the repository's
	// pack writer, on the run's context.
	store := hostbackup.NewStore(context.WithoutCancel(ctx), r)
	tags := append([]string{"run:" + o.RunID, "plan:" + p.Name}, repo.PinTags(until)...)
	o.Baselines = incident.RepoStore{R: r, StoreOptions: incident.StoreOptions{Tags: tags, ProgramVersion: "holiday " + version, Share: store}}
	o.RepoLock = r.LockValid
	if !needBackups {
		return release, nil
	}
	b := &actions.Backups{Store: store, Run: o.RunID, Plan: p.Name, Pin: true, Until: until, Version: version}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(f) {
		b.Progress = backupProgress(f)
	}
	o.Backups = b
	return release, nil
}

// openBackups opens the plan's repository once for the run, with a
// shared lock held until release, when any selected host has backup
// sources: the quick checks now, the rest in the background while the
// run connects to the hosts (the run's error says when it failed:
// backupsError). nil Backups when there is nothing to back up. pin: the
// snapshots are pinned (lockdown's), until the window's end plus
// repo.PinGrace.
func openBackups(cmd *cobra.Command, p *plans.Plan, jobs []actions.Job, run string, pin bool) (*actions.Backups, func(), error) {
	need := false
	for _, j := range jobs {
		if j.Plan != nil && j.Plan.Backup != nil && !j.Plan.Backup.None && len(j.Plan.Backup.Sources) > 0 {
			need = true
		}
	}
	if !need {
		return nil, func() {}, nil
	}
	if p.Repository == nil {
		return nil, nil, &usageError{fmt.Errorf("the plan backs up hosts but names no repository")}
	}
	e := actions.PlanRepoEnv(p.Repository)
	e.Stdin, e.Stderr = cmd.InOrStdin(), cmd.ErrOrStderr()
	ctx := cmd.Context()
	// what is quick to check fails here, before any host is contacted;
	// the key derivation and the index load overlap the connections, and
	// the lock's second check overlaps the host's walk: the repository's
	// write guard waits for it before any index or snapshot is written,
	// and a conflict found then fails the host's backup step (a backup
	// run changes nothing else on a host)
	finish, err := e.OpenLater(ctx, repocmd.SharedLockAsync)
	if err != nil {
		return nil, nil, fmt.Errorf("backups: %w", err)
	}
	b := &actions.Backups{Run: run, Plan: p.Name, Version: version, Pin: pin}
	if pin && p.Window != nil {
		b.Until = p.Window.End.Add(repo.PinGrace)
	}
	var unlock func()
	b.OpenInBackground(func() (*hostbackup.Store, error) {
		r, release, err := finish()
		if err != nil {
			return nil, fmt.Errorf("backups: %w", err)
		}
		unlock = release
		if err := r.LoadIndex(ctx); err != nil {
			return nil, fmt.Errorf("backups: load the repository index: %w", err)
		}
		return hostbackup.NewStore(context.WithoutCancel(ctx), r), nil
	})
	release := func() {
		if b.OpenErr(); unlock != nil {
			unlock()
		}
	}
	if f, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(f) {
		b.Progress = backupProgress(f)
	}
	return b, release, nil
}

// backupProgress prints each host's source about every 5 s: files,
// bytes read, bytes sent, the rate and the time left.
func backupProgress(w io.Writer) func(host, source string, st hostbackup.Stats) {
	p := newLineThrottle(w)
	return func(host, source string, st hostbackup.Stats) {
		p.print(host, func() string { return progressLine(host, source, st) })
	}
}

// progressLine is one progress line of a host's source. The time left is
// the bytes still to go (the walk's total so far, the disk's size, or
// about the previous dump's size) at the rate of the bytes behind so far;
// a dump without an earlier one has none.
func progressLine(host, source string, st hostbackup.Stats) string {
	counts := fmt.Sprintf("%d files, %s read, %s sent", st.Files, repocmd.Human(st.Bytes), repocmd.Human(st.BytesSent))
	return progressText(host, "backup "+source, progressFigures{counts: counts, bytes: st.Bytes,
		total: st.Total, done: st.Done, estimate: st.Estimated, elapsed: st.Elapsed})
}

// printBaseline is the summary's baseline line of a host (lockdown).
func printBaseline(w io.Writer, h actions.HostResult, p *plans.Plan, withoutBaseline bool) {
	switch b := h.Baseline; {
	case b != nil:
		fmt.Fprintf(w, "%s: baseline: snapshot %.8s (%d files, %d collector problem(s))\n", h.Host, b.Snapshot, b.Files, len(b.Problems))
	case actions.NoBaseline(p) != "":
		fmt.Fprintf(w, "%s: %s\n", h.Host, actions.NoBaseline(p))
	case withoutBaseline && h.Status == actions.HostDone:
		fmt.Fprintf(w, "%s: no baseline (--without-baseline): restore cannot check this host\n", h.Host)
	}
}

// printBackups is the summary's backup lines of a host.
func printBackups(w io.Writer, h actions.HostResult) {
	if h.BackupsNotTaken {
		fmt.Fprintf(w, "%s: backups: NOT TAKEN\n", h.Host)
		return
	}
	for _, s := range h.Snapshots {
		line := fmt.Sprintf("%s: backup %s: snapshot %.8s (%d files, %d unchanged, %s read, %s sent)", h.Host, s.Source, s.Snapshot,
			s.Files, s.Unchanged, repocmd.Human(s.Bytes), repocmd.Human(s.BytesSent))
		if s.Consistency != "" {
			line += ", consistency: " + s.Consistency
		}
		fmt.Fprintln(w, line)
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// backupsError is the error of a run whose repository could not be
// opened: every host with backups was refused, unchanged, for it.
func backupsError(b *actions.Backups) error {
	if b == nil {
		return nil
	}
	return b.OpenErr()
}
