package restore

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// TestFetchRepoJournals: a control node without the run reads it from
// the repository into its state dir (with run.json naming the chain
// heads), reading it again changes nothing, and a local journal that
// differs from the repository's is not replaced.
func TestFetchRepoJournals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pass")
	os.WriteFile(pw, []byte("fetch test\n"), 0o600)
	e := &repocmd.Env{Repo: filepath.Join(dir, "repo"), PasswordFile: pw, Quiet: true, Stdout: io.Discard, Stderr: io.Discard}
	if err := repocmd.Init(ctx, e, repocmd.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	rj := &actions.RepoJournals{Env: e, Plan: "p"}
	keyA, _ := journal.NewKey()
	stateA := filepath.Join(dir, "a")
	run := "20261206T060000Z-dddddd"
	for _, h := range []string{"web1", "db1"} {
		w, err := journal.Create(actions.JournalPath(stateA, run, h), keyA)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(journal.Entry{Run: run, Host: h, Phase: journal.RunBegin, Kind: "lockdown"})
		w.Close()
	}
	if _, err := actions.SaveRunJournals(ctx, actions.Options{StateDir: stateA, Key: keyA, Journals: rj}, run); err != nil {
		t.Fatal(err)
	}

	keyB, _ := journal.NewKey()
	o := Options{StateDir: filepath.Join(dir, "b"), Hosts: []*plans.Host{{Name: "web1"}, {Name: "db1"}, {Name: "mail1"}}}
	if holdsRun(o) {
		t.Fatal("holdsRun on an empty state dir")
	}
	ao := &actions.Options{Key: keyB, Journals: rj}
	rr, err := fetchRepoJournals(ctx, ao, o)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Run != run || string(rr.Key) != string(keyA) || !holdsRun(o) {
		t.Fatalf("fetched run %s (key A: %v), holdsRun %v", rr.Run, string(rr.Key) == string(keyA), holdsRun(o))
	}
	var info actions.RunInfo
	b, _ := os.ReadFile(filepath.Join(actions.RunDir(o.StateDir, run), "run.json"))
	if err := json.Unmarshal(b, &info); err != nil || info.Command != "lockdown" || len(info.Heads) != 2 || info.Heads["web1"] == "" {
		t.Errorf("run.json = %s (%v)", b, err)
	}
	if _, err := fetchRepoJournals(ctx, ao, o); err != nil {
		t.Errorf("reading the same run again: %v", err)
	}
	os.WriteFile(actions.JournalPath(o.StateDir, run, "db1"), []byte("something else\n"), 0o600)
	if _, err := fetchRepoJournals(ctx, ao, o); err == nil || !strings.Contains(err.Error(), "differs from the repository's") {
		t.Errorf("a local journal that differs: %v", err)
	}
}
