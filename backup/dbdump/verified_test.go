package dbdump

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/internal/testenv"
)

// TestStartVerified: a dump verified as it is read passes only when the
// dump is whole and the verifier (stand-in pg_restore scripts here; the
// lab tests run the real ones) accepts it, and the verifier reads exactly
// the bytes the reader read, in order. A dump the verifier rejects, one
// cut short by its tool, and one whose reader stops early each fail, on
// one line, the tool's own failure named first.
func TestStartVerified(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: several buffers
	for _, c := range []struct {
		name  string
		dump  string
		readN int
		want  string
	}{
		{"whole", `printf 'PGDMP\001'; cat "$BODY"; printf END`, 0, ""},
		{"verifier rejects", `printf 'PGDMP\001'; cat "$BODY"`, 0,
			"the dump was made but does not restore: verifying shop.pgdump: pg_restore exited with status 1: pg_restore: error: could not read input file: end of file"},
		{"dump killed", `printf 'PGDMP\001'; cat "$BODY"; kill -9 $$`, 0, "pg_dump of shop was killed by signal KILL"},
		{"reader stops early", `printf 'PGDMP\001'; exec cat "$BODY"`, 4096, "pg_dump of shop was cut short"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			body, seen := filepath.Join(dir, "body"), filepath.Join(dir, "seen")
			if err := os.WriteFile(body, []byte(big), 0o644); err != nil {
				t.Fatal(err)
			}
			fakeTools(t, map[string]string{
				"pg_dump": "BODY=" + body + "\n" + c.dump,
				// --list reads the head only, like the real one; the full
				// read keeps what it read and wants the end mark
				"pg_restore": `if [ "$1" = --list ]; then head -c 6 >/dev/null; exit 0; fi
cat >` + seen + `
tail -c 3 ` + seen + ` | grep -q END || { echo 'pg_restore: error: could not read input file: end of file' >&2; exit 1; }`,
			})
			d, err := StartVerified(context.Background(), Spec{Engine: Postgres, Database: "shop", User: me(t)}, false)
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
				if v, err := os.ReadFile(seen); err != nil || !bytes.Equal(v, got) {
					t.Errorf("the verifier read %d bytes (%v), the reader %d: not the same bytes", len(v), err, len(got))
				}
				return
			}
			if werr == nil || !strings.Contains(werr.Error(), c.want) || strings.Contains(werr.Error(), "\n") {
				t.Fatalf("Wait = %v\nwant one line with %q", werr, c.want)
			}
		})
	}
}

// TestVerifierInBackground: the verifier's tools run niced by
// backgroundNice (the dump tool, the backup's critical path, at the
// agent's own priority), and the dump's pipe is widened to pipeSize and
// read blocking (dumpPipe).
func TestVerifierInBackground(t *testing.T) {
	base, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	base = 20 - base // the kernel's 40..1 back to nice's -20..19
	if base+backgroundNice > 19 {
		testenv.Skip(t, "this test already runs at niceness "+strconv.Itoa(base)+": no room to go lower")
	}
	dir := t.TempDir()
	nice := func(name string) string { return `nice >` + filepath.Join(dir, name) + "\n" }
	// the verifiers say their niceness once they have read: their input
	// comes after they were reniced
	fakeTools(t, map[string]string{
		"pg_dump":    nice("pg_dump") + `printf 'PGDMP\001END'`,
		"pg_restore": `if [ "$1" = --list ]; then head -c 6 >/dev/null; ` + nice("list") + `exit 0; fi` + "\n" + `cat >/dev/null; ` + nice("read"),
	})
	d, err := StartVerified(context.Background(), Spec{Engine: Postgres, Database: "shop", User: me(t)}, false)
	if err != nil {
		t.Fatal(err)
	}
	// (Fd would make the file blocking: look without changing it)
	fcntl := func(cmd int) (v int, err error) {
		rc, err := d.d.out.SyscallConn()
		if err != nil {
			return 0, err
		}
		if cerr := rc.Control(func(fd uintptr) { v, err = unix.FcntlInt(fd, cmd, 0) }); cerr != nil {
			return 0, cerr
		}
		return v, err
	}
	if pipe, err := fcntl(unix.F_GETPIPE_SZ); err != nil || pipe != pipeSize {
		t.Errorf("the dump's pipe holds %d bytes (%v); want %d", pipe, err, pipeSize)
	}
	// read blocking, outside the poller: the tool's writes wake nobody
	// but a read waiting for them
	if fl, err := fcntl(unix.F_GETFL); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("the dump's pipe is read non-blocking (flags %#x, %v)", fl, err)
	}
	if _, err := io.ReadAll(d); err != nil {
		t.Fatal(err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"pg_dump": base, "list": base + backgroundNice, "read": base + backgroundNice} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if got, _ := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || got != want {
			t.Errorf("%s ran at niceness %q (%v); want %d", name, b, err, want)
		}
	}
}
