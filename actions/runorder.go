package actions

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// RunStarted is when a run started, as precisely as this control node
// knows: run.json's start (nanoseconds), else the first entry of any of
// its journals, else the second in its ID. Run IDs have one-second
// resolution and a random suffix, so two runs in one second sort by this,
// not by name.
func RunStarted(stateDir, run string) time.Time {
	dir := RunDir(stateDir, run)
	var info RunInfo
	if b, err := os.ReadFile(filepath.Join(dir, "run.json")); err == nil && json.Unmarshal(b, &info) == nil && !info.Started.IsZero() {
		return info.Started
	}
	if js, _ := filepath.Glob(filepath.Join(dir, "*.journal")); len(js) > 0 {
		sort.Strings(js)
		if t := firstEntryTime(js[0]); !t.IsZero() {
			return t
		}
	}
	t, _ := time.Parse("20060102T150405Z", run[:min(len(run), 16)])
	return t
}

// firstEntryTime is the time of a journal file's first entry (unverified:
// only for ordering).
func firstEntryTime(path string) time.Time {
	t, _ := firstEntry(path)
	return t
}

// firstEntry is the time and kind (the run's command) of a journal's
// first entry, unverified: for ordering and picking only.
func firstEntry(path string) (time.Time, string) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, ""
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadBytes('\n')
	var e struct {
		Time time.Time `json:"time"`
		Kind string    `json:"kind"`
	}
	json.Unmarshal(line, &e)
	return e.Time, e.Kind
}

// SortRuns orders run IDs newest first by RunStarted (then by ID).
func SortRuns(stateDir string, runs []string) {
	at := map[string]time.Time{}
	for _, r := range runs {
		at[r] = RunStarted(stateDir, r)
	}
	sort.SliceStable(runs, func(i, j int) bool {
		if !at[runs[i]].Equal(at[runs[j]]) {
			return at[runs[i]].After(at[runs[j]])
		}
		return runs[i] > runs[j]
	})
}

// CopyStarted is when the run of a host's journal copy started: its first
// entry's time (unverified: only for ordering).
func CopyStarted(c JournalCopy) time.Time {
	line, _, _ := bytes.Cut(c.Data, []byte("\n"))
	var e struct {
		Time time.Time `json:"time"`
	}
	json.Unmarshal(line, &e)
	return e.Time
}
