// Package agentops registers the host side of the built-in actions
// (service, journal copy) with `holiday agent`; cmd/holiday/agent.go
// imports it for that effect alone. It imports actions and internal/agent.
package agentops

import (
	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/agent"
)

func init() {
	for _, h := range actions.AgentHandlers() {
		agent.Register(h)
	}
}
