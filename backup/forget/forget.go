// Package forget decides which snapshots to keep with restic's keep rules
// (--keep-last/-hourly/-daily/-weekly/-monthly/-yearly, --keep-tag), the
// snapshots grouped by host and paths as restic does by default, and
// holiday's pins: a snapshot pinned (repo.Snapshot.Pinned) is kept
// whatever the rules say. It removes the snapshots it decided to forget
// and rewrites snapshots without their pin tags (Unpin). The data the
// forgotten snapshots alone referenced stays until backup/prune.
//
// It must never import anything of holiday's above backup; it may import
// backup/repo, backup/backend and internal/....
package forget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/repo"
)

// Unlimited as a count keeps one snapshot of every bucket (restic's
// "unlimited").
const Unlimited = -1

// Policy is a set of keep rules. A count of 0 leaves its rule out,
// Unlimited keeps every bucket. Tags keeps the snapshots carrying all
// the tags of any one list (restic's --keep-tag a,b).
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Tags                                         [][]string
}

// Empty reports whether the policy has no rule. Apply keeps every
// snapshot under it ("no keep rule"): an empty policy never means
// "forget all", whoever calls.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 &&
		p.Monthly == 0 && p.Yearly == 0 && len(p.Tags) == 0
}

// Validate refuses counts below Unlimited.
func (p Policy) Validate() error {
	for _, r := range p.rules() {
		if r.count < Unlimited {
			return fmt.Errorf("--keep-%s %d: a count is 0 or more, or -1 for unlimited", r.name, r.count)
		}
	}
	for _, l := range p.Tags {
		if len(l) == 0 {
			return errors.New("--keep-tag: an empty tag list")
		}
	}
	return nil
}

type rule struct {
	name   string
	count  int
	bucket func(t time.Time, nr int) int
}

// rules lists the counted rules in restic's order. A bucket is the
// calendar unit of the snapshot's own recorded time (its time zone), the
// ISO week for weekly; "last" puts every snapshot in its own bucket.
func (p Policy) rules() []rule {
	return []rule{
		{"last", p.Last, func(_ time.Time, nr int) int { return nr }},
		{"hourly", p.Hourly, func(t time.Time, _ int) int {
			return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour()
		}},
		{"daily", p.Daily, func(t time.Time, _ int) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }},
		{"weekly", p.Weekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }},
		{"monthly", p.Monthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }},
		{"yearly", p.Yearly, func(t time.Time, _ int) int { return t.Year() }},
	}
}

// String describes the policy like restic's "Applying Policy:" line.
func (p Policy) String() string {
	var parts []string
	for _, r := range p.rules() {
		switch {
		case r.count == Unlimited:
			parts = append(parts, "all "+r.name+" snapshots")
		case r.count > 0 && r.name == "last":
			parts = append(parts, fmt.Sprintf("%d latest snapshots", r.count))
		case r.count > 0:
			parts = append(parts, fmt.Sprintf("%d %s snapshots", r.count, r.name))
		}
	}
	for _, l := range p.Tags {
		parts = append(parts, "snapshots with tags ["+strings.Join(l, ", ")+"]")
	}
	if len(parts) == 0 {
		return "keep nothing"
	}
	return "keep " + strings.Join(parts, ", ")
}

// Decision is what happens to one snapshot and why it is kept.
type Decision struct {
	Snapshot *repo.Snapshot
	Keep     bool
	Reasons  []string
}

// Group is the snapshots of one host and set of paths, newest first.
type Group struct {
	Host      string
	Paths     []string
	Decisions []Decision
}

// Kept and Removed count the group's decisions.
func (g Group) Kept() int {
	n := 0
	for _, d := range g.Decisions {
		if d.Keep {
			n++
		}
	}
	return n
}

// Matches reports whether sn is one forget considers: of host (if not
// ""), and carrying all tags of at least one list in tags (if any).
func Matches(sn *repo.Snapshot, host string, tags [][]string) bool {
	if host != "" && sn.Hostname != host {
		return false
	}
	if len(tags) == 0 {
		return true
	}
	for _, l := range tags {
		if hasAll(sn, l) {
			return true
		}
	}
	return false
}

func hasAll(sn *repo.Snapshot, tags []string) bool {
	for _, t := range tags {
		if !slices.Contains(sn.Tags, t) {
			return false
		}
	}
	return true
}

// Apply groups sns by host and paths and decides for each snapshot,
// restic's way: within a group, newest first, a snapshot is kept when
// it is in a bucket (hour, day, ISO week, month, year; "last": itself)
// other than the previous kept one's of a rule whose count is not used
// up; each such rule counts it once. When a rule's count is not used up
// by the oldest snapshot, that one is kept too (restic ≥ 0.16: as much
// history as the rule allows). A snapshot with all the tags of a
// Policy.Tags list is kept without counting. A pinned snapshot
// (Snapshot.Pinned at now) is always kept, reason "pinned"; so is a
// snapshot dated after now (restic: the rules ignore those).
func Apply(sns []*repo.Snapshot, p Policy, now time.Time) []Group {
	byKey := map[string]*Group{}
	var keys []string
	for _, sn := range sns {
		paths := slices.Clone(sn.Paths)
		slices.Sort(paths)
		k := sn.Hostname + "\x00" + strings.Join(paths, "\x00")
		g, ok := byKey[k]
		if !ok {
			g = &Group{Host: sn.Hostname, Paths: paths}
			byKey[k] = g
			keys = append(keys, k)
		}
		g.Decisions = append(g.Decisions, Decision{Snapshot: sn})
	}
	slices.Sort(keys)
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		if p.Empty() {
			for i := range g.Decisions {
				g.Decisions[i].Keep, g.Decisions[i].Reasons = true, []string{"no keep rule"}
			}
		} else {
			decide(g.Decisions, p, now)
		}
		out = append(out, *g)
	}
	return out
}

type bucketState struct {
	rule
	last int
}

func decide(ds []Decision, p Policy, now time.Time) {
	// newest first; equal times by ID so that the result never depends
	// on the listing's order
	slices.SortStableFunc(ds, func(a, b Decision) int {
		if c := b.Snapshot.Time.Compare(a.Snapshot.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Snapshot.ID.String(), b.Snapshot.ID.String())
	})
	var bs []bucketState
	for _, r := range p.rules() {
		if r.count != 0 {
			bs = append(bs, bucketState{rule: r, last: -1})
		}
	}
	for nr := range ds {
		d := &ds[nr]
		sn := d.Snapshot
		if sn.Time.After(now) {
			// restic: the calendar rules ignore snapshots from the
			// future, which are hence not removed
			d.Keep = true
			d.Reasons = append(d.Reasons, "in the future")
			continue
		}
		if sn.Pinned(now) {
			d.Keep = true
			d.Reasons = append(d.Reasons, pinReason(sn))
		}
		for _, l := range p.Tags {
			if hasAll(sn, l) {
				d.Keep = true
				d.Reasons = append(d.Reasons, "has tags ["+strings.Join(l, ", ")+"]")
			}
		}
		for i := range bs {
			b := &bs[i]
			if b.count == 0 {
				continue
			}
			val := b.bucket(sn.Time, nr)
			oldest := nr == len(ds)-1 && b.name != "last"
			if val != b.last || oldest {
				reason := b.name + " snapshot"
				if b.name == "last" {
					reason = "last snapshot"
				} else if val == b.last {
					reason = "oldest " + reason
				}
				d.Keep = true
				d.Reasons = append(d.Reasons, reason)
				b.last = val
				if b.count > 0 {
					b.count--
				}
			}
		}
	}
}

// pinReason says until when sn is pinned: "pinned until 2025-01-30" or
// "pinned".
func pinReason(sn *repo.Snapshot) string {
	for _, t := range sn.Tags {
		if day, ok := strings.CutPrefix(t, repo.PinUntilPrefix); ok {
			return "pinned until " + day
		}
	}
	return "pinned"
}

// Remove deletes the snapshot files of the decisions not kept and
// returns how many it removed. It re-checks each pin right before the
// removal (never forget a pinned snapshot, whatever the caller passes).
// Call it under the exclusive lock.
func Remove(ctx context.Context, r *repo.Repository, groups []Group, now time.Time) (int, error) {
	n := 0
	for _, g := range groups {
		for _, d := range g.Decisions {
			if d.Keep {
				continue
			}
			if d.Snapshot.Pinned(now) {
				return n, fmt.Errorf("snapshot %s is pinned; refusing to forget it", d.Snapshot.ID.Str())
			}
			if err := r.LockValid(); err != nil {
				return n, err
			}
			err := r.Backend().Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: d.Snapshot.ID.String()})
			if err != nil && !backend.IsNotExist(err) {
				return n, fmt.Errorf("forget snapshot %s: %w", d.Snapshot.ID.Str(), err)
			}
			n++
		}
	}
	return n, nil
}

// Unpin rewrites sn without its pin tags the way restic's `tag` rewrites
// a snapshot: a new snapshot file with Original set to the first
// snapshot it derives from, then the old file removed. It returns the
// new snapshot; a snapshot without pin tags is returned unchanged.
// Call it under the exclusive lock.
func Unpin(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) (*repo.Snapshot, bool, error) {
	tags := slices.DeleteFunc(slices.Clone(sn.Tags), func(t string) bool {
		return t == repo.PinTag || strings.HasPrefix(t, repo.PinUntilPrefix)
	})
	if len(tags) == len(sn.Tags) {
		return sn, false, nil
	}
	n := *sn
	n.Tags = tags
	if len(tags) == 0 {
		n.Tags = nil
	}
	if n.Original == nil {
		orig := sn.ID
		n.Original = &orig
	}
	if _, err := r.SaveSnapshot(ctx, &n); err != nil {
		return nil, false, fmt.Errorf("unpin %s: save the rewritten snapshot: %w", sn.ID.Str(), err)
	}
	if err := r.Backend().Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: sn.ID.String()}); err != nil && !backend.IsNotExist(err) {
		return nil, false, fmt.Errorf("unpin %s: remove the old snapshot (the new one is %s): %w", sn.ID.Str(), n.ID.Str(), err)
	}
	return &n, true, nil
}
