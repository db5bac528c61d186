package dbdump

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/internal/testenv"
)

func TestName(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want string
	}{
		{Spec{Engine: Postgres, Database: "shop"}, "shop.pgdump"},
		{Spec{Engine: Postgres, Globals: true}, "globals.sql"},
		{Spec{Engine: MySQL, Database: "shop"}, "shop.sql"},
		{Spec{Engine: MySQL, Database: "my-db_2.x"}, "my-db_2.x.sql"},
		{Spec{Engine: Postgres, Database: "a b/c%"}, "a%20b%2Fc%25.pgdump"},
		{Spec{Engine: Postgres, Database: ".."}, "%2E..pgdump"},
		{Spec{Engine: MySQL, Database: "Ünï"}, "%C3%9Cn%C3%AF.sql"},
	} {
		if got := c.s.Name(); got != c.want {
			t.Errorf("%+v.Name() = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want string // "" = valid
	}{
		{Spec{Engine: Postgres, Database: "shop"}, ""},
		{Spec{Engine: Postgres, Database: "we'ird \"name\"=1"}, ""},
		{Spec{Engine: Postgres, Database: "shop", User: "pgadmin"}, ""},
		{Spec{Engine: Postgres, Globals: true}, ""},
		{Spec{Engine: "oracle", Database: "x"}, `unknown database engine "oracle"`},
		{Spec{Engine: Postgres}, "empty database name"},
		{Spec{Engine: Postgres, Database: "a\nb"}, "NUL or line break"},
		{Spec{Engine: MySQL, Database: "-x"}, "starts with '-'"},
		{Spec{Engine: MySQL, Globals: true}, "PostgreSQL's only"},
		{Spec{Engine: Postgres, Globals: true, Database: "x"}, "names no database"},
		{Spec{Engine: MySQL, Database: "x", User: "bob"}, "applies to postgres only"},
		{Spec{Engine: Postgres, Database: "x", User: "-u"}, `bad OS user name "-u"`},
		{Spec{Engine: Postgres, Database: strings.Repeat("x", 65)}, "longer than 64 bytes"},
		{Spec{Engine: Postgres, Database: "x", Compress: 6}, ""},
		{Spec{Engine: Postgres, Database: "x", Compress: 10}, "compress 10"},
		{Spec{Engine: MySQL, Database: "x", Compress: 1}, "compress 1"},
		{Spec{Engine: Postgres, Globals: true, Compress: 1}, "compress 1"},
	} {
		err := c.s.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v.Validate() = %v, want %q", c.s, err, c.want)
		}
	}
}

func TestArgv(t *testing.T) {
	for _, c := range []struct {
		s    Spec
		want []string
		user string
	}{
		{Spec{Engine: Postgres, Database: "shop"}, []string{"pg_dump", "--format=custom", "--compress=0", "--no-password", "--dbname=dbname='shop'"}, "postgres"},
		{Spec{Engine: Postgres, Database: `it's a\b`, User: "pgadm", Compress: 6}, []string{"pg_dump", "--format=custom", "--compress=6", "--no-password", `--dbname=dbname='it\'s a\\b'`}, "pgadm"},
		{Spec{Engine: Postgres, Globals: true}, []string{"pg_dumpall", "--globals-only", "--no-password"}, "postgres"},
		{Spec{Engine: MySQL, Database: "shop"}, []string{"mariadb-dump", "--single-transaction", "--routines", "--events", "--triggers",
			"--default-character-set=utf8mb4", "--", "shop"}, "root"},
	} {
		tl := dumpTool(c.s)
		if !reflect.DeepEqual(tl.argv, c.want) || tl.user != c.user {
			t.Errorf("%+v: argv %q as %s, want %q as %s", c.s, tl.argv, tl.user, c.want, c.user)
		}
		for _, a := range tl.argv {
			if strings.Contains(strings.ToLower(a), "password=") {
				t.Errorf("%+v: a password in argv: %q", c.s, a)
			}
		}
	}
	if got := pgIdent(`a"b`); got != `"a""b"` {
		t.Errorf("pgIdent = %s", got)
	}
	if got := myIdent("a`b"); got != "`a``b`" {
		t.Errorf("myIdent = %s", got)
	}
	if got := myLiteral(`a'b\`); got != `'a\'b\\'` {
		t.Errorf("myLiteral = %s", got)
	}
}

func TestExpand(t *testing.T) {
	server := map[string][]string{
		Postgres: {"shop", "postgres", "holiday_check_0a1b", "crm", "holiday_load_99"},
		MySQL:    {"information_schema", "mysql", "performance_schema", "sys", "shop", "Mysql_app", "holiday_old_1"},
	}
	list := func(_ context.Context, s Spec) ([]string, error) { return server[s.Engine], nil }
	for _, c := range []struct {
		engine        string
		dbs           []string
		all, globals  bool
		want, wantErr string
	}{
		{Postgres, nil, true, false, "crm.pgdump postgres.pgdump shop.pgdump", ""},
		{Postgres, nil, true, true, "globals.sql crm.pgdump postgres.pgdump shop.pgdump", ""},
		{Postgres, nil, false, true, "globals.sql", ""},
		{Postgres, []string{"shop", "shop"}, false, false, "shop.pgdump", ""},
		{MySQL, nil, true, false, "Mysql_app.sql shop.sql", ""},
		{MySQL, []string{"shop"}, false, false, "shop.sql", ""},
		{MySQL, nil, false, true, "", "globals: applies to postgres only"},
		{MySQL, []string{"-x"}, false, false, "", "starts with '-'"},
		{Postgres, []string{"a"}, true, false, "", "not both"},
		{Postgres, nil, false, false, "", "nothing to dump"},
	} {
		specs, err := expand(context.Background(), c.engine, c.dbs, c.all, c.globals, "", list)
		var names []string
		for _, s := range specs {
			names = append(names, s.Name())
		}
		got := strings.Join(names, " ")
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s %v all=%v globals=%v: %v, want error %q", c.engine, c.dbs, c.all, c.globals, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s %v all=%v globals=%v = %q, %v; want %q", c.engine, c.dbs, c.all, c.globals, got, err, c.want)
		}
	}
	empty := func(context.Context, Spec) ([]string, error) { return []string{"mysql", "sys"}, nil }
	if _, err := expand(context.Background(), MySQL, nil, true, false, "", empty); err == nil || !strings.Contains(err.Error(), "only system ones") {
		t.Errorf("all on a server with only system databases: %v", err)
	}
}

func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"pg_dump: error: connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n",
			"pg_dump: error: connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed: No such file or directory Is the server running locally and accepting connections on that socket?"},
		{"/*!40000 ALTER TABLE `items\n--------------\n\nERROR 1064 (42000) at line 39: You have an error\n", "ERROR 1064 (42000) at line 39: You have an error"},
		{"mariadb-dump: Got errno 32 on write\n", "mariadb-dump: Got errno 32 on write"},
		{"a\nb\nc\nd\n", "b c d"},
		{"", ""},
	} {
		if got := oneLine(c.in, 3); got != c.want {
			t.Errorf("oneLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// fakeTools puts shell scripts named like the tools first on toolPath.
func fakeTools(t *testing.T, scripts map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old := toolPath
	toolPath = dir + ":/usr/bin:/bin"
	t.Cleanup(func() { toolPath = old })
}

func me(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// TestWait: Wait is nil only for a whole dump, and says why otherwise, on
// one line. The tools are stand-in scripts (the lab tests run the real
// ones).
func TestWait(t *testing.T) {
	const mysqlOK = `echo "SELECT 1;"; echo "-- Dump completed on 2026-12-06"`
	charset := `echo "utf8mb4 utf8mb4_general_ci"`
	for _, c := range []struct {
		name    string
		spec    Spec
		scripts map[string]string
		readN   int // read only this many bytes (0: all)
		want    string
	}{
		{"pg whole", Spec{Engine: Postgres, Database: "shop"}, map[string]string{"pg_dump": `printf 'PGDMP\001\016rest'`}, 0, ""},
		{"pg exit 1", Spec{Engine: Postgres, Database: "shop"}, map[string]string{"pg_dump": `printf PGDMP; echo 'pg_dump: error: query failed: server closed the connection' >&2; exit 1`}, 0,
			"pg_dump of shop exited with status 1: pg_dump: error: query failed: server closed the connection (after 5 bytes: the dump is incomplete)"},
		{"pg exit 1 at once", Spec{Engine: Postgres, Database: "shop"}, map[string]string{"pg_dump": `echo 'pg_dump: error: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory' >&2; printf '\tIs the server running locally and accepting connections on that socket?\n' >&2; exit 1`}, 0,
			`pg_dump of shop exited with status 1: pg_dump: error: connection to server on socket "/run/postgresql/.s.PGSQL.5432" failed: No such file or directory Is the server running locally and accepting connections on that socket? (no dump was made)`},
		{"pg killed", Spec{Engine: Postgres, Database: "shop"}, map[string]string{"pg_dump": `printf PGDMPhalf; kill -9 $$`}, 0,
			"pg_dump of shop was killed by signal KILL (after 9 bytes: the dump is incomplete)"},
		{"pg not custom", Spec{Engine: Postgres, Database: "shop"}, map[string]string{"pg_dump": `echo "-- plain SQL"`}, 0,
			`pg_dump of shop exited 0 but its output does not start with the custom format's "PGDMP" magic: the dump is incomplete`},
		{"pg not read to the end", Spec{Engine: Postgres, Database: "shop"}, map[string]string{"pg_dump": `printf PGDMP; exec cat /dev/zero`}, 1000,
			"pg_dump of shop was cut short: its output was not read to the end (1000 bytes read): the dump is incomplete"},
		{"globals whole", Spec{Engine: Postgres, Globals: true}, map[string]string{"pg_dumpall": `echo "CREATE ROLE x;"; printf -- '--\n-- PostgreSQL database cluster dump complete\n--\n\n'`}, 0, ""},
		{"globals cut", Spec{Engine: Postgres, Globals: true}, map[string]string{"pg_dumpall": `echo "CREATE ROLE x;"`}, 0,
			`pg_dumpall --globals-only exited 0 but its output lacks the final "-- PostgreSQL database cluster dump complete" line: the dump is incomplete`},
		{"mysql whole", Spec{Engine: MySQL, Database: "shop"}, map[string]string{"mariadb": charset, "mariadb-dump": mysqlOK}, 0, ""},
		{"mysqldump fallback", Spec{Engine: MySQL, Database: "shop"}, map[string]string{"mariadb": charset, "mysqldump": mysqlOK}, 0, ""},
		{"mysql no trailer", Spec{Engine: MySQL, Database: "shop"}, map[string]string{"mariadb": charset, "mariadb-dump": `echo "INSERT INTO t VALUES (1);"`}, 0,
			`mariadb-dump of shop exited 0 but its output lacks the final "-- Dump completed" line: the dump is incomplete`},
		{"mysql trailer not last", Spec{Engine: MySQL, Database: "shop"}, map[string]string{"mariadb": charset, "mariadb-dump": mysqlOK + `; echo a; echo b; echo c`}, 0,
			`lacks the final "-- Dump completed" line`},
		{"mysql killed", Spec{Engine: MySQL, Database: "shop"}, map[string]string{"mariadb": charset, "mariadb-dump": `echo "INSERT"; kill -9 $$`}, 0,
			"mariadb-dump of shop was killed by signal KILL (after 7 bytes: the dump is incomplete)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.spec.Engine == Postgres {
				c.spec.User = me(t)
			} else if os.Geteuid() != 0 {
				testenv.Skip(t, "MySQL's tools run as root: run the tests as root")
			}
			fakeTools(t, c.scripts)
			d, err := Start(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if c.readN > 0 {
				got = make([]byte, c.readN)
				_, err = io.ReadFull(d, got)
			} else {
				got, err = io.ReadAll(d)
			}
			if err != nil {
				t.Fatal(err)
			}
			werr := d.Wait()
			if c.want == "" {
				if werr != nil {
					t.Fatalf("Wait: %v", werr)
				}
				if c.spec.Engine == MySQL && !bytes.HasPrefix(got, []byte("-- holiday-database: shop utf8mb4 utf8mb4_general_ci\n")) {
					t.Errorf("no header: %q", got)
				}
				return
			}
			if werr == nil || !strings.Contains(werr.Error(), c.want) || strings.Contains(werr.Error(), "\n") {
				t.Fatalf("Wait = %v\nwant one line with %q", werr, c.want)
			}
			if c.want != "" && strings.Contains(c.want, "incomplete") && !errors.Is(werr, ErrIncomplete) && strings.Contains(c.want, "exited 0") {
				t.Errorf("Wait's error does not wrap ErrIncomplete: %v", werr)
			}
		})
	}
}

func TestMissingTool(t *testing.T) {
	fakeTools(t, nil)
	toolPath = t.TempDir()
	_, err := Start(context.Background(), Spec{Engine: Postgres, Database: "shop", User: me(t)})
	if err == nil || !strings.Contains(err.Error(), "pg_dump not found on this host") {
		t.Errorf("Start without pg_dump: %v", err)
	}
}

func TestLoadRefusals(t *testing.T) {
	for _, c := range []struct {
		s       Spec
		into    string
		replace bool
		want    string
	}{
		{Spec{Engine: Postgres, Globals: true}, "x", false, "does not load globals.sql"},
		{Spec{Engine: Postgres, Database: "shop"}, "x", true, "not both"},
		{Spec{Engine: Postgres, Database: "shop"}, "", false, "say where to load"},
		{Spec{Engine: MySQL, Database: "shop"}, "-x", false, "starts with '-'"},
	} {
		err := Load(context.Background(), c.s, strings.NewReader(""), c.into, c.replace)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%+v, %q, %v) = %v, want %q", c.s, c.into, c.replace, err, c.want)
		}
	}
}
