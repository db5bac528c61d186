package main

import (
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/hostbackup"
)

func TestProgressLine(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name string
		st   hostbackup.Stats
		want string
	}{
		{"files half way", hostbackup.Stats{Files: 120, Bytes: 100 * mib, BytesSent: 40 * mib, Elapsed: 10 * time.Second, Total: 200 * mib, Done: 100 * mib},
			"sys1       backup files /etc: 120 files, 100.0 MiB read, 40.0 MiB sent, 10.0 MiB/s, 50% of 200.0 MiB, ETA 10s"},
		{"unchanged files count as done", hostbackup.Stats{Files: 5000, Bytes: 10 * mib, Elapsed: 5 * time.Second, Total: 1000 * mib, Done: 500 * mib},
			"sys1       backup files /etc: 5000 files, 10.0 MiB read, 0 B sent, 2.0 MiB/s, 50% of 1000.0 MiB, ETA 5s"},
		{"disk, minutes", hostbackup.Stats{Files: 0, Bytes: 1024 * mib, Elapsed: 10 * time.Second, Total: 64 * 1024 * mib, Done: 1024 * mib},
			"sys1       backup files /etc: 0 files, 1.00 GiB read, 0 B sent, 102.4 MiB/s, 1% of 64.00 GiB, ETA 10m30s"},
		{"hours", hostbackup.Stats{Bytes: mib, Elapsed: 10 * time.Second, Total: 1024 * mib, Done: mib},
			"sys1       backup files /etc: 0 files, 1.0 MiB read, 0 B sent, 102.4 KiB/s, 0% of 1.00 GiB, ETA 2h51m"},
		{"nothing done yet", hostbackup.Stats{Elapsed: 3 * time.Second, Total: 10 * mib},
			"sys1       backup files /etc: 0 files, 0 B read, 0 B sent, 0 B/s, 0% of 10.0 MiB, ETA ?"},
		{"a file grew past the walk's total", hostbackup.Stats{Bytes: 12 * mib, Elapsed: 2 * time.Second, Total: 10 * mib, Done: 12 * mib},
			"sys1       backup files /etc: 0 files, 12.0 MiB read, 0 B sent, 6.0 MiB/s, 100% of 10.0 MiB, ETA 0s"},
		{"dump: size unknown, no ETA", hostbackup.Stats{Files: 0, Bytes: 30 * mib, BytesSent: 30 * mib, Elapsed: 3 * time.Second},
			"sys1       backup files /etc: 0 files, 30.0 MiB read, 30.0 MiB sent, 10.0 MiB/s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := progressLine("sys1", "files /etc", c.st); got != c.want {
				t.Errorf("\ngot  %q\nwant %q", got, c.want)
			}
		})
	}
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
