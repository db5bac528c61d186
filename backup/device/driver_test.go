package device_test

import (
	"slices"
	"testing"

	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/device/devicesim"
)

// TestDeviceDrivers: every driver has what Fetch relies on, and every
// model has a simulator (the plan's seven models are listed in
// plans/types.go; cmd's tests back up one device of each).
func TestDeviceDrivers(t *testing.T) {
	if got, want := device.Models(), devicesim.Models(); !slices.Equal(got, want) {
		t.Fatalf("drivers %v, simulators %v", got, want)
	}
	if len(device.Models()) != 7 {
		t.Fatalf("%d models, want the plan's 7", len(device.Models()))
	}
	for _, m := range device.Models() {
		d := device.Drivers[m]
		if d.Model != m || d.ShowCommand == "" || d.Complete == nil || d.EndMarker == "" || len(d.Secrets) == 0 {
			t.Errorf("%s: incomplete driver %+v", m, d)
		}
		if !d.Exec && (d.Prompt == nil || d.Pager == nil || d.PagerKey == "") {
			t.Errorf("%s: an interactive driver needs Prompt, Pager and PagerKey", m)
		}
		if d.Complete("") {
			t.Errorf("%s: an empty config counts as complete", m)
		}
		for _, re := range d.Secrets {
			if !slices.Contains(re.SubexpNames(), "s") {
				t.Errorf("%s: secret pattern %s has no group named s: it would mask nothing", m, re)
			}
		}
	}
}
