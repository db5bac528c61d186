package dbdump

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Verify checks on the host that the dump read from r restores. PostgreSQL
// (custom format): `pg_restore --list` reads its table of contents and,
// at the same time, a second pg_restore reads every data block — into
// /dev/null, or with scratch into a fresh database holiday_check_<random>
// (--no-owner --no-privileges: the scratch copy proves the data, not the
// roles), dropped afterwards whatever happened. --list alone would pass a
// dump cut short after its table of contents.
// MySQL: the dump must start with holiday's header line and end with
// mariadb-dump's completion line; with scratch it is loaded into a fresh
// holiday_check_<random> database, dropped afterwards.
// Globals: the completion line only (roles are the whole server's: there
// is no scratch database to load them into).
func Verify(ctx context.Context, s Spec, r io.Reader, scratch bool) error {
	if err := s.Validate(); err != nil {
		return err
	}
	m := &marks{}
	r = io.TeeReader(r, m)
	var err error
	switch {
	case s.Globals || s.Engine == MySQL && !scratch:
		_, err = io.Copy(io.Discard, r)
		if err == nil {
			err = m.check(s)
		}
	case s.Engine == Postgres:
		err = verifyPostgres(ctx, s, r, m, scratch)
	default:
		err = withScratch(ctx, s, func(name string) error { return loadMySQL(ctx, s, r, m, name, true) })
	}
	if err != nil {
		return fmt.Errorf("verifying %s: %w", s.Name(), err)
	}
	return nil
}

func verifyPostgres(ctx context.Context, s Spec, r io.Reader, m *marks, scratch bool) error {
	list := tool{name: "pg_restore --list", argv: []string{"pg_restore", "--list"}, user: s.user(), background: true}
	if !scratch {
		read := tool{name: "pg_restore", argv: []string{"pg_restore", "--file=/dev/null"}, user: s.user(), background: true}
		return feed(ctx, r, m, s, list, read)
	}
	return withScratch(ctx, s, func(name string) error {
		restore := tool{name: "pg_restore into scratch database " + name, argv: []string{"pg_restore", "--no-password", "--exit-on-error",
			"--no-owner", "--no-privileges", "--dbname=" + pgConninfo(name)}, user: s.user(), background: true}
		return feed(ctx, r, m, s, list, restore)
	})
}

// withScratch creates a scratch database, runs f on it and drops it again,
// also when f failed or ctx was cancelled.
func withScratch(ctx context.Context, s Spec, f func(name string) error) error {
	name := checkPrefix + randomSuffix()
	if err := createDB(ctx, s, name, ""); err != nil {
		return err
	}
	err := f(name)
	if derr := dropDB(s, name); derr != nil {
		err = join(err, fmt.Errorf("dropping scratch database %s: %w", name, derr))
	}
	return err
}

// Load restores the dump read from r on the host: into a new database
// named into (refused if it exists; dropped again if the load fails), or
// with replace over s.Database:
//
//   - the dump is first loaded into a new database holiday_load_<random>;
//     if that fails it is dropped and the old database was never touched;
//   - PostgreSQL then swaps by renaming in one transaction (the old
//     database's sessions are ended first), and drops the old copy;
//   - MySQL, which cannot rename a database, drops the old one and copies
//     the loaded one into its name with mariadb-dump | mariadb; if that
//     copy fails, holiday_load_<random> is kept and the error names it.
//
// So at every moment one complete copy exists. PostgreSQL restores keep
// the dump's owners and privileges (the roles are expected to exist, as on
// the server the dump came from); globals are refused (review and load
// globals.sql with psql by hand: it changes the whole server's roles).
func Load(ctx context.Context, s Spec, r io.Reader, into string, replace bool) error {
	if err := s.Validate(); err != nil {
		return err
	}
	switch {
	case s.Globals:
		return errors.New("holiday does not load globals.sql: it changes roles of the whole server; review it and run it with psql by hand")
	case into != "" && replace:
		return errors.New("load into a new database or replace the old one, not both")
	case into == "" && !replace:
		return errors.New("say where to load: into a new database, or replace the old one")
	}
	if replace {
		return replaceDB(ctx, s, r)
	}
	if err := ValidName(s.Engine, into); err != nil {
		return err
	}
	exists, _, err := dbExists(ctx, s, into)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("database %s already exists: choose another name, or replace the old database", into)
	}
	m := &marks{}
	r = io.TeeReader(r, m)
	br := bufio.NewReader(r)
	charset := ""
	if s.Engine == MySQL {
		charset, _ = mysqlHeader(br)
	}
	if err := createDB(ctx, s, into, charset); err != nil {
		return err
	}
	if err := loadInto(ctx, s, br, m, into); err != nil {
		if derr := dropDB(s, into); derr != nil {
			return join(fmt.Errorf("loading into %s: %w", into, err), fmt.Errorf("dropping the half-loaded %s: %w", into, derr))
		}
		return fmt.Errorf("loading into %s (dropped again): %w", into, err)
	}
	return nil
}

// Untouched marks a --replace load that failed before it changed the old
// database: there is nothing to undo on the host. The agent reports it
// with the code CodeUntouched.
type Untouched struct{ Err error }

func (e *Untouched) Error() string { return e.Err.Error() }
func (e *Untouched) Unwrap() error { return e.Err }

func untouched(err error) error { return &Untouched{Err: err} }

func replaceDB(ctx context.Context, s Spec, r io.Reader) error {
	old := s.Database
	exists, owner, err := dbExists(ctx, s, old)
	if err != nil {
		return err
	}
	if !exists {
		return untouched(fmt.Errorf("database %s does not exist, so there is nothing to replace: load into a new database instead", old))
	}
	tmp := loadPrefix + randomSuffix()
	m := &marks{}
	br := bufio.NewReader(io.TeeReader(r, m))
	charset := ""
	if s.Engine == MySQL {
		charset, _ = mysqlHeader(br)
	} else {
		charset = owner // createDB's third argument is the owner for PostgreSQL
	}
	if err := createDB(ctx, s, tmp, charset); err != nil {
		return untouched(fmt.Errorf("database %s is untouched: %w", old, err))
	}
	if err := loadInto(ctx, s, br, m, tmp); err != nil {
		if derr := dropDB(s, tmp); derr != nil {
			err = join(err, fmt.Errorf("dropping %s: %w", tmp, derr))
		}
		return untouched(fmt.Errorf("loading into %s first failed; database %s is untouched: %w", tmp, old, err))
	}
	if s.Engine == Postgres {
		return swapPostgres(ctx, s, tmp, old)
	}
	return swapMySQL(ctx, s, tmp, old)
}

func swapPostgres(ctx context.Context, s Spec, tmp, old string) error {
	gone := oldPrefix + randomSuffix()
	sql := fmt.Sprintf(`BEGIN;
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid();
ALTER DATABASE %s RENAME TO %s;
ALTER DATABASE %s RENAME TO %s;
COMMIT;`, pgLiteral(old), pgIdent(old), pgIdent(gone), pgIdent(tmp), pgIdent(old))
	t := psql(s, "postgres", sql)
	t.name += " (renaming " + tmp + " to " + old + ")"
	if _, err := t.run(ctx, nil); err != nil {
		if derr := dropDB(s, tmp); derr != nil {
			err = join(err, fmt.Errorf("dropping %s: %w", tmp, derr))
		}
		return untouched(fmt.Errorf("database %s is untouched: %w", old, err))
	}
	if err := dropDB(s, gone); err != nil {
		return fmt.Errorf("%s is replaced, but its old copy, renamed %s, could not be dropped (drop it by hand): %w", old, gone, err)
	}
	return nil
}

func swapMySQL(ctx context.Context, s Spec, tmp, old string) error {
	src := Spec{Engine: MySQL, Database: tmp}
	cs, _, err := mysqlCharset(ctx, tmp)
	if err != nil {
		if derr := dropDB(s, tmp); derr != nil {
			err = join(err, fmt.Errorf("dropping %s: %w", tmp, derr))
		}
		return untouched(fmt.Errorf("database %s is untouched: %w", old, err))
	}
	if err := dropDB(s, old); err != nil {
		return fmt.Errorf("dropping the old %s failed; the loaded copy stays in %s: %w", old, tmp, err)
	}
	keep := func(err error) error {
		return fmt.Errorf("the old %s is dropped and copying %s into it failed; the dump's data stays in database %s: %w", old, tmp, tmp, err)
	}
	if err := createDB(ctx, s, old, cs); err != nil {
		return keep(err)
	}
	d, err := Start(ctx, src)
	if err != nil {
		return keep(err)
	}
	m := &marks{}
	br := bufio.NewReader(io.TeeReader(d, m))
	mysqlHeader(br)
	lerr := loadInto(ctx, s, br, m, old)
	if werr := d.Wait(); werr != nil && lerr == nil {
		lerr = werr
	}
	if lerr != nil {
		return keep(lerr)
	}
	if err := dropDB(s, tmp); err != nil {
		return fmt.Errorf("%s is replaced, but %s could not be dropped (drop it by hand): %w", old, tmp, err)
	}
	return nil
}

// loadInto restores the rest of the dump r into the existing database db
// and checks the dump's marks once all of it was read.
func loadInto(ctx context.Context, s Spec, r io.Reader, m *marks, db string) error {
	if s.Engine == Postgres {
		restore := tool{name: "pg_restore into " + db, argv: []string{"pg_restore", "--no-password", "--exit-on-error", "--dbname=" + pgConninfo(db)}, user: s.user()}
		return feed(ctx, r, m, s, restore)
	}
	return loadMySQL(ctx, s, r, m, db, false)
}

// loadMySQL loads the dump r into db. check is Verify's scratch load: r
// starts with holiday's header line, and the client runs in the
// background (tool.background).
func loadMySQL(ctx context.Context, s Spec, r io.Reader, m *marks, db string, check bool) error {
	if check {
		// A missing header is reported by marks.check once the stream
		// has been read.
		br := bufio.NewReader(r)
		mysqlHeader(br)
		r = br
	}
	load := tool{name: "mariadb loading into " + db, argv: []string{"mariadb", "--batch", "--database=" + db}, alt: []string{"mysql"}, user: "root", background: check}
	return feed(ctx, r, m, s, load)
}

// mysqlHeader reads holiday's header line if the dump starts with it and
// returns the database's character set ("" if absent).
func mysqlHeader(br *bufio.Reader) (string, bool) {
	p, err := br.Peek(len(mysqlHeaderPrefix))
	if err != nil || string(p) != mysqlHeaderPrefix {
		return "", false
	}
	line, err := br.ReadString('\n')
	if err != nil {
		return "", false
	}
	f := strings.Fields(strings.TrimPrefix(line, mysqlHeaderPrefix))
	if len(f) != 3 || !charsetRe.MatchString(f[1]) {
		return "", false
	}
	return f[1], true
}

// dbExists says whether db exists, and for PostgreSQL its owner.
func dbExists(ctx context.Context, s Spec, db string) (bool, string, error) {
	var t tool
	if s.Engine == Postgres {
		t = psql(s, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = "+pgLiteral(db))
	} else {
		t = mysqlQuery("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = " + myLiteral(db))
	}
	t.name += " (looking up database " + db + ")"
	out, err := t.run(ctx, nil)
	if err != nil {
		return false, "", err
	}
	out = strings.TrimSpace(out)
	return out != "", out, nil
}

// createDB creates an empty database: PostgreSQL from template0 (a dump
// restores into template0's state, not the site's template1), owned by
// extra if set; MySQL with character set extra if set.
func createDB(ctx context.Context, s Spec, name, extra string) error {
	var t tool
	if s.Engine == Postgres {
		sql := "CREATE DATABASE " + pgIdent(name) + " TEMPLATE template0"
		if extra != "" {
			sql += " OWNER " + pgIdent(extra)
		}
		t = psql(s, "postgres", sql)
	} else {
		sql := "CREATE DATABASE " + myIdent(name)
		if extra != "" && charsetRe.MatchString(extra) {
			sql += " CHARACTER SET " + extra
		}
		t = mysqlQuery(sql)
	}
	t.name += " (creating database " + name + ")"
	_, err := t.run(ctx, nil)
	return err
}

// dropDB drops a database holiday created, on its own context: it runs
// also when the caller's was cancelled.
func dropDB(s Spec, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var t tool
	if s.Engine == Postgres {
		t = psql(s, "postgres", "DROP DATABASE IF EXISTS "+pgIdent(name)+" WITH (FORCE)")
	} else {
		t = mysqlQuery("DROP DATABASE IF EXISTS " + myIdent(name))
	}
	t.name += " (dropping database " + name + ")"
	_, err := t.run(ctx, nil)
	return err
}

func randomSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// marks records the first and last bytes of a stream for checkMarks.
type marks struct {
	head, tail []byte
	n          int64
}

func (m *marks) Write(p []byte) (int, error) {
	if len(m.head) < keep {
		m.head = append(m.head, p[:min(len(p), keep-len(m.head))]...)
	}
	m.tail = append(m.tail, p[max(0, len(p)-keep):]...)
	if len(m.tail) > keep {
		m.tail = m.tail[len(m.tail)-keep:]
	}
	m.n += int64(len(p))
	return len(p), nil
}

func (m *marks) check(s Spec) error {
	head := m.head
	if s.Engine == MySQL && !s.Globals {
		if !strings.HasPrefix(string(head), mysqlHeaderPrefix) {
			return fmt.Errorf("the dump does not start with holiday's %q line: %w", strings.TrimSpace(mysqlHeaderPrefix), ErrIncomplete)
		}
	}
	if err := checkMarks(s, head, m.tail); err != nil {
		return fmt.Errorf("after %d bytes, %w", m.n, err)
	}
	return nil
}

// feed runs the tools with the stream r on their stdin, all at once: a
// tool that stops reading early (pg_restore --list after the table of
// contents) stops getting data without failing the others. It returns
// the first failure among reading r, the tools, and the stream's marks.
func feed(ctx context.Context, r io.Reader, m *marks, s Spec, tools ...tool) error {
	type running struct {
		t      tool
		cmd    *exec.Cmd
		in     io.WriteCloser
		stderr *stderrTail
		dead   bool
	}
	var rs []*running
	killAll := func() {
		for _, x := range rs {
			x.in.Close()
			x.cmd.Process.Kill()
			x.cmd.Wait()
		}
	}
	for _, t := range tools {
		cmd, err := t.command(ctx)
		if err != nil {
			killAll()
			return err
		}
		pr, in, err := os.Pipe()
		if err != nil {
			killAll()
			return err
		}
		widenPipe(in)
		x := &running{t: t, cmd: cmd, in: in, stderr: &stderrTail{}}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, io.Discard, x.stderr
		err = cmd.Start()
		pr.Close() // the tool's end, now the tool's alone
		if err != nil {
			in.Close()
			killAll()
			return fmt.Errorf("starting %s: %w", t.name, err)
		}
		t.started(cmd)
		rs = append(rs, x)
	}
	buf := make([]byte, 256<<10)
	var rerr error
	for {
		n, err := r.Read(buf)
		for _, x := range rs {
			if n > 0 && !x.dead {
				if _, werr := x.in.Write(buf[:n]); werr != nil {
					x.dead = true // it exited or closed stdin: its exit status tells
					x.in.Close()
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = fmt.Errorf("reading the dump: %w", err)
			break
		}
	}
	var errs []error
	if rerr == nil {
		// First: a stream without its marks explains the tools' errors.
		if err := m.check(s); err != nil {
			errs = append(errs, err)
		}
	}
	if rerr != nil {
		errs = append(errs, rerr)
		for _, x := range rs {
			x.cmd.Process.Kill()
		}
	}
	for _, x := range rs {
		x.in.Close()
		if err := x.cmd.Wait(); err != nil && rerr == nil {
			errs = append(errs, exitError(x.t.name, err, x.stderr.line()))
		}
	}
	return join(errs...)
}

// join joins errors on one line (errors.Join's newlines would break the
// one-line summary an operator reads).
func join(errs ...error) error {
	var out error
	for _, e := range errs {
		switch {
		case e == nil:
		case out == nil:
			out = e
		default:
			out = fmt.Errorf("%w; %w", out, e)
		}
	}
	return out
}
