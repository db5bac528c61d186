package actions

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/holiday-ops/holiday/internal/agent"
)

// journalStore replaces a host's copy atomically, root-only, and
// journalGet reads back the newest.
func TestJournalStoreReplaces(t *testing.T) {
	saved := HostJournalDir
	HostJournalDir = filepath.Join(t.TempDir(), "journal")
	t.Cleanup(func() { HostJournalDir = saved })

	for _, data := range []string{"first\n", "second, longer\n", "3\n"} {
		dst, err := journalStore(JournalCopy{Run: "20270205T100000Z-abc123", Host: "web1", Data: []byte(data)})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(dst); err != nil || string(b) != data {
			t.Fatalf("%s holds %q (%v), want %q", dst, b, err, data)
		}
		fi, err := os.Stat(dst)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", dst, fi.Mode().Perm(), err)
		}
		ents, err := os.ReadDir(filepath.Dir(dst))
		if err != nil || len(ents) != 1 {
			t.Fatalf("run directory holds %v (%v), want only the journal: a temporary file left behind?", ents, err)
		}
	}
	if fi, err := os.Stat(HostJournalDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v, want 0700", HostJournalDir, fi.Mode().Perm(), err)
	}
	args, _ := json.Marshal(JournalCopy{Host: "web1"})
	got, err := journalGet(context.Background(), &agent.Op{Args: args})
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(JournalCopy); c.Run != "20270205T100000Z-abc123" || string(c.Data) != "3\n" {
		t.Fatalf("journalGet: %+v", c)
	}
	if _, err := journalStore(JournalCopy{Run: "../escape", Host: "web1"}); err == nil {
		t.Fatal("journalStore took a run name with a path in it")
	}
}

// journalGet's latest is the latest run restore can revert: a rollback
// run's copy (undone by its pre-rollback snapshot) is left out unless
// asked for by name.
func TestJournalGetSkipsRollbackRuns(t *testing.T) {
	saved := HostJournalDir
	HostJournalDir = filepath.Join(t.TempDir(), "journal")
	t.Cleanup(func() { HostJournalDir = saved })
	for _, c := range []struct{ run, line string }{
		{"20270205T100000Z-aaaaaa", `{"seq":1,"time":"2027-02-05T10:00:00Z","kind":"lockdown","phase":"run-begin"}` + "\n"},
		{"20270206T100000Z-bbbbbb", `{"seq":1,"time":"2027-02-06T10:00:00Z","kind":"rollback","phase":"run-begin"}` + "\n"},
	} {
		if _, err := journalStore(JournalCopy{Run: c.run, Host: "web1", Data: []byte(c.line)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(run string) JournalCopy {
		args, _ := json.Marshal(JournalCopy{Host: "web1", Run: run})
		got, err := journalGet(context.Background(), &agent.Op{Args: args})
		if err != nil {
			t.Fatal(err)
		}
		return got.(JournalCopy)
	}
	if c := get(""); c.Run != "20270205T100000Z-aaaaaa" {
		t.Errorf("latest: %s, want the lockdown run", c.Run)
	}
	if c := get("20270206T100000Z-bbbbbb"); c.None || c.Run != "20270206T100000Z-bbbbbb" {
		t.Errorf("the rollback run by name: %+v", c)
	}
}
