// Package restore is the way back: `holiday restore` (gate on the integrity
// check, revert the journal in reverse, verify) and `holiday rollback`
// (snapshot → host: files, database, disk image, device config).
//
// It may import actions, backup and internal/...; never cmd.
package restore
