package actions

import (
	"context"
	"errors"
	"fmt"

	"github.com/holiday-ops/holiday/backup/dbdump"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/plans"
)

// databaseDumps is the database sources through backup/dbdump: the host
// expands a source into dumps (all: true lists the server's databases).
// The dumps themselves are verified by the agent as they are chunked
// (dbdump.StartVerified): listed with pg_restore, every data block read,
// or MySQL's completion mark checked, and with restore_check loaded into
// a scratch database that is dropped afterwards.
type databaseDumps struct{}

func engineOf(src *plans.BackupSource) string {
	if src.MySQL != nil {
		return dbdump.MySQL
	}
	return dbdump.Postgres
}

func (databaseDumps) Specs(ctx context.Context, h *Host, src *plans.BackupSource) ([]hostbackup.StreamSpec, error) {
	a, ok := h.Agent.(dbdump.Agent)
	if !ok {
		return nil, errors.New("this host's agent cannot run database operations")
	}
	args := dbdump.ExpandArgs{Engine: engineOf(src)}
	switch {
	case src.Postgres != nil:
		args.Databases, args.All, args.Globals, args.User = src.Postgres.Databases, src.Postgres.All, src.Postgres.Globals, src.Postgres.User
	case src.MySQL != nil:
		args.Databases, args.All = src.MySQL.Databases, src.MySQL.All
	}
	specs, err := dbdump.ExpandOnHost(ctx, a, args)
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("the %s server on the host has no database to dump", args.Engine)
	}
	level := 0 // uncompressed: the repository compresses (plans.Postgres.Compress)
	if src.Postgres != nil && src.Postgres.Compress != nil {
		level = *src.Postgres.Compress
	}
	out := make([]hostbackup.StreamSpec, len(specs))
	for i, s := range specs {
		out[i] = hostbackup.StreamSpec{Engine: s.Engine, Database: s.Database, Globals: s.Globals, User: s.User, Name: s.Name()}
		if s.Engine == dbdump.Postgres && !s.Globals {
			out[i].Compress = level
		}
	}
	return out, nil
}
