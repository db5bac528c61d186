package main

import (
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
)

// The gate's lines for a host kept closed and isolated (on_compromise:
// isolate): what it is now, and the way back to the lockdown firewall;
// a failed isolation says so in capitals.
func TestPrintGateIsolation(t *testing.T) {
	kept := func(isolated, isoErr string) actions.HostResult {
		return actions.HostResult{Host: "sys1", Status: actions.HostKeptClosed, Gate: &actions.GateVerdict{
			Checked: true, Verdict: "3 compromise indicator(s) found", Indicators: 3, Isolate: true,
			Isolated: isolated, IsolateError: isoErr,
		}}
	}
	for _, tc := range []struct {
		name    string
		h       actions.HostResult
		want    []string
		notWant string
	}{
		{"isolated now", kept(actions.IsolatedNow, ""), []string{
			"sys1: isolated: only the management path reaches it; its own outgoing connections are dropped (on_compromise: isolate)\n",
			"sys1: back to the lockdown firewall alone: holiday isolate --undo -f plan.yaml sys1\n",
		}, "NOT ISOLATED"},
		{"already isolated", kept(actions.IsolatedAlready, ""), []string{
			"its own outgoing connections are dropped (on_compromise: isolate; already by an earlier restore)\n",
		}, "NOT ISOLATED"},
		{"isolation failed", kept("", "observe: no agent"), []string{
			"sys1: NOT ISOLATED (on_compromise: isolate): observe: no agent; it stays as lockdown left it\n",
		}, "sys1: isolated:"},
		{"keep", actions.HostResult{Host: "sys1", Gate: &actions.GateVerdict{Checked: true, Indicators: 1}}, nil, "isolat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			printGate(&b, tc.h, "plan.yaml", "RUN")
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			if strings.Contains(b.String(), tc.notWant) {
				t.Errorf("has %q:\n%s", tc.notWant, b.String())
			}
		})
	}
}
