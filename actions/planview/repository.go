package planview

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/plans"
)

// repoTimeout bounds the look at one repository: an S3 server that does
// not answer must not hold up the plan.
const repoTimeout = 30 * time.Second

// Repositories looks at the plan's repository and its copy_to at once,
// read-only and cheaply (repocmd.ObjectLockState: open with the password,
// the bucket's Object Lock, one HEAD of the config), and judges them
// (Judge). None when the plan names no repository.
func Repositories(ctx context.Context, p *plans.Plan, withoutBackups, withoutBaseline bool) []*preflight.Repository {
	if p.Repository == nil {
		return nil
	}
	type target struct {
		role string
		r    *plans.Repository
	}
	ts := []target{{"repository", p.Repository}}
	if p.Repository.CopyTo != nil {
		ts = append(ts, target{"copy_to", p.Repository.CopyTo})
	}
	var pinUntil time.Time
	if p.Window != nil && !p.Window.End.IsZero() {
		pinUntil = p.Window.End.Add(repo.PinGrace)
	}
	need, baselines := 0, 0
	if !withoutBackups {
		need = backedUp(p)
	}
	if !withoutBaseline {
		baselines = len(p.Hosts()) // actions.StepsFor gives every host a baseline step
	}
	out := make([]*preflight.Repository, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, repoTimeout)
			defer cancel()
			im, err := repocmd.ObjectLockState(ctx, actions.PlanRepoEnv(t.r))
			out[i] = JudgeFor(t.role, t.r, im, err, need, baselines, pinUntil, time.Now())
		})
	}
	wg.Wait()
	return out
}

// backedUp counts the hosts lockdown backs up.
func backedUp(p *plans.Plan) int {
	n := 0
	for _, h := range p.Hosts() {
		if h.Backup != nil && !h.Backup.None && len(h.Backup.Sources) > 0 {
			n++
		}
	}
	return n
}

// Judge turns what was found of one repository into its report: role is
// "repository" or "copy_to", r the plan's entry, im and err what
// repocmd.ObjectLockState answered; need is the number of hosts lockdown
// would back up into it (0 with --without-backups), pinUntil when their
// snapshots' pins end (zero: no window).
//
// A repository lockdown cannot open while it has hosts to back up is an
// error (lockdown stops before any host, so the plan is not ready);
// anything else is a warning at most.
func Judge(role string, r *plans.Repository, im *repo.Immutability, err error, need int, pinUntil, now time.Time) *preflight.Repository {
	return JudgeFor(role, r, im, err, need, 0, pinUntil, now)
}

// JudgeFor is Judge where lockdown also keeps the integrity baselines of
// baselines hosts in the repository (0 with --without-baseline): a
// repository it cannot open then stops lockdown too.
func JudgeFor(role string, r *plans.Repository, im *repo.Immutability, err error, need, baselines int, pinUntil, now time.Time) *preflight.Repository {
	out := &preflight.Repository{Role: role, URL: r.URL, Findings: []preflight.Finding{}}
	add := func(sev, code, format string, args ...any) {
		out.Findings = append(out.Findings, preflight.Finding{Severity: sev, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	if err != nil {
		out.Error, out.Hint = err.Error(), exitcode.HintOf(err)
		if errors.Is(err, repo.ErrNoRepository) {
			// the CLI's hint names --repo; the plan's way is -f
			out.Hint = "`holiday repo init -f PLAN` creates it"
			if role == "copy_to" {
				out.Hint = "`holiday repo init -f PLAN --copy-to` creates it"
			}
		}
		switch {
		case role == "copy_to":
			add(preflight.SevWarning, "copy-unreachable", "lockdown would back up into the repository, then fail to make the second copy (exit 2 at the end; the snapshots stay in the first repository)")
		case need > 0:
			add(preflight.SevError, "repository-unreachable", "lockdown would stop before any host: it backs up %d host%s into this repository", need, plural(need))
		case baselines > 0:
			add(preflight.SevError, "repository-unreachable", "lockdown would stop before any host: it keeps the integrity baselines of %d host%s in this repository (--without-baseline goes on without them; restore then cannot check those hosts)", baselines, plural(baselines))
		default:
			add(preflight.SevWarning, "repository-unreachable", "lockdown backs up no host here, but could not keep the run's journals in the repository (only on this control node and the hosts)")
		}
		return out
	}
	out.Reachable = true
	ol := &preflight.ObjectLock{Supported: im.Supported, Bucket: im.Enabled, ConfigUntil: im.ConfigUntil}
	out.ObjectLock = ol
	if s := im.Setting; s != nil {
		ol.Mode, ol.Days = s.Mode, s.Days
		if im.Enabled {
			ol.NewUntil = now.Add(s.Period()).Truncate(time.Second)
			if im.ConfigUntil.After(now) {
				ol.ImmutableUntil = im.ConfigUntil
			}
		}
	}
	if want := r.ObjectLock; want != nil {
		asked := fmt.Sprintf("%d days (%s)", want.Days, want.ModeOrDefault())
		switch {
		case im.Setting == nil:
			add(preflight.SevWarning, "object-lock-missing", "the plan asks for object_lock %s but the repository gives new files no retention; Object Lock is chosen when a repository is made: holiday repo init -f PLAN on a new bucket or prefix", asked)
		case im.Setting.Days != want.Days || !strings.EqualFold(im.Setting.Mode, want.ModeOrDefault()):
			add(preflight.SevWarning, "object-lock-differs", "the plan asks for object_lock %s but the repository was made with %d days (%s), which is what applies", asked, im.Setting.Days, strings.ToLower(im.Setting.Mode))
		}
	}
	if !ol.NewUntil.IsZero() && !pinUntil.IsZero() && ol.NewUntil.Before(pinUntil) {
		add(preflight.SevWarning, "object-lock-short", "snapshots lockdown takes now are protected until %s but pinned until %s (window end + %d days): in between they can be deleted",
			ol.NewUntil.UTC().Format(time.DateOnly), pinUntil.UTC().Format(time.DateOnly), int(repo.PinGrace.Hours()/24))
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
