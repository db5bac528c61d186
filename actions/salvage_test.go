package actions

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/holiday-ops/holiday/internal/journal"
)

var (
	salvageLog []string
	salvageMu  sync.Mutex
)

func init() {
	RegisterKind("salvage-test", func(target string) (Action, error) {
		return fakeAction{name: target, log: &salvageLog, mu: &salvageMu}, nil
	})
}

// TestSalvageInterleavedWriters: two writers appended to one journal at
// once (what two runs on one host did before the run locks): the chain
// breaks and restore refuses, saying the way back; restore --salvage
// reverts every step whose entries' MACs verify, newest first, keeps the
// damaged file and records what it did; a second restore has nothing
// left to do.
func TestSalvageInterleavedWriters(t *testing.T) {
	dir := t.TempDir()
	key, _ := journal.NewKey()
	run := "20261206T020000Z-abcdef"
	path := JournalPath(dir, run, "a")
	w, err := journal.Create(path, key)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(target string) []byte {
		r, _ := NewRecord("salvage-test", target, map[string]string{"was": "on"})
		return mustJSON(r)
	}
	e := func(phase journal.Phase, step string) journal.Entry {
		en := journal.Entry{Run: run, Host: "a", Phase: phase}
		if step != "" {
			en.Step, en.Kind = "salvage-test:"+step, "salvage-test"
			if phase == journal.Intent || phase == journal.Result {
				en.Record = rec(step)
			}
		}
		return en
	}
	w.Write(e(journal.RunBegin, ""))
	w.Write(e(journal.Intent, "s1"))
	w.Write(e(journal.Result, "s1"))
	// A second writer opens the same journal and both append.
	w2, err := journal.Append(path, key)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(e(journal.Intent, "s2"))
	w2.Write(e(journal.Intent, "s3"))
	w.Write(e(journal.Result, "s2"))
	w2.Write(e(journal.Result, "s3"))
	w.Close()
	w2.Close()
	// And one line was forged without the key.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":9,"time":"2026-12-06T02:00:00Z","run":"` + run + `","host":"a","step":"salvage-test:evil","kind":"salvage-test","phase":"intent","mac":"00"}` + "\n")
	f.Close()

	job := []RevertJob{{Name: "a", Journal: path, Connect: func(context.Context) (*Host, func(), error) {
		return &Host{Name: "a"}, func() {}, nil
	}}}
	o := Options{StateDir: dir, Key: key, NoHostCopy: true, RunID: run}
	res := RevertJournals(context.Background(), o, job)
	if h := res.Hosts[0]; h.Status != HostFailed || !strings.Contains(h.Error, "--from-host") || !strings.Contains(h.Error, "--salvage") {
		t.Fatalf("restore of a broken journal: %s %q, want failed naming both ways back", h.Status, h.Error)
	}
	if len(salvageLog) != 0 {
		t.Fatalf("a refused restore reverted %q", salvageLog)
	}

	o.Salvage = true
	res = RevertJournals(context.Background(), o, job)
	h := res.Hosts[0]
	if h.Status != HostDone {
		t.Fatalf("restore --salvage: %s %q", h.Status, h.Error)
	}
	want := []string{"a revert s3 done=true", "a revert s2 done=true", "a revert s1 done=true"}
	if !slices.Equal(salvageLog, want) {
		t.Errorf("reverts %q, want %q (newest first, the forged step left out)", salvageLog, want)
	}
	if !strings.Contains(h.Note, "salvaged by restore --salvage from") || !strings.Contains(h.Note, "does not verify") {
		t.Errorf("note %q does not say what was salvaged and dropped", h.Note)
	}
	if m, _ := os.ReadDir(RunDir(dir, run)); len(m) < 2 {
		t.Errorf("the damaged journal was not kept beside the new one: %v", m)
	}
	j, err := journal.ReadFile(path, key)
	if err != nil || !salvaged(j) {
		t.Fatalf("the rewritten journal: %v (salvage entry first: %v)", err, err == nil && salvaged(j))
	}
	salvageLog = nil
	res = RevertJournals(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true, RunID: run}, job)
	if res.Hosts[0].Status != HostDone || len(salvageLog) != 0 {
		t.Errorf("restore again: %s, reverts %q, want done with nothing left", res.Hosts[0].Status, salvageLog)
	}
}
