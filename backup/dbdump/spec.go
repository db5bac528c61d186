package dbdump

import (
	"context"
	"errors"
	"fmt"
	"github.com/holiday-ops/holiday/internal/names"
	"sort"
	"strings"
)

// Engines.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
)

// DefaultPostgresUser is the OS user the PostgreSQL tools run as when the
// plan names none: Debian's and most distributions' superuser, reached by
// peer authentication over the unix socket.
const DefaultPostgresUser = "postgres"

// Prefixes of the databases holiday creates for itself and drops again;
// Expand's all leaves them out (a leftover from a crashed check is not
// the site's data).
const (
	checkPrefix = "holiday_check_"
	loadPrefix  = "holiday_load_"
	oldPrefix   = "holiday_old_"
)

// Spec is one dump: one database of one engine, or PostgreSQL's globals.
type Spec struct {
	Engine   string `json:"engine"` // "postgres" | "mysql"
	Database string `json:"database,omitempty"`
	// Globals is pg_dumpall --globals-only (roles, tablespaces); Database
	// is then empty.
	Globals bool `json:"globals,omitempty"`
	// User is the OS user the PostgreSQL tools run as ("" = postgres).
	// MySQL's tools run as root over the unix socket.
	User string `json:"user,omitempty"`
	// Compress is pg_dump's --compress level (0, none, unless a plan
	// asks: the repository compresses, and deduplicates what it can see).
	Compress int `json:"compress,omitempty"`
}

// Name is the dump's file name inside the snapshot: "shop.pgdump" (pg_dump
// -Fc), "globals.sql" (pg_dumpall --globals-only), "shop.sql" (MySQL).
// Bytes other than letters, digits, '.', '_' and '-' are %XX-escaped, so
// any database name gives one safe path element that maps back to it.
func (s Spec) Name() string {
	switch {
	case s.Globals:
		return "globals.sql"
	case s.Engine == Postgres:
		return escapeName(s.Database) + ".pgdump"
	default:
		return escapeName(s.Database) + ".sql"
	}
}

func escapeName(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// String names the dump in messages: "postgres shop", "postgres globals".
func (s Spec) String() string {
	if s.Globals {
		return s.Engine + " globals"
	}
	return s.Engine + " database " + s.Database
}

func (s Spec) user() string {
	if s.Engine == MySQL {
		return "root"
	}
	if s.User == "" {
		return DefaultPostgresUser
	}
	return s.User
}

// Validate refuses a Spec no tool can be given safely. Any database name
// a server accepts is fine except an empty one, one with a NUL or a
// newline, and (MySQL, whose tools read it as an option) one starting
// with '-'.
func (s Spec) Validate() error {
	switch s.Engine {
	case Postgres, MySQL:
	default:
		return fmt.Errorf("unknown database engine %q (want postgres or mysql)", s.Engine)
	}
	if s.Globals {
		if s.Engine != Postgres {
			return errors.New("globals are PostgreSQL's only (pg_dumpall --globals-only)")
		}
		if s.Database != "" {
			return fmt.Errorf("a globals dump names no database (got %q)", s.Database)
		}
	} else if err := ValidName(s.Engine, s.Database); err != nil {
		return err
	}
	if s.Compress < 0 || s.Compress > 9 || s.Compress != 0 && (s.Engine != Postgres || s.Globals) {
		return fmt.Errorf("compress %d: pg_dump's level (0-9) of a PostgreSQL database's dump", s.Compress)
	}
	if s.User != "" && (s.Engine != Postgres || !names.OSUser(s.User)) {
		if s.Engine != Postgres {
			return errors.New("user: applies to postgres only; MySQL's tools run as root over the unix socket")
		}
		return fmt.Errorf("bad OS user name %q", s.User)
	}
	return nil
}

// ValidName checks a database name for engine (see Spec.Validate).
func ValidName(engine, name string) error {
	switch p := names.DatabaseProblem(name, engine == MySQL); {
	case p == "":
	case name == "":
		return errors.New(p)
	default:
		return fmt.Errorf("database name %.40q: %s", name, p)
	}
	return nil
}

// Expand returns the dumps a plan source means, on the host: the named
// databases, or with all every database the server has minus templates,
// system schemas and holiday's own scratch databases; with globals one
// more Spec for pg_dumpall --globals-only (first).
func Expand(ctx context.Context, engine string, databases []string, all, globals bool, user string) ([]Spec, error) {
	return expand(ctx, engine, databases, all, globals, user, listDatabases)
}

func expand(ctx context.Context, engine string, databases []string, all, globals bool, user string,
	list func(context.Context, Spec) ([]string, error)) ([]Spec, error) {
	base := Spec{Engine: engine, User: user}
	if globals && engine != Postgres {
		return nil, fmt.Errorf("globals: applies to postgres only")
	}
	if all && len(databases) > 0 {
		return nil, errors.New("set databases or all, not both")
	}
	if !all && len(databases) == 0 && !globals {
		return nil, fmt.Errorf("%s: nothing to dump: no databases, all or globals", engine)
	}
	var out []Spec
	if globals {
		g := base
		g.Globals = true
		out = append(out, g)
	}
	names := databases
	if all {
		found, err := list(ctx, base)
		if err != nil {
			return nil, err
		}
		names = filterSystem(engine, found)
		if len(names) == 0 && !globals {
			return nil, fmt.Errorf("%s: the server has no databases to dump (all: true found only system ones)", engine)
		}
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		s := base
		s.Database = n
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", engine, err)
		}
		out = append(out, s)
	}
	if len(out) > 0 {
		if err := out[0].Validate(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// systemSchemas are MySQL/MariaDB's own databases.
var systemSchemas = map[string]bool{"information_schema": true, "performance_schema": true, "mysql": true, "sys": true}

// filterSystem drops what all must not dump, sorted. PostgreSQL's
// templates never reach here (the query leaves out datistemplate); its
// maintenance database postgres stays, as pg_dumpall keeps it.
func filterSystem(engine string, names []string) []string {
	var out []string
	for _, n := range names {
		if engine == MySQL && systemSchemas[strings.ToLower(n)] {
			continue
		}
		if engine == Postgres && (n == "template0" || n == "template1") {
			continue
		}
		if strings.HasPrefix(n, checkPrefix) || strings.HasPrefix(n, loadPrefix) || strings.HasPrefix(n, oldPrefix) {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
