// Package actions holds the Action contract (Observe, Apply, Verify,
// Revert), the built-in action kinds — service, firewall, power, device
// save, command hook — with both their control-node side and the host-side
// code the agent runs, and the runner that executes a host's actions in
// order and journals each step.
//
// It may import plans, backup and internal/...; never restore or cmd.
package actions
