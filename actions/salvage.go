package actions

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/journal"
)

// SalvageKind marks the run-begin entry that starts a journal rewritten
// by SalvageJournal.
const SalvageKind = "salvage"

// SalvageJournal rewrites a host's journal whose chain is broken (the
// operator asked for it: restore --salvage). It keeps every entry whose
// own MAC verifies (journal.Salvage), moves the damaged file aside as
// evidence (<path>.broken-<time>), and writes a new journal at path that
// starts with a salvage entry saying what was kept and dropped, followed
// by the kept entries re-chained. Restore then reverts its steps newest
// first as from any journal. It returns the salvage entry's text.
func SalvageJournal(path string, key journal.Key) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	s, err := journal.Salvage(f, key)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("salvaging %s: %w", path, err)
	}
	if len(s.Entries) == 0 {
		return "", fmt.Errorf("salvaging %s: no entry's MAC verifies with this control node's key: nothing to revert from (restore --from-host uses the host's copy)", path)
	}
	aside := fmt.Sprintf("%s.broken-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("salvaging %s: %w", path, err)
	}
	note := fmt.Sprintf("salvaged by restore --salvage from %s: kept %d entries whose MAC verifies", aside, len(s.Entries))
	if len(s.Problems) > 0 {
		note += "; " + strings.Join(s.Problems, "; ")
	}
	w, err := journal.Create(path, key)
	if err != nil {
		return "", err
	}
	defer w.Close()
	first := s.Entries[0]
	if _, err := w.Write(journal.Entry{Run: first.Run, Host: first.Host, Phase: journal.RunBegin, Kind: SalvageKind, Error: note}); err != nil {
		return "", err
	}
	for _, e := range s.Entries {
		e.Seq, e.MAC = 0, ""
		if _, err := w.Write(e); err != nil {
			return "", err
		}
	}
	return note, nil
}

// salvaged reports whether a journal was rewritten by SalvageJournal.
func salvaged(j *journal.Journal) bool {
	return len(j.Entries) > 0 && j.Entries[0].Phase == journal.RunBegin && j.Entries[0].Kind == SalvageKind
}
