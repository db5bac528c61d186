package dbdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// pgConninfo is a libpq connection string naming database db, quoted so
// that any name (spaces, quotes, '=') reaches the server unchanged and
// none is read as a connection string of its own.
func pgConninfo(db string) string {
	return "dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(db) + "'"
}

// pgIdent quotes a PostgreSQL identifier; pgLiteral a string literal
// (standard_conforming_strings, on since 9.1).
func pgIdent(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func pgLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// myIdent quotes a MySQL identifier; myLiteral a string literal.
func myIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
func myLiteral(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// dumpTool is the command that writes s's dump to stdout.
func dumpTool(s Spec) tool {
	switch {
	case s.Globals:
		return tool{name: "pg_dumpall --globals-only", argv: []string{"pg_dumpall", "--globals-only", "--no-password"}, user: s.user()}
	case s.Engine == Postgres:
		return tool{name: "pg_dump of " + s.Database, argv: []string{"pg_dump", "--format=custom", "--compress=" + strconv.Itoa(s.Compress), "--no-password", "--dbname=" + pgConninfo(s.Database)}, user: s.user()}
	default:
		// Without --databases: the dump holds no CREATE DATABASE/USE, so it
		// loads into any database name (a scratch check, --into); holiday's
		// header line carries the database's character set for the
		// CREATE DATABASE that Load writes itself.
		return tool{name: "mariadb-dump of " + s.Database, argv: []string{"mariadb-dump", "--single-transaction", "--routines", "--events", "--triggers",
			"--default-character-set=utf8mb4", "--", s.Database}, alt: []string{"mysqldump"}, user: s.user()}
	}
}

// psql runs SQL as the Spec's user in database db, stopping at the first
// error; -X: no ~/.psqlrc.
func psql(s Spec, db, sql string) tool {
	return tool{name: "psql", argv: []string{"psql", "-X", "-q", "-A", "-t", "--no-password", "-v", "ON_ERROR_STOP=1", "--dbname=" + pgConninfo(db), "-c", sql}, user: s.user()}
}

// mysqlQuery runs SQL as root through the unix socket.
func mysqlQuery(sql string) tool {
	return tool{name: "mariadb", argv: []string{"mariadb", "--batch", "--skip-column-names", "-e", sql}, alt: []string{"mysql"}, user: "root"}
}

// listDatabases lists the server's databases (PostgreSQL: not templates,
// connectable).
func listDatabases(ctx context.Context, s Spec) ([]string, error) {
	var t tool
	if s.Engine == Postgres {
		t = psql(s, "postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1")
	} else {
		t = mysqlQuery("SHOW DATABASES")
	}
	t.name += " (listing the " + s.Engine + " databases)"
	out, err := t.run(ctx, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" {
			names = append(names, l)
		}
	}
	return names, nil
}

// mysqlHeaderPrefix opens the line holiday writes before mariadb-dump's
// output: "-- holiday-database: NAME CHARSET COLLATION". It is an SQL
// comment, so the file still loads with stock `mariadb DB < NAME.sql`.
const mysqlHeaderPrefix = "-- holiday-database: "

var charsetRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// mysqlCharset returns the database's default character set and
// collation; a database that does not exist is a clear error here, before
// mariadb-dump's many lines about it.
func mysqlCharset(ctx context.Context, db string) (string, string, error) {
	t := mysqlQuery("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = " + myLiteral(db))
	t.name += " (looking up MySQL database " + db + ")"
	out, err := t.run(ctx, nil)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return "", "", fmt.Errorf("MySQL database %q does not exist on this server", db)
	}
	if len(f) != 2 || !charsetRe.MatchString(f[0]) || !charsetRe.MatchString(f[1]) {
		return "", "", fmt.Errorf("MySQL database %q: unexpected character set %q", db, strings.TrimSpace(out))
	}
	return f[0], f[1], nil
}

// Dump is a running dump: read it to the end, then Wait.
type Dump struct {
	spec   Spec
	cmd    *exec.Cmd
	out    *os.File  // the tool's stdout (dumpPipe)
	pipe   int       // out's pipe buffer
	last   int       // bytes the last read of out returned (-1: none yet)
	r      io.Reader // header (MySQL), then out
	stderr *stderrTail

	mu    sync.Mutex
	n     int64 // bytes of the tool's output read
	eof   bool
	head  []byte // first bytes of the tool's output
	tail  []byte // last bytes of the tool's output
	wait  error
	waits bool
}

const keep = 256

// Start runs s's dump tool on this host; the returned Dump streams its
// output. The caller reads it to EOF and then calls Wait, which says
// whether what was read is the whole dump.
func Start(ctx context.Context, s Spec) (*Dump, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var header []byte
	if s.Engine == MySQL {
		cs, coll, err := mysqlCharset(ctx, s.Database)
		if err != nil {
			return nil, err
		}
		header = []byte(fmt.Sprintf("%s%s %s %s\n", mysqlHeaderPrefix, escapeName(s.Database), cs, coll))
	}
	t := dumpTool(s)
	cmd, err := t.command(ctx)
	if err != nil {
		return nil, err
	}
	out, w, err := dumpPipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", t.name, err)
	}
	d := &Dump{spec: s, cmd: cmd, out: out, pipe: pipeCap(out), last: -1, stderr: &stderrTail{}}
	cmd.Stdout, cmd.Stderr = w, d.stderr
	err = cmd.Start()
	w.Close() // the tool's end is the tool's alone: its exit is the output's end
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("starting %s: %w", t.name, err)
	}
	d.r = io.MultiReader(bytes.NewReader(header), readerFunc(d.readTool))
	return d, nil
}

// dumpPipe is the pipe a dump tool writes to: widened (widenPipe), and
// with a blocking read end outside Go's poller. A pipe in the poller
// (epoll) wakes a thread of this process at each of the tool's writes —
// pg_dump -Fc writes 4 KiB at a time, tens of thousands of wake-ups for a
// large database, each one liable to take the CPU from the dump itself;
// a blocking read is woken only when it waits, and readTool waits for a
// moment before it reads little (dumpPace).
func dumpPipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	r, w = os.NewFile(uintptr(fds[0]), "dump|"), os.NewFile(uintptr(fds[1]), "|dump")
	widenPipe(w)
	return r, w, nil
}

// pipeCap is the buffer of the pipe f is an end of (0 if unknown).
func pipeCap(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
	return n
}

// dumpPace is how long readTool waits before a read when the last one
// found the pipe less than an eighth full: the tool's output gathers in
// the pipe meanwhile, and is read in a few large reads instead of many
// small ones. A pipe of 1 MiB holds 4 ms of output up to 250 MB/s, and a
// tool that writes faster finds its pipe read without a pause; with a
// pipe that could not be widened, reads are never paced.
const dumpPace = 4 * time.Millisecond

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// Read reads the dump.
func (d *Dump) Read(p []byte) (int, error) { return d.r.Read(p) }

func (d *Dump) readTool(p []byte) (int, error) {
	if d.last >= 0 && d.last < d.pipe/8 && d.pipe >= pipeSize {
		time.Sleep(dumpPace)
	}
	n, err := d.out.Read(p)
	d.last = n
	d.mu.Lock()
	if len(d.head) < keep {
		d.head = append(d.head, p[:min(n, keep-len(d.head))]...)
	}
	d.tail = append(d.tail, p[max(0, n-keep):n]...)
	if len(d.tail) > keep {
		d.tail = d.tail[len(d.tail)-keep:]
	}
	d.n += int64(n)
	if err == io.EOF {
		d.eof = true
	}
	d.mu.Unlock()
	return n, err
}

// Wait waits for the tool and returns nil only for a whole dump: the tool
// exited 0, its output was read to the end, and the output has its
// format's marks (PostgreSQL custom format's PGDMP magic; the completion
// line pg_dumpall and mariadb-dump write last). A dump not read to the
// end is killed. Wait may be called more than once.
func (d *Dump) Wait() error {
	d.mu.Lock()
	if d.waits {
		defer d.mu.Unlock()
		return d.wait
	}
	d.waits = true
	eof := d.eof
	d.mu.Unlock()
	if !eof {
		// A reader that stopped early would leave the tool blocked on a
		// full pipe forever.
		d.cmd.Process.Kill()
	}
	err := d.cmd.Wait()
	d.out.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	what := dumpTool(d.spec).name
	switch {
	case !eof:
		d.wait = fmt.Errorf("%s was cut short: its output was not read to the end (%d bytes read): %w", what, d.n, ErrIncomplete)
	case err != nil && d.n == 0:
		d.wait = fmt.Errorf("%w (no dump was made)", exitError(what, err, d.stderr.line()))
	case err != nil:
		d.wait = fmt.Errorf("%w (after %d bytes: the dump is incomplete)", exitError(what, err, d.stderr.line()), d.n)
	default:
		d.wait = checkMarks(d.spec, d.head, d.tail)
		if d.wait != nil {
			d.wait = fmt.Errorf("%s exited 0 but %w (%d bytes)", what, d.wait, d.n)
		}
	}
	return d.wait
}

// Bytes is how many bytes of the tool's output were read so far.
func (d *Dump) Bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// Completion marks: the last thing each tool writes on success.
const (
	pgMagic         = "PGDMP"
	pgDumpallMark   = "-- PostgreSQL database cluster dump complete"
	mysqlDoneMark   = "-- Dump completed"
	errIncompleteIs = "the dump is incomplete"
)

// ErrIncomplete is wrapped by every error that says a dump lacks its end
// (or start) marks.
var ErrIncomplete = errors.New(errIncompleteIs)

// checkMarks looks for the format's marks in the first and last bytes of
// a dump. PostgreSQL's custom format has no trailer to check (a piped
// pg_dump -Fc writes its data blocks last, with no end marker, and
// pg_restore --list reads only the table of contents at the start); its
// completeness rests on pg_dump's exit status, which is non-zero on any
// read or write failure, and on Verify reading every block.
func checkMarks(s Spec, head, tail []byte) error {
	switch {
	case s.Globals:
		if !bytes.Contains(tail, []byte(pgDumpallMark)) {
			return fmt.Errorf("its output lacks the final %q line: %w", pgDumpallMark, ErrIncomplete)
		}
	case s.Engine == Postgres:
		if !bytes.HasPrefix(head, []byte(pgMagic)) {
			return fmt.Errorf("its output does not start with the custom format's %q magic: %w", pgMagic, ErrIncomplete)
		}
	default:
		if !bytes.Contains(lastLines(tail, 3), []byte(mysqlDoneMark)) {
			return fmt.Errorf("its output lacks the final %q line: %w", mysqlDoneMark, ErrIncomplete)
		}
	}
	return nil
}

// lastLines is the last n lines of b (a completion mark must be at the
// end, not anywhere in the last bytes).
func lastLines(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
