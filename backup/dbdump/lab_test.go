package dbdump_test

// Lab tests: dumps, verification and loads of sys2's seeded `shop`
// databases (PostgreSQL 15, MariaDB 10.11) through a real agent deployed
// over SSH, as lockdown and rollback use them. Every test holds sys2's
// exclusive lock (they create databases or stop servers) and leaves no
// database or stopped server behind.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/dbdump"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/labtest/labagent"
)

func TestMain(m *testing.M) {
	code := m.Run()
	labagent.Cleanup()
	os.Exit(code)
}

type labEnv struct {
	h     *labtest.Host
	agent *agentctl.Agent
	ctx   context.Context
}

// sys2 locks sys2 and deploys a fresh agent there as ops through sudo.
func sys2(t testing.TB) *labEnv {
	t.Helper()
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sys2")
	h.Lock(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	a := labagent.Deploy(ctx, t, lab, h, "ops")
	return &labEnv{h: h, agent: a, ctx: ctx}
}

// sql runs a query on sys2 as the engine's admin and returns its rows.
func (e *labEnv) sql(t testing.TB, engine, db, query string) string {
	t.Helper()
	var cmd string
	if engine == dbdump.Postgres {
		cmd = fmt.Sprintf("cd / && runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d %s -c %s", shq(db), shq(query))
	} else {
		cmd = fmt.Sprintf("mariadb --batch --skip-column-names --database=%s -e %s", shq(db), shq(query))
	}
	return strings.TrimSpace(e.h.MustSSH(t, "root", cmd))
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// databases lists the server's databases.
func (e *labEnv) databases(t testing.TB, engine string) string {
	if engine == dbdump.Postgres {
		return e.sql(t, engine, "postgres", "SELECT datname FROM pg_database ORDER BY 1")
	}
	return e.sql(t, engine, "mysql", "SHOW DATABASES")
}

// noLeftovers fails if a database holiday makes for itself survived.
func (e *labEnv) noLeftovers(t *testing.T, engine string) {
	t.Helper()
	if dbs := e.databases(t, engine); strings.Contains(dbs, "holiday_") {
		t.Errorf("%s: holiday's databases left behind:\n%s", engine, dbs)
	}
}

// tempDB names a test database and drops it when the test ends.
func (e *labEnv) tempDB(t testing.TB, engine string) string {
	var b [4]byte
	rand.Read(b[:])
	name := "holiday_t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if engine == dbdump.Postgres {
			e.sql(t, engine, "postgres", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		} else {
			e.sql(t, engine, "mysql", "DROP DATABASE IF EXISTS "+name)
		}
	})
	return name
}

const itemsQuery = "SELECT id, name, qty FROM items ORDER BY id"

func (e *labEnv) dump(t *testing.T, s dbdump.Spec) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := dbdump.DumpOnHost(e.ctx, e.agent, s, &buf)
	if err != nil {
		t.Fatalf("dump %s: %v", s, err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("dump %s: %d bytes reported, %d got", s, n, buf.Len())
	}
	return buf.Bytes()
}

var engines = []string{dbdump.Postgres, dbdump.MySQL}

// TestLabDumpVerifyLoad: shop's dump from each engine is whole, verifies
// (list/read and a scratch restore), and loads into a fresh database
// whose rows equal the live ones.
func TestLabDumpVerifyLoad(t *testing.T) {
	e := sys2(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			specs, err := dbdump.ExpandOnHost(e.ctx, e.agent, dbdump.ExpandArgs{Engine: engine, All: true, Globals: engine == dbdump.Postgres})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range specs {
				names = append(names, s.Name())
			}
			want := map[string]string{dbdump.Postgres: "globals.sql postgres.pgdump shop.pgdump", dbdump.MySQL: "shop.sql"}[engine]
			if got := strings.Join(names, " "); got != want {
				t.Errorf("Expand(all) = %s, want %s", got, want)
			}
			s := dbdump.Spec{Engine: engine, Database: "shop"}
			data := e.dump(t, s)
			live := e.sql(t, engine, "shop", itemsQuery)
			if !strings.Contains(live, "sunscreen") {
				t.Fatalf("shop's live rows lack the seed: %q", live)
			}
			for _, scratch := range []bool{false, true} {
				if err := dbdump.VerifyOnHost(e.ctx, e.agent, s, bytes.NewReader(data), scratch); err != nil {
					t.Errorf("verify (scratch %v): %v", scratch, err)
				}
			}
			e.noLeftovers(t, engine)
			into := e.tempDB(t, engine)
			if err := dbdump.LoadOnHost(e.ctx, e.agent, s, bytes.NewReader(data), into, false); err != nil {
				t.Fatal(err)
			}
			if got := e.sql(t, engine, into, itemsQuery); got != live {
				t.Errorf("rows in %s:\n%s\nwant (live shop):\n%s", into, got, live)
			}
			err = dbdump.LoadOnHost(e.ctx, e.agent, s, bytes.NewReader(data), into, false)
			if err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Errorf("load into an existing database: %v, want a refusal", err)
			}
			if engine == dbdump.Postgres {
				g := e.dump(t, dbdump.Spec{Engine: engine, Globals: true})
				if !bytes.Contains(g, []byte("CREATE ROLE postgres")) {
					t.Errorf("globals dump lacks the postgres role:\n%s", g)
				}
				if err := dbdump.VerifyOnHost(e.ctx, e.agent, dbdump.Spec{Engine: engine, Globals: true}, bytes.NewReader(g), false); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestLabVerifyTruncated: a dump cut short fails verification, with and
// without a scratch restore, and leaves no scratch database.
func TestLabVerifyTruncated(t *testing.T) {
	e := sys2(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			s := dbdump.Spec{Engine: engine, Database: "shop"}
			data := e.dump(t, s)
			for _, cut := range []int{len(data) - 40, len(data) * 2 / 3} {
				for _, scratch := range []bool{false, true} {
					err := dbdump.VerifyOnHost(e.ctx, e.agent, s, bytes.NewReader(data[:cut]), scratch)
					t.Logf("cut at %d/%d, scratch %v: %v", cut, len(data), scratch, err)
					if err == nil {
						t.Errorf("cut at %d of %d bytes (scratch %v): verified", cut, len(data), scratch)
					} else if strings.Contains(err.Error(), "\n") {
						t.Errorf("error spans lines: %q", err)
					}
				}
			}
			e.noLeftovers(t, engine)
		})
	}
}

// TestLabLoadReplace: replace brings back a dropped table; a replace with
// a bad dump leaves the database as it was.
func TestLabLoadReplace(t *testing.T) {
	e := sys2(t)
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			shop := dbdump.Spec{Engine: engine, Database: "shop"}
			data := e.dump(t, shop)
			live := e.sql(t, engine, "shop", itemsQuery)
			db := e.tempDB(t, engine)
			if err := dbdump.LoadOnHost(e.ctx, e.agent, shop, bytes.NewReader(data), db, false); err != nil {
				t.Fatal(err)
			}
			target := dbdump.Spec{Engine: engine, Database: db}
			// A bad dump: the old database stays as it was.
			err := dbdump.LoadOnHost(e.ctx, e.agent, target, bytes.NewReader(data[:len(data)*2/3]), "", true)
			t.Logf("replace with a truncated dump: %v", err)
			var re *agentproto.RemoteError
			if err == nil || !strings.Contains(err.Error(), "untouched") || !errors.As(err, &re) || re.Code != dbdump.CodeUntouched {
				t.Errorf("replace with a truncated dump: %v, want an error saying %s is untouched, with the code %s (a rollback's revert then loads nothing)", err, db, dbdump.CodeUntouched)
			}
			if got := e.sql(t, engine, db, itemsQuery); got != live {
				t.Errorf("after a failed replace, %s holds:\n%s\nwant:\n%s", db, got, live)
			}
			e.sql(t, engine, db, "DROP TABLE items")
			if err := dbdump.LoadOnHost(e.ctx, e.agent, target, bytes.NewReader(data), "", true); err != nil {
				t.Fatal(err)
			}
			if got := e.sql(t, engine, db, itemsQuery); got != live {
				t.Errorf("after replace, %s holds:\n%s\nwant:\n%s", db, got, live)
			}
			err = dbdump.LoadOnHost(e.ctx, e.agent, dbdump.Spec{Engine: engine, Database: db + "_none"}, bytes.NewReader(data), "", true)
			if err == nil || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("replace of a missing database: %v", err)
			}
			e.noLeftovers2(t, engine, db)
		})
	}
}

// noLeftovers2 is noLeftovers allowing the test's own database.
func (e *labEnv) noLeftovers2(t *testing.T, engine, own string) {
	t.Helper()
	for _, d := range strings.Fields(e.databases(t, engine)) {
		if strings.HasPrefix(d, "holiday_") && d != own {
			t.Errorf("%s: left behind: %s", engine, d)
		}
	}
}

// TestLabDumpFailures: each failure is one clear line.
func TestLabDumpFailures(t *testing.T) {
	e := sys2(t)
	oneLine := func(t *testing.T, err error, want ...string) {
		t.Helper()
		t.Logf("error: %v", err)
		if err == nil {
			t.Fatalf("no error, want one saying %q", want)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") {
			t.Errorf("error spans lines: %q", msg)
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q lacks %q", msg, w)
			}
		}
	}
	var sink bytes.Buffer
	t.Run("no such database", func(t *testing.T) {
		_, err := dbdump.DumpOnHost(e.ctx, e.agent, dbdump.Spec{Engine: dbdump.Postgres, Database: "nosuch"}, &sink)
		oneLine(t, err, "pg_dump of nosuch exited with status 1", `database "nosuch" does not exist`)
		_, err = dbdump.DumpOnHost(e.ctx, e.agent, dbdump.Spec{Engine: dbdump.MySQL, Database: "nosuch"}, &sink)
		oneLine(t, err, `MySQL database "nosuch" does not exist`)
	})
	t.Run("server down", func(t *testing.T) {
		units := map[string]string{dbdump.Postgres: "postgresql@15-main.service", dbdump.MySQL: "mariadb.socket mariadb.service"}
		wants := map[string][]string{
			dbdump.Postgres: {"pg_dump of shop exited with status 1", "connection to server on socket", "No such file or directory"},
			dbdump.MySQL:    {"mariadb (looking up MySQL database shop) exited with status 1: ERROR 2002 (HY000): Can't connect to local server through socket"},
		}
		for _, engine := range engines {
			e.h.MustSSH(t, "root", "systemctl stop "+units[engine])
			start := func() { e.h.MustSSH(t, "root", "systemctl start "+units[engine]) }
			t.Cleanup(start)
			_, err := dbdump.DumpOnHost(e.ctx, e.agent, dbdump.Spec{Engine: engine, Database: "shop"}, &sink)
			oneLine(t, err, wants[engine]...)
			start()
		}
	})
	t.Run("killed halfway", func(t *testing.T) {
		for _, engine := range engines {
			big := e.bigDB(t, engine)
			tool, user := "pg_dump", "postgres"
			if engine == dbdump.MySQL {
				tool, user = "mariadb-dump", "root"
			}
			killed := false
			w := writerFunc(func(p []byte) (int, error) {
				if !killed {
					killed = true
					pid := strings.TrimSpace(e.h.MustSSH(t, "root", fmt.Sprintf("pgrep -u %s -f '%s.*%s'", user, tool, big)))
					t.Logf("killing %s %s after the first frame", tool, pid)
					e.h.MustSSH(t, "root", "kill -KILL "+pid)
				}
				return len(p), nil
			})
			n, err := dbdump.DumpOnHost(e.ctx, e.agent, dbdump.Spec{Engine: engine, Database: big}, w)
			oneLine(t, err, tool+" of "+big+" was killed by signal KILL", "the dump is incomplete")
			t.Logf("%d bytes had arrived", n)
		}
	})
}

// bigDB makes a database with a table large enough (~25 MB of rows) that
// its dump is still running when the first bytes arrive.
func (e *labEnv) bigDB(t testing.TB, engine string) string {
	t.Helper()
	big := e.tempDB(t, engine)
	if engine == dbdump.Postgres {
		e.sql(t, engine, "postgres", "CREATE DATABASE "+big)
		e.sql(t, engine, big, "CREATE TABLE t AS SELECT g, md5(g::text) || md5((g*7)::text) AS s FROM generate_series(1, 400000) g")
	} else {
		e.sql(t, engine, "mysql", "CREATE DATABASE "+big)
		e.sql(t, engine, big, "CREATE TABLE t ENGINE=InnoDB AS SELECT seq AS g, CONCAT(md5(seq), md5(seq*7)) AS s FROM seq_1_to_400000")
	}
	return big
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var _ io.Writer = writerFunc(nil)

// BenchmarkLabPgDump: a PostgreSQL dump through holiday's agent (pg_dump
// on sys2 → agent → SSH → the control node, discarded there) against
// pg_dump of the same database into /dev/null on sys2, timed on the host
// (so SSH's session start is not counted against the peer). One warm-up
// of each, then b.N pairs in alternating order; the medians are
// reported. Issue 10's goal: holiday/pg_dump ≤ 1.1. Run:
// CI=true go test -run '^$' -bench LabPgDump -benchtime 3x ./backup/dbdump/
func BenchmarkLabPgDump(b *testing.B) {
	e := sys2(b)
	big := e.bigDB(b, dbdump.Postgres)
	spec := dbdump.Spec{Engine: dbdump.Postgres, Database: big}
	var bytesOver int64
	peer := func() time.Duration {
		out, err := e.h.SSH(e.ctx, "root", "cd / && s=$(date +%s%N) && runuser -u postgres -- pg_dump --format=custom --dbname="+big+" >/dev/null && echo $(( $(date +%s%N) - s ))")
		if err != nil {
			b.Fatal(err)
		}
		d, err := time.ParseDuration(strings.TrimSpace(out.Stdout) + "ns")
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	ours := func() time.Duration {
		start := time.Now()
		n, err := dbdump.DumpOnHost(e.ctx, e.agent, spec, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		bytesOver = n
		return time.Since(start)
	}
	peer()
	ours()
	var ps, os []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			ps = append(ps, peer())
			os = append(os, ours())
		} else {
			os = append(os, ours())
			ps = append(ps, peer())
		}
	}
	b.StopTimer()
	mp, mo := median(ps), median(os)
	b.ReportMetric(float64(mo)/float64(mp), "holiday/pg_dump")
	b.ReportMetric(float64(mp.Milliseconds()), "pg_dump-ms")
	b.ReportMetric(float64(mo.Milliseconds()), "holiday-ms")
	b.ReportMetric(float64(bytesOver), "ssh-payload-bytes")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
