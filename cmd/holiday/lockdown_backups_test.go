package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/internal/golden"
)

// TestProgressLine: a host's source's progress lines, against
// testdata/progress-backup.golden (go test -update rewrites it).
func TestProgressLine(t *testing.T) {
	const mib = 1 << 20
	var out strings.Builder
	for _, c := range []struct {
		name, source string
		st           hostbackup.Stats
	}{
		{"files half way", "files /etc", hostbackup.Stats{Files: 120, Bytes: 100 * mib, BytesSent: 40 * mib, Elapsed: 10 * time.Second, Total: 200 * mib, Done: 100 * mib}},
		{"unchanged files count as done", "files /etc", hostbackup.Stats{Files: 5000, Bytes: 10 * mib, Elapsed: 5 * time.Second, Total: 1000 * mib, Done: 500 * mib}},
		{"disk, minutes", "disk /dev/vdb", hostbackup.Stats{Files: 0, Bytes: 1024 * mib, Elapsed: 10 * time.Second, Total: 64 * 1024 * mib, Done: 1024 * mib}},
		{"hours", "files /etc", hostbackup.Stats{Bytes: mib, Elapsed: 10 * time.Second, Total: 1024 * mib, Done: mib}},
		{"nothing done yet", "files /etc", hostbackup.Stats{Elapsed: 3 * time.Second, Total: 10 * mib}},
		{"a file grew past the walk's total", "files /etc", hostbackup.Stats{Bytes: 12 * mib, Elapsed: 2 * time.Second, Total: 10 * mib, Done: 12 * mib}},
		{"dump without an earlier one: size unknown, no ETA", "postgres shop", hostbackup.Stats{Files: 0, Bytes: 30 * mib, BytesSent: 30 * mib, Elapsed: 3 * time.Second}},
		{"dump: about the previous dump's size", "postgres shop", hostbackup.Stats{Bytes: 30 * mib, BytesSent: 30 * mib, Elapsed: 3 * time.Second, Total: 60 * mib, Done: 30 * mib, Estimated: true}},
		{"dump: estimate, nothing behind yet", "mysql shop", hostbackup.Stats{Elapsed: 2 * time.Second, Total: 60 * mib, Estimated: true}},
		{"dump: grown past the previous dump's size", "postgres shop", hostbackup.Stats{Bytes: 70 * mib, BytesSent: 70 * mib, Elapsed: 7 * time.Second, Total: 60 * mib, Done: 70 * mib, Estimated: true}},
		{"pre-rollback dump (holiday rollback --replace)", "pre-rollback postgres database shop", hostbackup.Stats{Bytes: 3 * mib, BytesSent: 3 * mib, Elapsed: 3 * time.Second, Total: 12 * mib, Done: 3 * mib, Estimated: true}},
	} {
		fmt.Fprintf(&out, "# %s\n%s\n", c.name, progressLine("sys1", c.source, c.st))
	}
	golden.Check(t, "testdata/progress-backup.golden", []byte(out.String()))
}

func TestETAString(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {1400 * time.Millisecond, "1s"}, {59 * time.Second, "59s"}, {60 * time.Second, "1m00s"},
		{185 * time.Second, "3m05s"}, {59*time.Minute + 59*time.Second, "59m59s"}, {time.Hour, "1h00m"},
		{2*time.Hour + 10*time.Minute + 29*time.Second, "2h10m"}, {30 * time.Hour, "30h00m"},
	} {
		if got := etaString(c.d); got != c.want {
			t.Errorf("etaString(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
