// Package backup holds the backup repository (restic's format version 2:
// keys, packs, index, snapshots, locks, check, forget/prune), its backends
// and their conformance suite, and the sources: file trees, block devices,
// PostgreSQL, MySQL/MariaDB, device configs and evidence.
//
// It may import internal/... only.
package backup
