package repocmd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/forget"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocopy"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

// CopyOptions choose the snapshots `holiday repo copy` copies: the IDs
// (prefixes) given, else those of Host with one of Tags (all if unset).
type CopyOptions struct {
	Snapshots []string
	Host      string
	Tags      [][]string
	// Check checks both repositories' structure afterwards.
	Check bool
}

// Copy copies snapshots from the repository of from to the one of to,
// each under a shared lock. Only blobs the target lacks cross,
// re-encrypted for it; copied snapshots keep their original.
func Copy(ctx context.Context, from, to *Env, o CopyOptions) error {
	fl, err := from.Location()
	if err != nil {
		return err
	}
	tl, err := to.Location()
	if err != nil {
		return err
	}
	if fl == tl {
		return exitcode.With(exitcode.Usage, fmt.Errorf("--from-repo and --to-repo are the same repository (%s)", fl))
	}
	src, releaseSrc, err := from.Open(ctx, SharedLock)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer releaseSrc()
	dst, releaseDst, err := to.Open(ctx, SharedLock)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer releaseDst()
	want := map[repo.ID]bool{}
	for _, s := range o.Snapshots {
		sn, err := src.FindSnapshot(ctx, s)
		if err != nil {
			return exitcode.With(exitcode.Usage, fmt.Errorf("source snapshot %s: %w", s, err))
		}
		want[sn.ID] = true
	}
	filter := func(sn *repo.Snapshot) bool {
		if len(want) > 0 {
			return want[sn.ID]
		}
		return forget.Matches(sn, o.Host, o.Tags)
	}
	copied, st, err := repocopy.Copy(ctx, src, dst, filter)
	for _, c := range copied {
		if !from.JSON {
			fmt.Fprintf(from.Stdout, "copied snapshot %s to %s\n", c.From.Str(), c.To.Str())
		}
	}
	if err != nil {
		return err
	}
	if from.JSON {
		if err := PrintJSON(from.Stdout, st); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(from.Stdout, "%d snapshots copied, %d already there; %d blobs (%s) crossed\n", st.Snapshots, st.Skipped, st.Blobs, Human(st.Bytes))
	}
	if !o.Check {
		return nil
	}
	var errs []error
	for _, x := range []struct {
		what string
		r    *repo.Repository
		loc  string
	}{{"source", src, fl}, {"target", dst, tl}} {
		x.r.SetIndex(repo.NewIndex())
		rep, err := checker.Check(ctx, x.r, checker.Options{})
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("check %s %s: %w", x.what, x.loc, err))
		case !rep.OK():
			var ps []string
			for _, p := range rep.Problems {
				ps = append(ps, p.Kind+" "+p.Object+": "+p.Err)
			}
			errs = append(errs, fmt.Errorf("check %s %s: %d problems: %s", x.what, x.loc, len(rep.Problems), strings.Join(ps, "; ")))
		default:
			if !from.JSON {
				fmt.Fprintf(from.Stdout, "%s %s: %d snapshots, %d packs, no errors were found\n", x.what, x.loc, rep.Snapshots, rep.Packs)
			}
		}
	}
	return errors.Join(errs...)
}

// CopyRun copies the snapshots of lockdown run runID (tag run:<id>) to
// the plan's second repository and checks both: what lockdown calls
// after its hosts are done when the plan has repository.copy_to.
func CopyRun(ctx context.Context, from, to *Env, runID string) error {
	if err := Copy(ctx, from, to, CopyOptions{Tags: [][]string{{"run:" + runID}}, Check: true}); err != nil {
		return fmt.Errorf("second copy (repository.copy_to): %w", err)
	}
	return nil
}
