package forget

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/golden"
)

// go test ./backup/forget -update rewrites testdata/*.golden.

func snap(n int, host, path string, t time.Time, tags ...string) *repo.Snapshot {
	var id repo.ID
	id[0], id[1] = byte(n>>8), byte(n)
	tree := id
	return &repo.Snapshot{ID: id, Time: t, Hostname: host, Paths: []string{path}, Tags: tags, Tree: &tree}
}

// series makes n snapshots of host mopped, /home/user/work, every step
// from start.
func series(n int, start time.Time, step time.Duration) []*repo.Snapshot {
	var out []*repo.Snapshot
	for i := range n {
		out = append(out, snap(i, "mopped", "/home/user/work", start.Add(time.Duration(i)*step)))
	}
	return out
}

func daily(days int, start time.Time) []*repo.Snapshot {
	var out []*repo.Snapshot
	for i := range days {
		out = append(out, snap(i, "mopped", "/srv", start.AddDate(0, 0, i)))
	}
	return out
}

var now = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func render(groups []Group) []byte {
	var b bytes.Buffer
	for _, g := range groups {
		fmt.Fprintf(&b, "group host=%s paths=%v: keep %d of %d\n", g.Host, g.Paths, g.Kept(), len(g.Decisions))
		for _, d := range g.Decisions {
			verdict := "remove"
			if d.Keep {
				verdict = "keep  "
			}
			fmt.Fprintf(&b, "  %s %s %s %s [%s]\n", verdict, d.Snapshot.ID.Str(), d.Snapshot.Time.Format("2006-01-02 15:04 Mon"),
				strings.Join(d.Snapshot.Tags, ","), strings.Join(d.Reasons, ", "))
		}
	}
	return b.Bytes()
}

// TestApply checks the keep decisions against restic's documented
// semantics (doc/060_forget.rst): the counts in the table are what the
// documentation says; the golden files pin which snapshot and why.
func TestApply(t *testing.T) {
	sundays := series(12, time.Date(2019, 9, 1, 11, 0, 0, 0, time.UTC), 7*24*time.Hour)
	january := []*repo.Snapshot{
		snap(1, "myhost", "/tmp/data", time.Date(2024, 1, 2, 13, 42, 44, 0, time.UTC)),
		snap(2, "myhost", "/tmp/data", time.Date(2024, 1, 3, 1, 4, 38, 0, time.UTC)),
		snap(3, "myhost", "/tmp/data", time.Date(2024, 1, 4, 20, 9, 54, 0, time.UTC)),
		snap(4, "myhost", "/tmp/data", time.Date(2024, 1, 4, 20, 20, 32, 0, time.UTC)),
	}
	// a hundred years of days ending on Sunday, 31 December 2023: the
	// documentation's counts assume the newest week and year end there
	century := daily(100*365+24, time.Date(2023, 12, 31, 12, 0, 0, 0, time.UTC).AddDate(0, 0, -(100*365+23)))
	pinned := series(6, time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC), 24*time.Hour)
	pinned[0].Tags = repo.PinTags(time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)) // until the last day before now: kept
	pinned[1].Tags = repo.PinTags(time.Date(2029, 12, 30, 0, 0, 0, 0, time.UTC)) // expired the day before
	pinned[2].Tags = repo.PinTags(time.Time{})                                   // pinned for good
	mixed := []*repo.Snapshot{
		snap(1, "a", "/etc", time.Date(2024, 5, 1, 1, 0, 0, 0, time.UTC), "holiday"),
		snap(2, "a", "/etc", time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC)),
		snap(3, "a", "/var", time.Date(2024, 5, 1, 3, 0, 0, 0, time.UTC)),
		snap(4, "b", "/etc", time.Date(2024, 5, 1, 4, 0, 0, 0, time.UTC), "holiday", "kind:files"),
		snap(5, "b", "/etc", time.Date(2024, 5, 1, 5, 0, 0, 0, time.UTC), "kind:files"),
		snap(6, "a", "/etc", time.Date(2024, 5, 1, 6, 0, 0, 0, time.UTC)),
	}
	hours := series(30, time.Date(2024, 6, 1, 0, 10, 0, 0, time.UTC), 20*time.Minute)
	future := series(3, now.Add(-time.Hour), time.Hour)

	for _, tc := range []struct {
		name string
		sns  []*repo.Snapshot
		p    Policy
		keep int // as restic's documentation has it
	}{
		// "forget --keep-daily 4 will keep the last four snapshots, for
		// the last four Sundays, and remove the other snapshots"
		{"doc_sundays_daily4", sundays, Policy{Daily: 4}, 4},
		// weekly: one per ISO week, all twelve distinct: five newest
		{"sundays_weekly5", sundays, Policy{Weekly: 5}, 5},
		// monthly 2: Nov 17, Oct 27 (the newest of each)
		{"sundays_monthly2", sundays, Policy{Monthly: 2}, 2},
		// monthly 12 with three months: the three newest of each, and
		// the oldest because counts are left ("oldest monthly snapshot")
		{"sundays_monthly12_oldest", sundays, Policy{Monthly: 12}, 4},
		// forum: four January snapshots, keep-monthly 4: the newest
		// and the oldest
		{"january_monthly4", january, Policy{Monthly: 4}, 2},
		{"january_last2", january, Policy{Last: 2}, 2},
		{"january_last10", january, Policy{Last: 10}, 4},
		{"january_daily_unlimited", january, Policy{Daily: Unlimited}, 3},
		// "one backup every day for 100 years … --keep-daily 7
		// --keep-weekly 5 --keep-monthly 12 --keep-yearly 75": 7 daily,
		// 4 more weekly, 11 or 12 more monthly, 74 or 75 more yearly
		{"doc_century", century, Policy{Daily: 7, Weekly: 5, Monthly: 12, Yearly: 75}, 7 + 4 + 11 + 74},
		// hourly over 10 hours with three snapshots each
		{"hours_hourly4", hours, Policy{Hourly: 4}, 4},
		{"hours_last3_hourly2", hours, Policy{Last: 3, Hourly: 2}, 4},
		// pins: kept whatever the rules say, until the pin's day ends
		{"pins_last1", pinned, Policy{Last: 1}, 3},
		// groups by host and paths; keep-tag keeps without counting
		{"groups_last1", mixed, Policy{Last: 1}, 3},
		{"groups_keeptag", mixed, Policy{Tags: [][]string{{"holiday"}}}, 2},
		{"groups_keeptag_and", mixed, Policy{Tags: [][]string{{"holiday", "kind:files"}}}, 1},
		// from the future: kept, not counted
		{"future_last1", future, Policy{Last: 1}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups := Apply(tc.sns, tc.p, now)
			kept := 0
			for _, g := range groups {
				kept += g.Kept()
				for _, d := range g.Decisions {
					if d.Snapshot.Pinned(now) && !d.Keep {
						t.Errorf("pinned snapshot %s removed", d.Snapshot.ID.Str())
					}
					if d.Keep != (len(d.Reasons) > 0) {
						t.Errorf("snapshot %s: keep=%v with reasons %v", d.Snapshot.ID.Str(), d.Keep, d.Reasons)
					}
				}
			}
			if kept != tc.keep {
				t.Errorf("kept %d snapshots, restic's documentation says %d", kept, tc.keep)
			}
			if tc.name == "doc_century" {
				return // 36524 lines: the count is the point
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), render(groups))
		})
	}
}

func TestMatches(t *testing.T) {
	sn := snap(1, "web1", "/etc", now, "holiday", "kind:files")
	for _, tc := range []struct {
		host string
		tags [][]string
		want bool
	}{
		{"", nil, true},
		{"web1", nil, true},
		{"web2", nil, false},
		{"", [][]string{{"holiday"}}, true},
		{"", [][]string{{"holiday", "kind:disk"}}, false},
		{"", [][]string{{"holiday", "kind:disk"}, {"kind:files"}}, true},
		{"web2", [][]string{{"holiday"}}, false},
	} {
		if got := Matches(sn, tc.host, tc.tags); got != tc.want {
			t.Errorf("Matches(host %q, tags %v) = %v, want %v", tc.host, tc.tags, got, tc.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (Policy{Daily: -2}).Validate(); err == nil || !strings.Contains(err.Error(), "--keep-daily -2") {
		t.Errorf("Validate(-2) = %v, want an error naming --keep-daily", err)
	}
	if err := (Policy{Daily: Unlimited, Last: 3}).Validate(); err != nil {
		t.Errorf("Validate(unlimited) = %v", err)
	}
	if !(Policy{}).Empty() || (Policy{Tags: [][]string{{"x"}}}).Empty() {
		t.Error("Empty is wrong")
	}
	if got := (Policy{Last: 3, Daily: 7, Monthly: Unlimited}).String(); got != "keep 3 latest snapshots, 7 daily snapshots, all monthly snapshots" {
		t.Errorf("String() = %q", got)
	}
}

// TestEmptyPolicyKeepsAll: the library guards itself: an empty policy
// keeps every snapshot, so no caller can forget all by passing none.
func TestEmptyPolicyKeepsAll(t *testing.T) {
	now := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	var sns []*repo.Snapshot
	for i := 0; i < 5; i++ {
		sns = append(sns, &repo.Snapshot{Time: now.Add(-time.Duration(i) * 24 * time.Hour), Hostname: "h", Paths: []string{"/etc"}})
	}
	for _, g := range Apply(sns, Policy{}, now) {
		if g.Kept() != len(g.Decisions) {
			t.Fatalf("empty policy kept %d of %d", g.Kept(), len(g.Decisions))
		}
		for _, d := range g.Decisions {
			if len(d.Reasons) != 1 || d.Reasons[0] != "no keep rule" {
				t.Errorf("reasons %v", d.Reasons)
			}
		}
	}
}
