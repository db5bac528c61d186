// Package agentops registers the host side of the built-in actions
// (service, journal copy) and of the database sources (backup/dbdump)
// with `holiday agent`; cmd/holiday/agent.go imports it for that effect
// alone. It imports actions, backup/dbdump and internal/agent.
package agentops

import (
	"context"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/dbdump"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/internal/agent"
)

func init() {
	for _, h := range actions.AgentHandlers() {
		agent.Register(h)
	}
	for _, h := range dbdump.Handlers() {
		agent.Register(h)
	}
	// The backup data path dumps databases through dbdump, verified as
	// they are chunked when asked.
	hostbackup.RegisterDumper(func(ctx context.Context, s hostbackup.StreamSpec) (hostbackup.Dump, error) {
		spec := dbdump.Spec{Engine: s.Engine, Database: s.Database, Globals: s.Globals, User: s.User, Compress: s.Compress}
		if s.Verify {
			return dbdump.StartVerified(ctx, spec, s.Scratch)
		}
		return dbdump.Start(ctx, spec)
	})
}
