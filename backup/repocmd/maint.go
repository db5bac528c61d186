package repocmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/backup/forget"
	"github.com/holiday-ops/holiday/backup/prune"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

// ForgetOptions are the flags of `holiday repo forget`.
type ForgetOptions struct {
	Policy forget.Policy
	Host   string     // only snapshots of this host
	Tags   [][]string // only snapshots with all tags of one list
	DryRun bool
	Prune  bool // prune afterwards (unless nothing was forgotten)
	PruneOptions
}

// PruneOptions are the flags of `holiday repo prune`.
type PruneOptions struct {
	MaxUnused string // "5%" (the default when ""), a share of the data
}

// ParseTagLists turns --tag/--keep-tag values ("a,b") into tag lists.
func ParseTagLists(vals []string) [][]string {
	var out [][]string
	for _, v := range vals {
		var l []string
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				l = append(l, t)
			}
		}
		out = append(out, l)
	}
	return out
}

// Forget applies the keep rules (and pins) to the matching snapshots,
// removes the others (not with DryRun) and, with Prune, prunes.
func Forget(ctx context.Context, e *Env, o ForgetOptions) error {
	if err := o.Policy.Validate(); err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	if o.Policy.Empty() {
		return exitcode.WithHint(exitcode.Usage, errors.New("no keep rule given: refusing to forget every snapshot"),
			"give --keep-last, --keep-daily … or --keep-tag")
	}
	maxUnused, err := parseMaxUnused(o.MaxUnused)
	if err != nil {
		return err
	}
	lock := ExclusiveLock
	if o.DryRun {
		lock = NoLock
	}
	r, release, err := e.Open(ctx, lock)
	if err != nil {
		return err
	}
	defer release()
	all, err := r.Snapshots(ctx, nil)
	if err != nil {
		return fmt.Errorf("refusing to forget: %w", err)
	}
	var sns []*repo.Snapshot
	for _, sn := range all {
		if forget.Matches(sn, o.Host, o.Tags) {
			sns = append(sns, sn)
		}
	}
	now := time.Now()
	groups := forget.Apply(sns, o.Policy, now)
	if o.Policy.Last == 0 && o.Policy.Hourly == 0 && o.Policy.Daily == 0 && o.Policy.Weekly == 0 && o.Policy.Monthly == 0 && o.Policy.Yearly == 0 {
		// restic: a --keep-tag policy that keeps nothing of a group is a
		// mistake, not a wish to empty it
		for _, g := range groups {
			if g.Kept() == 0 {
				return exitcode.With(exitcode.Usage, fmt.Errorf("--keep-tag keeps no snapshot of host %s, paths %s: refusing to remove them all", g.Host, strings.Join(g.Paths, " ")))
			}
		}
	}
	if !e.JSON {
		PrintForget(e.Stdout, o.Policy, groups, o.DryRun)
	}
	// with --json, one document: the decisions, how many were removed,
	// and the prune's stats (null without --prune)
	var pst *prune.Stats
	n := 0
	defer func() {
		if e.JSON {
			_ = PrintJSON(e.Stdout, map[string]any{"groups": ForgetJSON(groups), "removed": n, "dry_run": o.DryRun, "prune": pst})
		}
	}()
	if o.DryRun {
		return nil
	}
	n, err = forget.Remove(ctx, r, groups, now)
	if err != nil {
		return err
	}
	if !e.JSON {
		fmt.Fprintf(e.Stdout, "removed %d snapshots\n", n)
	}
	if !o.Prune || n == 0 {
		return nil
	}
	r.SetIndex(repo.NewIndex())
	st, err := runPrune(ctx, e, r, prune.Options{MaxUnused: maxUnused})
	if err == nil {
		pst = &st
	}
	return err
}

func parseMaxUnused(s string) (float64, error) {
	if s == "" {
		return 0.05, nil
	}
	var pct float64
	if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimSpace(s), "%"), "%g", &pct); err != nil || !strings.HasSuffix(strings.TrimSpace(s), "%") || pct < 0 || pct >= 100 {
		return 0, exitcode.With(exitcode.Usage, fmt.Errorf("--max-unused %q: want a percentage from 0%% to below 100%%, e.g. 5%%", s))
	}
	return pct / 100, nil
}

// Prune removes the data no snapshot references, under the exclusive
// lock (none with dryRun).
func Prune(ctx context.Context, e *Env, o PruneOptions, dryRun bool) error {
	maxUnused, err := parseMaxUnused(o.MaxUnused)
	if err != nil {
		return err
	}
	lock := ExclusiveLock
	if dryRun {
		lock = NoLock
	}
	r, release, err := e.Open(ctx, lock)
	if err != nil {
		return err
	}
	defer release()
	st, err := runPrune(ctx, e, r, prune.Options{MaxUnused: maxUnused, DryRun: dryRun})
	if err == nil && e.JSON {
		return PrintPrune(e.Stdout, st, true)
	}
	return err
}

// runPrune prunes and prints the result (as text; with --json only
// when asked to, forget prints its own document).
func runPrune(ctx context.Context, e *Env, r *repo.Repository, opts prune.Options) (prune.Stats, error) {
	if e.progress() {
		opts.Progress = func(step string) { fmt.Fprintln(e.Stderr, step) }
	}
	st, err := prune.Prune(ctx, r, opts)
	if err != nil {
		return st, fmt.Errorf("prune: %w", err)
	}
	if !e.JSON {
		_ = PrintPrune(e.Stdout, st, false)
	}
	return st, nil
}

// Unpin rewrites each snapshot without its pin tags (new snapshot with
// original set, old one removed), under the exclusive lock.
func Unpin(ctx context.Context, e *Env, snapshots []string) error {
	r, release, err := e.Open(ctx, ExclusiveLock)
	if err != nil {
		return err
	}
	defer release()
	var sns []*repo.Snapshot
	for _, s := range snapshots {
		sn, err := r.FindSnapshot(ctx, s)
		if err != nil {
			return exitcode.With(exitcode.Usage, fmt.Errorf("snapshot %s: %w", s, err))
		}
		sns = append(sns, sn)
	}
	for _, sn := range sns {
		n, changed, err := forget.Unpin(ctx, r, sn)
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintf(e.Stdout, "unpinned snapshot %s: now %s\n", sn.ID.Str(), n.ID.Str())
		} else {
			fmt.Fprintf(e.Stdout, "snapshot %s was not pinned\n", sn.ID.Str())
		}
	}
	return nil
}
