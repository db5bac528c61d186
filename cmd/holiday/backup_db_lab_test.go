package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// TestLockdownDatabaseBackupsLab: lockdown of sys2 dumps PostgreSQL's
// shop (and the globals) and MariaDB's shop through the data path, reads
// each dump back from the repository into the host's verification (with
// a scratch restore), and only then goes on. Stock restic checks every
// byte; the dumps it restores load into new databases whose rows are the
// seeded ones.
func TestLockdownDatabaseBackupsLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sys2")
	h.Lock(t)
	plan, repoDir, pw, state := backupLabOn(t, "sys2", "10.213.0.12",
		"      - postgres: {databases: [shop], globals: true, restore_check: true}\n"+
			"      - mysql: {databases: [shop], restore_check: true}\n")
	res, stderr, code := lockdownJSON(t, plan, state)
	if code != 0 || len(res.Hosts) != 1 || res.Hosts[0].Status != actions.HostDone {
		t.Fatalf("lockdown: exit %d, %+v\n%s", code, res, stderr)
	}
	got := map[string]actions.Taken{}
	for _, s := range res.Hosts[0].Snapshots {
		got[s.Kind+" "+strings.Join(s.Paths, ",")] = s
	}
	for _, want := range []string{"postgres /postgres/shop", "postgres /postgres/globals", "mysql /mysql/shop"} {
		if _, ok := got[want]; !ok {
			t.Errorf("no snapshot %q; got %+v", want, res.Hosts[0].Snapshots)
		}
	}
	if t.Failed() {
		return
	}
	restic(t, repoDir, pw, "check", "--read-data")

	ctx := context.Background()
	seeded := "1|sunscreen|12\n2|towel|5\n3|flip-flops|7\n"
	for _, c := range []struct {
		key, file, load, query, drop string
	}{
		{"postgres /postgres/shop", "shop.pgdump",
			"runuser -u postgres -- createdb holiday_t_restored && runuser -u postgres -- pg_restore --no-owner -d holiday_t_restored",
			"runuser -u postgres -- psql -At -F'|' -d holiday_t_restored -c 'SELECT id, name, qty FROM items ORDER BY id'",
			"runuser -u postgres -- dropdb --if-exists holiday_t_restored"},
		{"mysql /mysql/shop", "shop.sql",
			"mariadb -e 'CREATE DATABASE holiday_t_restored' && mariadb holiday_t_restored",
			"mariadb -N -B holiday_t_restored -e 'SELECT id, name, qty FROM items ORDER BY id' | tr '\\t' '|'",
			"mariadb -e 'DROP DATABASE IF EXISTS holiday_t_restored'"},
	} {
		dump := restic(t, repoDir, pw, "dump", got[c.key].Snapshot, "/"+c.file)
		if len(dump) == 0 {
			t.Fatalf("%s: restic dump is empty", c.key)
		}
		t.Cleanup(func() { h.SSH(ctx, "root", c.drop) })
		h.SSH(ctx, "root", c.drop)
		argv := slices.DeleteFunc(h.SSHArgs("root", h.Addr), func(a string) bool { return a == "-n" }) // stdin carries the dump
		load := exec.Command(argv[0], append(argv[1:], "--", c.load)...)
		load.Stdin = strings.NewReader(dump)
		if out, err := load.CombinedOutput(); err != nil {
			t.Fatalf("%s: loading the dump restic restored: %v\n%s", c.key, err, out)
		}
		if rows := h.MustSSH(t, "root", c.query); rows != seeded {
			t.Errorf("%s: rows of the restored database:\n%s\nwant the seeded\n%s", c.key, rows, seeded)
		}
	}
}

// backupLabOn is backupLab for another lab host: a fresh repository and
// a plan that backs up host's sources and changes nothing else.
func backupLabOn(t *testing.T, host, addr, sources string) (plan, repoDir, pwFile, state string) {
	t.Helper()
	plan, repoDir, pwFile, state = backupLab(t, sources)
	b, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "  - name: sysv1\n    address: 10.213.0.13\n", fmt.Sprintf("  - name: %s\n    address: %s\n", host, addr), 1)
	if !strings.Contains(text, "name: "+host) {
		t.Fatalf("plan for %s: %s", host, text)
	}
	if err := os.WriteFile(plan, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return plan, repoDir, pwFile, filepath.Clean(state)
}

// TestBackupDumpVerifiedInStreamLab: the dump is verified on the host as
// it is chunked. A pg_dump that exits 0 with the custom format's magic
// but cut short at 1,000 of its ~1,600 bytes (a stand-in in
// /usr/local/bin, found before the real one,
// piping it through head) passes the dump's own checks; only the
// verifier reading every block catches it, with and without a scratch
// restore. The host's backup fails in one line, no postgres snapshot is
// written, and no scratch database is left.
func TestBackupDumpVerifiedInStreamLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sys2")
	h.Lock(t)
	ctx := context.Background()
	const wrapper = "/usr/local/bin/pg_dump"
	t.Cleanup(func() { h.SSH(ctx, "root", "rm -f "+wrapper) })
	h.MustSSH(t, "root", "test ! -e "+wrapper+" && printf '#!/bin/sh\\n/usr/bin/pg_dump \"$@\" | head -c 1000\\n' >"+wrapper+" && chmod 755 "+wrapper)
	for _, scratch := range []bool{false, true} {
		t.Run(fmt.Sprintf("restore_check=%v", scratch), func(t *testing.T) {
			plan, repoDir, pw, state := backupLabOn(t, "sys2", "10.213.0.12", fmt.Sprintf("      - postgres: {databases: [shop], restore_check: %v}\n", scratch))
			stdout, stderr, code := runPlanBinary(t, "backup", "-f", plan, "--state-dir", state, "--journal-key", filepath.Join(state, "journal.key"))
			t.Logf("holiday backup: exit %d\n%s%s", code, stdout, stderr)
			if code == 0 {
				t.Fatal("a dump that does not restore was backed up")
			}
			line := ""
			for _, l := range strings.Split(stdout, "\n") {
				if strings.HasPrefix(l, "sys2: backup:host ") {
					line = l
				}
			}
			if !strings.Contains(line, "postgres shop.pgdump") || !strings.Contains(line, "does not restore") || !strings.Contains(line, "pg_restore") {
				t.Errorf("the host's failure line %q does not say the dump does not restore", line)
			}
			if out := restic(t, repoDir, pw, "snapshots", "--tag", "kind:postgres", "--json"); strings.TrimSpace(out) != "[]" {
				t.Errorf("a postgres snapshot was written: %s", out)
			}
			if left := h.MustSSH(t, "root", `cd / && runuser -u postgres -- psql -At -c "SELECT datname FROM pg_database WHERE datname LIKE 'holiday_check_%'"`); strings.TrimSpace(left) != "" {
				t.Errorf("scratch databases left: %s", left)
			}
		})
	}
}

// TestBackupDumpRepositoryFailsLab: in a backup run the first dump starts
// while the repository is still opening (its key derivation); when the
// repository then does not open (a wrong password here), the host fails
// in one line with the repository's own error, and the dump started for
// it does not outlive the run: no dump tool or verifier is left on the
// host. A dump checked by a scratch restore never starts before the
// repository is open. The pg_dump stand-in (found before the real one)
// notes that it started, then sleeps before the real pg_dump: whatever
// is left of it would still run. Whether the plain dump started before
// the derivation failed is logged (a derivation that wins the race
// starts nothing).
func TestBackupDumpRepositoryFailsLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sys2")
	h.Lock(t)
	ctx := context.Background()
	const wrapper, trace = "/usr/local/bin/pg_dump", "/tmp/holiday-t-dump-started"
	t.Cleanup(func() { h.SSH(ctx, "root", "rm -f "+wrapper+" "+trace) })
	h.MustSSH(t, "root", "test ! -e "+wrapper+" && rm -f "+trace+
		" && printf '#!/bin/sh\\ntouch "+trace+"\\nsleep 37\\nexec /usr/bin/pg_dump \"$@\"\\n' >"+wrapper+" && chmod 755 "+wrapper)
	for _, scratch := range []bool{false, true} {
		t.Run(fmt.Sprintf("restore_check=%v", scratch), func(t *testing.T) {
			h.MustSSH(t, "root", "rm -f "+trace)
			plan, _, pw, state := backupLabOn(t, "sys2", "10.213.0.12", fmt.Sprintf("      - postgres: {databases: [shop], restore_check: %v}\n", scratch))
			if err := os.WriteFile(pw, []byte("not the repository's password\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := runPlanBinary(t, "backup", "-f", plan, "--state-dir", state, "--journal-key", filepath.Join(state, "journal.key"))
			t.Logf("holiday backup: exit %d\n%s%s", code, stdout, stderr)
			if code == 0 {
				t.Fatal("a backup into a repository that does not open succeeded")
			}
			line := ""
			for _, l := range strings.Split(stdout, "\n") {
				if strings.HasPrefix(l, "sys2: backup:host ") {
					line = l
				}
			}
			if !strings.Contains(line, "wrong password") || strings.Contains(line, "pg_dump") {
				t.Errorf("the host's failure line %q does not give the repository's error (alone)", line)
			}
			started := h.MustSSH(t, "root", "test -e "+trace+" && echo started || true") == "started\n"
			t.Logf("the dump started before the repository failed: %v", started)
			if scratch && started {
				t.Error("a dump with a scratch restore started before the repository was open")
			}
			// what the run started on the host ends with it
			left := ""
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				left = h.MustSSH(t, "root", "ps -u postgres -o pid=,args= | grep -E 'sleep 37|pg_dump|pg_restore' | grep -v grep || true")
				if strings.TrimSpace(left) == "" || time.Now().After(deadline) {
					break
				}
			}
			if strings.TrimSpace(left) != "" {
				t.Errorf("left running on the host after the run:\n%s", left)
			}
		})
	}
}
