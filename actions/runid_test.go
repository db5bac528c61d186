package actions

import "testing"

// A run ID from a host's journal copy becomes a path on the control node:
// only the shape NewRunID makes is accepted.
func TestRunIDPattern(t *testing.T) {
	if id := NewRunID(); !runIDPattern.MatchString(id) {
		t.Fatalf("NewRunID() = %q does not match its own pattern", id)
	}
	for _, bad := range []string{"", "../../etc", "20260205T180000Z-1a2b3c/../x", "20260205T180000Z-1A2B3C", "20260205T180000Z-1a2b3c\n"} {
		if runIDPattern.MatchString(bad) {
			t.Errorf("run ID %q accepted", bad)
		}
	}
}
