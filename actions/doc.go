// Package actions holds the Action contract (Observe, Apply, Verify,
// Revert), the built-in action kinds — service, firewall (and isolate),
// power, command hook — with both their control-node side and the
// host-side code the agent runs; the runner that takes a host (run locks,
// admission: the same refusals `holiday plan` prints), executes its
// actions in order, journals each step and reverts on failure, and keeps
// each run's final journals, with their key, in the plan's repository
// (repojournal.go); the integrity baseline step (Baseline, kind
// "baseline", after the firewall); restore's integrity gate verdicts on
// its jobs (gate.go: a host not reopened is journaled, not reverted); and
// the plan's network devices as backup targets for lockdown.
//
// It may import plans, backup and internal/...; never restore or cmd.
package actions
