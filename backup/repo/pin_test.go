package repo

import (
	"testing"
	"time"
)

func TestPinned(t *testing.T) {
	now := time.Date(2027, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		tags []string
		want bool
	}{
		{"untagged", []string{"holiday"}, false},
		{"pinned, no end", PinTags(time.Time{}), true},
		{"pinned until a later day", PinTags(now.Add(48 * time.Hour)), true},
		{"pinned until today", PinTags(now), true},
		{"pin ended yesterday", PinTags(now.Add(-24 * time.Hour)), false},
		{"pin-until alone pins nothing", []string{PinUntilPrefix + "2030-01-01"}, false},
		{"malformed end keeps the pin", []string{PinTag, PinUntilPrefix + "soon"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sn := &Snapshot{Tags: tc.tags}
			if got := sn.Pinned(now); got != tc.want {
				t.Errorf("Pinned(%v) = %v, want %v", tc.tags, got, tc.want)
			}
		})
	}
}
