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
// `holiday rollback` writes one snapshot back onto its host, as a run of
// its own (actions.Rollback: run lock, journals, revert on failure):
// files exactly (rbdiff.go computes what differs, rbhost.go is the host
// side: the agent's rollback-scan and rollback-apply), a disk image onto
// an unmounted device, only the differing blocks (rbdisk*.go), a database
// dump into a new database or over the old one (rbdb.go, through
// backup/dbdump's load). Before anything is overwritten, what will be
// replaced is snapshotted through the host-backup data path
// (presnap.go), tagged rollback-of:<snapshot>, so a rollback is undone by
// rolling back to that snapshot; restore's "latest run" never picks a
// rollback run.
//
// Still to come here: rolling back device configs.
//
// It may import actions, backup and internal/...; never cmd.
package restore
