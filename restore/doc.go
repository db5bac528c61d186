// Package restore is the way back after the break: `holiday restore`
// (find the run — from this control node's state, the hosts' own journal
// copies, or the plan's repository, where each run's journals are kept
// with the key that verifies them —; check each host the run left closed
// against the integrity baseline that run took, through a fresh agent
// (the gate, gate.go: a host with compromise indicators, or one that
// cannot be checked, is kept closed, its evidence taken); and revert the
// journal in reverse on every host the gate reopens) and `holiday status`
// (does the lockdown still hold, checked on each host). The reverts
// themselves are the actions' (actions.RevertJournals), since a lockdown
// that fails half-way reverts the same way; the check and the evidence
// are actions/incident's.
//
// Still to come here: `holiday rollback` (snapshot → host: files,
// database, disk image, device config).
//
// It may import actions, backup and internal/...; never cmd.
package restore
