package repocmd

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/forget"
	"github.com/holiday-ops/holiday/backup/prune"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/golden"
)

func TestGoldenForget(t *testing.T) {
	var sns []*repo.Snapshot
	for i := range 5 {
		sn := &repo.Snapshot{ID: id(byte(0x10 + i)), Time: t0.Add(time.Duration(i) * 24 * time.Hour), Tree: ptr(id(0x2b)), Paths: []string{"/etc"}, Hostname: "web1"}
		if i == 0 {
			sn.Tags = repo.PinTags(time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC))
		}
		sns = append(sns, sn)
	}
	sns = append(sns, &repo.Snapshot{ID: id(0x30), Time: t0, Tree: ptr(id(0x2b)), Paths: []string{"/srv"}, Hostname: "db1", Tags: []string{"keep"}})
	now := t0.Add(10 * 24 * time.Hour)
	p := forget.Policy{Last: 1, Daily: 2, Tags: [][]string{{"keep"}}}
	groups := forget.Apply(sns, p, now)
	for _, tc := range []struct {
		name   string
		dryRun bool
		asJSON bool
	}{{"forget", false, false}, {"forget_dry_run", true, false}, {"forget_json", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if tc.asJSON {
				if err := PrintForgetJSON(&b, groups); err != nil {
					t.Fatal(err)
				}
			} else {
				PrintForget(&b, p, groups, tc.dryRun)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

func TestGoldenPrune(t *testing.T) {
	st := prune.Stats{Snapshots: 3, Packs: 20, UsedBlobs: 1200, UsedBytes: 300 << 20, UnusedBytes: 90 << 20,
		KeepPacks: 12, RepackPacks: 3, RepackBytes: 20 << 20, DeletePacks: 8, DeleteBytes: 100 << 20, Unreferenced: 1,
		UnusedAfter: 5 << 20, NewPacks: 2, IndexWritten: 1, IndexRemoved: 4}
	retained := st
	retained.RetainedPacks, retained.RetainedUntil = 2, time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	dry := st
	dry.DryRun, dry.NewPacks, dry.IndexWritten, dry.IndexRemoved = true, 0, 0, 0
	for _, tc := range []struct {
		name   string
		st     prune.Stats
		asJSON bool
	}{{"prune", st, false}, {"prune_retained", retained, false}, {"prune_dry_run", dry, false}, {"prune_json", st, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := PrintPrune(&b, tc.st, tc.asJSON); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

func TestParseMaxUnused(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{{"", 0.05, true}, {"5%", 0.05, true}, {"0%", 0, true}, {"12.5%", 0.125, true}, {"100%", 0, false}, {"5", 0, false}, {"-1%", 0, false}, {"x%", 0, false}} {
		got, err := parseMaxUnused(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("parseMaxUnused(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestGoldenImmutability(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	set := &repo.ObjectLock{Mode: "COMPLIANCE", Days: 30}
	for _, tc := range []struct {
		name string
		im   repo.Immutability
	}{
		{"immutability_local", repo.Immutability{}},
		{"immutability_no_bucket_lock", repo.Immutability{Supported: true}},
		{"immutability_yes", repo.Immutability{Supported: true, Enabled: true, Setting: set, ConfigUntil: now.Add(20 * 24 * time.Hour),
			Snapshots: 4, Retained: 4, Until: now.Add(3 * 24 * time.Hour), Latest: now.Add(29 * 24 * time.Hour)}},
		{"immutability_partly", repo.Immutability{Supported: true, Enabled: true, Setting: set, ConfigUntil: now.Add(-time.Hour),
			Snapshots: 4, Retained: 3, Until: now.Add(3 * 24 * time.Hour), Latest: now.Add(29 * 24 * time.Hour)}},
		{"immutability_no_setting", repo.Immutability{Supported: true, Enabled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			PrintImmutability(&b, &tc.im, now)
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}
