package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/atomicfile"
)

// HostJournalDir is where the agent keeps each run's journal copy on the
// host, root-only, so the break can be undone from another control node.
var HostJournalDir = "/var/lib/holiday/journal"

func jsonUnmarshal(p json.RawMessage, v any) error {
	if len(p) == 0 {
		return errors.New("no arguments")
	}
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("decoding arguments: %w", err)
	}
	return nil
}

// JournalCopy is a journal file as it travels between control node and
// host.
type JournalCopy struct {
	Run  string `json:"run"`
	Host string `json:"host"`
	Data []byte `json:"data"`
	// None is the answer when the host holds no copy of the run asked
	// for (or of any run, when none was named): no run reached it.
	None bool `json:"none,omitempty"`
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func journalPut(ctx context.Context, op *agent.Op) (any, error) {
	var c JournalCopy
	if err := jsonUnmarshal(op.Args, &c); err != nil {
		return nil, err
	}
	dst, err := journalStore(c)
	if err != nil {
		return nil, err
	}
	return map[string]string{"path": dst}, nil
}

// journalStore writes a journal copy on the host atomically (a crash
// leaves the previous copy or this one, durable once it returns) and
// returns its path.
func journalStore(c JournalCopy) (string, error) {
	if !safeName.MatchString(c.Run) || !safeName.MatchString(c.Host) {
		return "", fmt.Errorf("bad run or host name %q/%q", c.Run, c.Host)
	}
	dir := filepath.Join(HostJournalDir, c.Run)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	os.Chmod(HostJournalDir, 0o700)
	if errors.Is(statErr, fs.ErrNotExist) {
		// the run's directory is new: its name must survive a crash too
		if err := atomicfile.SyncDir(HostJournalDir); err != nil {
			return "", err
		}
	}
	dst := filepath.Join(dir, c.Host+".journal")
	if err := atomicfile.Write(dst, c.Data, 0o600); err != nil {
		return "", err
	}
	return dst, nil
}

// journalGet returns the host's copy of a run's journal; with Run empty,
// the latest run's (run IDs sort by time).
func journalGet(ctx context.Context, op *agent.Op) (any, error) {
	var c JournalCopy
	if err := jsonUnmarshal(op.Args, &c); err != nil {
		return nil, err
	}
	if c.Run == "" {
		ents, err := os.ReadDir(HostJournalDir)
		if errors.Is(err, fs.ErrNotExist) {
			return JournalCopy{Host: c.Host, None: true}, nil
		}
		if err != nil {
			return nil, err
		}
		var runs []string
		for _, e := range ents {
			if e.IsDir() && safeName.MatchString(e.Name()) {
				// A rollback run is undone by its pre-rollback snapshot, not
				// by restore: the latest run means the latest other one.
				p := filepath.Join(HostJournalDir, e.Name(), c.Host+".journal")
				if _, kind := firstEntry(p); Restorable(kind) {
					runs = append(runs, e.Name())
				}
			}
		}
		if len(runs) == 0 {
			return JournalCopy{Host: c.Host, None: true}, nil
		}
		// Newest by the first entry's time, not by name (IDs have
		// one-second resolution).
		sort.SliceStable(runs, func(i, j int) bool {
			ti := firstEntryTime(filepath.Join(HostJournalDir, runs[i], c.Host+".journal"))
			tj := firstEntryTime(filepath.Join(HostJournalDir, runs[j], c.Host+".journal"))
			if !ti.Equal(tj) {
				return ti.Before(tj)
			}
			return runs[i] < runs[j]
		})
		c.Run = runs[len(runs)-1]
	}
	if !safeName.MatchString(c.Run) || !safeName.MatchString(c.Host) {
		return nil, fmt.Errorf("bad run or host name %q/%q", c.Run, c.Host)
	}
	b, err := os.ReadFile(filepath.Join(HostJournalDir, c.Run, c.Host+".journal"))
	if errors.Is(err, fs.ErrNotExist) {
		return JournalCopy{Run: c.Run, Host: c.Host, None: true}, nil
	}
	if err != nil {
		return nil, err
	}
	c.Data = b
	return c, nil
}
