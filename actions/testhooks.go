//go:build holidaytest

package actions

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The test hooks, built only with -tags holidaytest (the lab tests build
// the binary so); testhooks_off.go is their no-op twin in a release.

// crashAt kills the process at a test hook point named by
// $HOLIDAY_TEST_CRASH ("service:after-intent", "*:after-apply", …): the
// journal shows exactly what a power cut there would leave.
func (o *Options) crashAt(kind, point string) { crashPoint(kind, point) }

// crashPoint is crashAt for code without the run's options (inside an
// action: "firewall:before-disarm").
func crashPoint(kind, point string) {
	c := os.Getenv("HOLIDAY_TEST_CRASH")
	if c == "" {
		return
	}
	k, p, _ := strings.Cut(c, ":")
	if (k == kind || k == "*") && p == point {
		fmt.Fprintf(os.Stderr, "holiday: HOLIDAY_TEST_CRASH=%s: killing myself\n", c)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

// powerTestMode: with HOLIDAY_TEST_POWEROFF=record in the control node's
// environment, the power step only records a marker on the host.
func powerTestMode() bool { return os.Getenv("HOLIDAY_TEST_POWEROFF") == "record" }

// firewallTestHook: HOLIDAY_TEST_FIREWALL=no-confirm makes the firewall
// skip its confirmation and disarm, so the host's dead-man reverts;
// =block-control applies, first in holiday's chain, a DROP of everything
// from the control node (what a lint gap would do): the confirmation
// fails for real and the host reverts by itself; =fail-v4 adds a line
// iptables-restore rejects to the IPv4 rules: IPv6 is applied, IPv4
// fails, and IPv6 must be rolled back.
func firewallTestHook() string { return os.Getenv("HOLIDAY_TEST_FIREWALL") }

// deadmanSecs: HOLIDAY_TEST_DEADMAN_SECS shortens the dead-man's wait.
func deadmanSecs() int {
	if n, err := strconv.Atoi(os.Getenv("HOLIDAY_TEST_DEADMAN_SECS")); err == nil && n > 0 {
		return n
	}
	return DefaultDeadmanSecs
}
