// Package integrity holds holiday's compromise-response core (DESIGN §8):
// the collection of a host's security-relevant state (accounts, keys,
// persistence, listeners, modules, SUID files, hashes of system binaries,
// /etc, web roots, logs, processes), the comparison of a check against the
// baseline taken at lockdown, which classifies every difference as an
// indicator, drift or churn, and the host-side evidence acquisition.
//
// The collectors run inside `holiday agent` as root and read /proc, /sys
// and files directly, never the host's ps, ss or netstat, which an intruder
// may have replaced; the one exception is the cross-view, which runs the
// host's own ps and ss on purpose and compares what they show with /proc.
// Every collector takes a root directory so unit tests run on a fake tree.
// Comparison is pure and runs on the control node, off the host.
//
// It imports nothing of holiday's above internal/.
package integrity
