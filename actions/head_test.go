package actions

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/internal/journal"
)

// A journal cut back to an earlier entry still has a valid HMAC chain; only
// the head recorded when the run ended shows the cut.
func TestReadJournalChecksRecordedHead(t *testing.T) {
	key := journal.Key(bytes.Repeat([]byte{1}, 32))
	dir := t.TempDir()
	path := filepath.Join(dir, "web1.journal")
	w, err := journal.Create(path, key)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64
	for _, ph := range []journal.Phase{journal.RunBegin, journal.Intent, journal.Result} {
		if _, err := w.Write(journal.Entry{Run: "r", Host: "web1", Step: "service:nginx", Phase: ph}); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		sizes = append(sizes, fi.Size())
	}
	head := w.Head()
	w.Close()

	if _, err := readJournal(path, "web1", key); err != nil {
		t.Fatalf("no run.json: %v", err)
	}
	writeJSON(filepath.Join(dir, "run.json"), RunInfo{Run: "r", Heads: map[string]string{"web1": head}})
	if _, err := readJournal(path, "web1", key); err != nil {
		t.Fatalf("intact journal: %v", err)
	}
	// Entries appended later (a restore) keep the recorded head inside.
	w, _ = journal.Append(path, key)
	w.Write(journal.Entry{Run: "r", Host: "web1", Step: "service:nginx", Phase: journal.RevertIntent})
	w.Close()
	if _, err := readJournal(path, "web1", key); err != nil {
		t.Fatalf("journal with a restore appended: %v", err)
	}
	// Cut back to the intent: the chain verifies, the head is gone.
	if err := os.Truncate(path, sizes[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := journal.ReadFile(path, key); err != nil {
		t.Fatalf("the cut journal should still verify on its own: %v", err)
	}
	if _, err := readJournal(path, "web1", key); err == nil || !strings.Contains(err.Error(), "entries were removed") {
		t.Fatalf("cut journal: err = %v, want entries were removed", err)
	}
}
