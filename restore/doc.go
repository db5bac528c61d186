// Package restore is the way back after the break: `holiday restore`
// (find the run — from this control node's state, the hosts' own journal
// copies, or the plan's repository, where each run's journals are kept
// with the key that verifies them — and revert its journal in reverse on
// every host) and `holiday status` (does the lockdown still hold, checked
// on each host). The
// reverts themselves are the actions' (actions.RevertJournals), since a
// lockdown that fails half-way reverts the same way.
//
// Still to come here: the integrity gate before a host is reopened, and
// `holiday rollback` (snapshot → host: files, database, disk image,
// device config).
//
// It may import actions, backup and internal/...; never cmd.
package restore
