package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/internal/golden"
	"github.com/holiday-ops/holiday/restore"
)

// TestRollbackLine: a rollback's progress lines, against
// testdata/progress-rollback.golden (go test -update rewrites it).
func TestRollbackLine(t *testing.T) {
	const mib = 1 << 20
	var out strings.Builder
	for _, c := range []struct {
		name, what string
		p          restore.Progress
	}{
		{"files half way", "files /etc,/var/www", restore.Progress{Kind: "files", Files: 12, Bytes: 50 * mib, Total: 100 * mib, Elapsed: 5 * time.Second}},
		{"files: metadata changes only, no content to send", "files /etc", restore.Progress{Kind: "files", Elapsed: 2 * time.Second}},
		{"disk, minutes", "disk /dev/vdb", restore.Progress{Kind: "disk", Blocks: 30, Bytes: 30 * mib, Total: 1024 * mib, Elapsed: 10 * time.Second}},
		{"disk: the first block not through yet", "disk /dev/vdb", restore.Progress{Kind: "disk", Total: 4 * mib, Elapsed: time.Second}},
		{"database into a new one", "postgres database shop into shop_back", restore.Progress{Kind: "postgres", Bytes: 8 * mib, Total: 64 * mib, Elapsed: 2 * time.Second}},
		{"database done", "mysql database shop", restore.Progress{Kind: "mysql", Bytes: 64 * mib, Total: 64 * mib, Elapsed: 4 * time.Second}},
	} {
		fmt.Fprintf(&out, "# %s\n%s\n", c.name, rollbackLine("sys1", c.what, c.p))
	}
	golden.Check(t, "testdata/progress-rollback.golden", []byte(out.String()))
}

// TestRollbackProgress: a rollback's pre-rollback snapshot and its
// writing share one line every 5 s (the first at once), in the same
// format as the backups'.
func TestRollbackProgress(t *testing.T) {
	var out strings.Builder
	writing, snapshot := rollbackProgress(&out, "sys1")
	snapshot("pre-rollback disk /dev/vdb", hostbackup.Stats{Bytes: 1 << 20, Elapsed: 2 * time.Second, Total: 4 << 20, Done: 1 << 20})
	writing("disk /dev/vdb", restore.Progress{Kind: "disk", Blocks: 1, Bytes: 1 << 20, Total: 4 << 20, Elapsed: 2 * time.Second})
	want := "sys1       backup pre-rollback disk /dev/vdb: 0 files, 1.0 MiB read, 0 B sent, 512.0 KiB/s, 25% of 4.0 MiB, ETA 6s\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant (the second within 5 s left out)\n%s", out.String(), want)
	}
}

// TestLineThrottle: a key prints at most once per progressEvery; keys
// (hosts) do not hold each other back.
func TestLineThrottle(t *testing.T) {
	var out strings.Builder
	p := newLineThrottle(&out)
	p.print("sys1", func() string { return "a" })
	p.print("sys1", func() string { t.Error("a second line of sys1 within 5 s was formatted"); return "b" })
	p.print("sys2", func() string { return "c" })
	p.last["sys1"] = time.Now().Add(-progressEvery)
	p.print("sys1", func() string { return "d" })
	if got := out.String(); got != "a\nc\nd\n" {
		t.Errorf("got %q, want a, c, d", got)
	}
}
