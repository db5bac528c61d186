package repo

import (
	"strings"
	"time"
)

// Pins (DESIGN §7): a snapshot tagged PinTag is never forgotten by keep
// rules; stock restic honours it with `--keep-tag holiday-pin`. A pin may
// carry an end, the tag PinUntilPrefix+"2006-01-02": from the day after
// it, forget treats the snapshot as unpinned. Every snapshot a lockdown
// takes is pinned until the plan's window end plus PinGrace.
const (
	PinTag         = "holiday-pin"
	PinUntilPrefix = "pin-until:"
	PinGrace       = 30 * 24 * time.Hour
)

// PinTags are the tags that pin a snapshot until the end of the day
// until falls on (UTC); a zero until pins without an end.
func PinTags(until time.Time) []string {
	if until.IsZero() {
		return []string{PinTag}
	}
	return []string{PinTag, PinUntilPrefix + until.UTC().Format(time.DateOnly)}
}

// Pinned says whether sn is pinned at time now: it has PinTag and no
// pin-until day that has passed. A malformed pin-until keeps the pin
// (never forget by accident).
func (sn *Snapshot) Pinned(now time.Time) bool {
	pinned := false
	for _, t := range sn.Tags {
		if t == PinTag {
			pinned = true
		}
	}
	if !pinned {
		return false
	}
	for _, t := range sn.Tags {
		day, ok := strings.CutPrefix(t, PinUntilPrefix)
		if !ok {
			continue
		}
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return true
		}
		if now.UTC().After(d.Add(24 * time.Hour)) {
			return false
		}
	}
	return true
}
