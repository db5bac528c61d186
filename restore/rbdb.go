package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/dbdump"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/plans"
)

// KindRollbackDB is the journal's kind for a database rollback step.
const KindRollbackDB = "rollback-db"

// ErrNeedsConfirmation is the refusal of --replace (it overwrites a
// database) when there was neither --yes nor a terminal to ask on.
var ErrNeedsConfirmation = errors.New("--replace overwrites the database on the host: confirm with --yes (there is no terminal to ask on)")

// DumpInSnapshot is a database snapshot's dump: which database of which
// engine, and its file node.
type DumpInSnapshot struct {
	Spec dbdump.Spec
	Node *repo.Node
}

// LoadDump finds a postgres or mysql snapshot's dump (one file at the
// tree's root, named as dbdump.Spec.Name names it).
func LoadDump(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, h *plans.Host) (DumpInSnapshot, error) {
	engine := kindOf(sn)
	t, err := r.LoadTree(ctx, *sn.Tree)
	if err != nil {
		return DumpInSnapshot{}, err
	}
	if len(t.Nodes) != 1 || t.Nodes[0].Type != repo.NodeFile {
		return DumpInSnapshot{}, fmt.Errorf("%s snapshot %s does not hold one dump file", engine, sn.ID.Str())
	}
	n := t.Nodes[0]
	s := dbdump.Spec{Engine: engine, User: postgresUser(h)}
	ext := path.Ext(n.Name)
	switch {
	case engine == dbdump.Postgres && n.Name == "globals.sql":
		s.Globals = true
	case engine == dbdump.Postgres && ext == ".pgdump", engine == dbdump.MySQL && ext == ".sql":
		db, err := url.PathUnescape(strings.TrimSuffix(n.Name, ext))
		if err != nil {
			return DumpInSnapshot{}, fmt.Errorf("%s snapshot %s: dump %q: %w", engine, sn.ID.Str(), n.Name, err)
		}
		s.Database = db
	default:
		return DumpInSnapshot{}, fmt.Errorf("%s snapshot %s: %q is not a dump holiday made", engine, sn.ID.Str(), n.Name)
	}
	if s.Name() != n.Name {
		return DumpInSnapshot{}, fmt.Errorf("%s snapshot %s: %q is not a dump holiday made", engine, sn.ID.Str(), n.Name)
	}
	return DumpInSnapshot{Spec: s, Node: n}, nil
}

// postgresUser is the OS user the plan runs the host's PostgreSQL tools
// as ("" = dbdump's default).
func postgresUser(h *plans.Host) string {
	if h == nil || h.Backup == nil {
		return ""
	}
	for _, src := range h.Backup.Sources {
		if src.Postgres != nil && src.Postgres.User != "" {
			return src.Postgres.User
		}
	}
	return ""
}

// dbAction is one database rollback as a journaled step:
//
//   - Observe, with replace, dumps the database as it is now into a
//     pre-rollback snapshot (kind:postgres|mysql, rollback-of); into a
//     new database overwrites nothing and takes none;
//   - Apply streams the stored dump to the host's db-load, which loads it
//     into a new database first and swaps only a complete copy in
//     (dbdump.Load);
//   - Verify: Load's own result is the check (it fails unless the whole
//     dump loaded);
//   - Revert loads the pre-rollback dump back over the database.
type dbAction struct {
	r       *repo.Repository
	sn      *repo.Snapshot
	dump    DumpInSnapshot
	into    string
	replace bool
	pre     preSnapshotter
	tags    []string
	report  func(Progress) // how far the load is (nil: nobody asks)

	preSnap *repo.Snapshot
	loaded  bool
	written *Progress
}

// SnapshotDump takes the pre-rollback dump of a database (the host runs
// the dump itself; a dump that fails or is cut short is an error, never
// a short snapshot).
func (s preSnapshotter) SnapshotDump(ctx context.Context, h *actions.Host, spec dbdump.Spec, tags []string) (*repo.Snapshot, error) {
	ss := hostbackup.StreamSpec{Engine: spec.Engine, Database: spec.Database, Globals: spec.Globals, User: spec.User, Name: spec.Name()}
	p := "/" + spec.Engine + "/" + strings.TrimSuffix(ss.Name, path.Ext(ss.Name))
	return s.take(ctx, h, hostbackup.Request{Source: hostbackup.SourceStream, Stream: &ss}, spec.String(), []string{p}, tags)
}

type dbPrior struct {
	Snapshot    string `json:"snapshot"`
	Engine      string `json:"engine"`
	Database    string `json:"database"`
	Into        string `json:"into,omitempty"`
	Replace     bool   `json:"replace,omitempty"`
	PreSnapshot string `json:"pre_rollback_snapshot,omitempty"`
}

func (a *dbAction) target() string {
	t := a.sn.ID.Str() + ":" + a.dump.Spec.Engine + "/" + a.dump.Spec.Database
	if a.into != "" {
		t += "->" + a.into
	}
	return t
}

func (a *dbAction) Observe(ctx context.Context, h *actions.Host) (actions.Record, error) {
	p := dbPrior{Snapshot: a.sn.ID.String(), Engine: a.dump.Spec.Engine, Database: a.dump.Spec.Database, Into: a.into, Replace: a.replace}
	if a.replace {
		pre, err := a.pre.SnapshotDump(ctx, h, a.dump.Spec, a.tags)
		if err != nil {
			return actions.Record{}, fmt.Errorf("the pre-rollback dump of %s failed, so nothing was overwritten: %w", a.dump.Spec, err)
		}
		a.preSnap = pre
		p.PreSnapshot = pre.ID.String()
	}
	return actions.NewRecord(KindRollbackDB, a.target(), p)
}

func (a *dbAction) Apply(ctx context.Context, h *actions.Host, prior actions.Record) (actions.Record, error) {
	m := startMeter(a.dump.Spec.Engine, int64(a.dump.Node.Size), a.report)
	err := loadDump(ctx, h, a.r, a.dump, a.into, a.replace, m)
	a.loaded, a.written = err == nil, m.end()
	var re *agentproto.RemoteError
	untouched := errors.As(err, &re) && re.Code == dbdump.CodeUntouched
	rec, rerr := actions.NewRecord(KindRollbackDB, a.target(), dbDone{Loaded: a.loaded, Untouched: untouched})
	if err == nil {
		err = rerr
	}
	return rec, err
}

func (a *dbAction) Verify(context.Context, *actions.Host, actions.Record) error { return nil }

// dbDone is what a database rollback's Apply did. Untouched: a --replace
// whose load failed before the old database was changed (into the
// temporary one, or the swap refused): the revert has nothing to put
// back, and loading the pre-rollback dump over it would lose what was
// written since that dump.
type dbDone struct {
	Loaded    bool `json:"loaded"`
	Untouched bool `json:"untouched,omitempty"`
}

func (a *dbAction) Revert(ctx context.Context, h *actions.Host, prior, done actions.Record) error {
	var p dbPrior
	if err := prior.Decode(&p); err != nil {
		return err
	}
	var did dbDone
	if !done.IsZero() && done.Decode(&did) == nil && did.Untouched {
		return nil
	}
	pre, err := findPreSnapshot(ctx, a.r, p.PreSnapshot)
	if pre == nil {
		// or into a new database: nothing was overwritten, and a failed
		// load drops its half-loaded database itself
		return err
	}
	d, err := LoadDump(ctx, a.r, pre, h.Plan)
	if err != nil {
		return err
	}
	return loadDump(ctx, h, a.r, d, "", true, nil)
}

// loadDump streams a stored dump from the repository to the host's
// db-load, counted on m. A repository read that fails cuts the session
// (never a short dump taken for whole: dbdump's send).
func loadDump(ctx context.Context, h *actions.Host, r *repo.Repository, d DumpInSnapshot, into string, replace bool, m *meter) error {
	ag, ok := h.Agent.(dbdump.Agent)
	if !ok {
		return fmt.Errorf("%s: its agent cannot load databases", h.Name)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(restorer.Dump(ctx, r, d.Node, meterWriter{pw, m})) }()
	err := dbdump.LoadOnHost(ctx, ag, d.Spec, pr, into, replace)
	pr.CloseWithError(errors.New("load ended"))
	return err
}

// rollbackDB loads a database snapshot's dump on the host.
func rollbackDB(ctx context.Context, ao actions.Options, conn *actions.Connector, o RollbackOptions, sn *repo.Snapshot, res RollbackResult) (RollbackResult, error) {
	d, err := LoadDump(ctx, o.Repo, sn, o.Host)
	if err != nil {
		return res, err
	}
	res.Database = d.Spec.String()
	res.Into, res.Replace = o.Into, o.Replace
	switch {
	case len(o.Paths) > 0 || o.Device != "":
		return res, fmt.Errorf("snapshot %s is a database dump: --path and --device do not apply", sn.ID.Str())
	case d.Spec.Globals:
		return res, errors.New("holiday does not load globals.sql: it changes roles of the whole server; review it (holiday repo dump) and run it with psql by hand")
	case o.Into == "" && !o.Replace:
		return res, fmt.Errorf("snapshot %s is a dump of %s: say --into NEW_DATABASE, or --replace to load it over the old one", sn.ID.Str(), d.Spec)
	case o.Into != "" && o.Replace:
		return res, errors.New("--into and --replace: load into a new database or over the old one, not both")
	case o.Into != "":
		if err := dbdump.ValidName(d.Spec.Engine, o.Into); err != nil {
			return res, fmt.Errorf("--into %s: %w", o.Into, err)
		}
	}
	if o.DryRun {
		return res, nil
	}
	if o.Replace && !o.Yes {
		if o.Confirm == nil {
			return res, ErrNeedsConfirmation
		}
		ok, err := o.Confirm(fmt.Sprintf("Replace %s on %s with the dump in snapshot %s? What it holds now is dumped first.", d.Spec, o.Host.Name, sn.ID.Str()))
		if err != nil {
			return res, err
		}
		if !ok {
			return res, errors.New("not confirmed: nothing was changed")
		}
	}
	what := d.Spec.String()
	if o.Into != "" {
		what += " into " + o.Into
	}
	a := &dbAction{r: o.Repo, sn: sn, dump: d, into: o.Into, replace: o.Replace, pre: o.backupSnapshotter(ctx), report: o.report(what)}
	a.tags = rollbackTags(d.Spec.Engine, sn, ao.RunID)
	err = runStep(ctx, ao, conn, o, KindRollbackDB, a.target(), a, &res, func() (bool, *repo.Snapshot) { return a.loaded, a.preSnap })
	res.Written = a.written
	return res, err
}
