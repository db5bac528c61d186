// Package device backs up network devices' configurations over their
// vendors' own SSH CLIs, as Oxidized and RANCID do: a small expect layer
// on golang.org/x/crypto/ssh (one reader per session, a deadline on every
// wait, the real prompt learned after login and anchored on), one Driver
// per vendor dialect written as data, normalization for diffs, masking of
// secrets for everything shown, and storage of the raw, complete config
// as a kind:device snapshot in the repository.
//
// Host keys are checked against known_hosts by internal/sshx, exactly as
// for hosts. A config without its end marker is an error, never a short
// backup.
//
// It imports backup/repo, backup/archiver and internal/...; never plans,
// actions, restore or cmd (callers turn plan entries into Targets).
package device
