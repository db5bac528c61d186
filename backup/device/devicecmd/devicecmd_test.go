package devicecmd

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/repo"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestDeviceSummaryGolden: the summary an operator reads after `holiday
// devices backup`, for every outcome: stored, stored with unsaved changes
// (saved or not), nothing to save, and failures.
func TestDeviceSummaryGolden(t *testing.T) {
	id := func(b byte) *repo.Snapshot {
		var x repo.ID
		for i := range x {
			x[i] = b
		}
		return &repo.Snapshot{ID: x}
	}
	res := []device.Result{
		{Device: "core-sw1", Model: "huawei-vrp", Snapshot: id(0xab), Elapsed: time.Second,
			Fetched: &device.Fetched{Config: "x", Unsaved: device.UnsavedFound, Saved: true}},
		{Device: "access-sw7", Model: "cisco-ios", Snapshot: id(0x12), Elapsed: time.Second,
			Fetched: &device.Fetched{Config: "x", Unsaved: device.UnsavedFound}},
		{Device: "edge-r1", Model: "junos", Snapshot: id(0x34), Elapsed: time.Second,
			Fetched: &device.Fetched{Config: "x", Unsaved: device.UnsavedNone, SaveSkipped: "no save needed: junos's running config is the saved one"}},
		{Device: "fw1", Model: "fortios", Snapshot: id(0x56), Elapsed: time.Second,
			Fetched: &device.Fetched{Config: "x", Saved: true, Warnings: []string{`"terminal length 0" refused: % Invalid input`}}},
		{Device: "dist-sw2", Model: "huawei-vrp", Snapshot: id(0x78), Elapsed: time.Second,
			Fetched: &device.Fetched{Config: "x", Unsaved: device.UnsavedFound, SaveSkipped: "save failed",
				SaveErr: errors.New(`save ("save") did not report success: "Error: The file system is full."`)}},
		{Device: "old-router", Model: "cisco-ios", Elapsed: 15 * time.Second,
			Err: errors.New("10.0.0.3:22: connected, but the SSH handshake did not finish within 15s")},
	}
	var b strings.Builder
	if err := PrintSummary(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		b.WriteString(line(r) + "\n")
	}
	path := filepath.Join("testdata", "summary.golden")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("summary differs from %s:\n%s", path, b.String())
	}
}
