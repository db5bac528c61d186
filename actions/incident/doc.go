// Package incident is the control node's side of compromise response
// (DESIGN §8): it takes integrity baselines of a plan's hosts and stores
// them in the plan's repository as kind:baseline snapshots, checks hosts
// against their newest baseline through a freshly uploaded agent, and
// acquires evidence into kind:evidence snapshots. The host side (what is
// collected and how it is judged) is internal/integrity.
//
// It imports actions (to reach hosts as the runs do), plans, backup and
// internal; restore may import it for its gate.
package incident
