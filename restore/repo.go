package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/atomicfile"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/journal"
)

// prepare finds the run and each host's journal of it, and sets ao.RunID
// and ao.Key: the key the run's journals verify with — this control
// node's own, or, for a run another control node made, the key stored
// with the run in the plan's repository. The journals come from this
// control node's state, the hosts' copies (o.FromHost) or the repository
// (o.FromRepo, or when this control node holds none).
func prepare(ctx context.Context, ao *actions.Options, conn *actions.Connector, o Options) ([]actions.RevertJob, error) {
	if o.FromRepo && ao.Journals == nil {
		return nil, exitcode.WithHint(exitcode.Usage, errors.New("--from-repo: the plan names no repository"), "add repository: (url and password_file or password_env) to the plan")
	}
	fromRepo := o.FromRepo || (!o.FromHost && ao.Journals != nil && !holdsRun(o))
	var repoKey journal.Key
	if fromRepo {
		rr, err := fetchRepoJournals(ctx, ao, o)
		if err != nil {
			return nil, err
		}
		o.Run, repoKey = rr.Run, rr.Key
	}
	jobs, run, err := Jobs(ctx, conn, o)
	if err != nil {
		return nil, err
	}
	ao.RunID = run
	if repoKey != nil {
		ao.Key = repoKey
		return jobs, nil
	}
	var datas [][]byte
	for _, j := range jobs {
		if b, err := os.ReadFile(j.Journal); err == nil {
			datas = append(datas, b)
		}
	}
	key, err := actions.RunKey(ctx, ao.Journals, ao.Key, run, datas)
	if err != nil && !ao.Salvage { // --salvage works on what the own key verifies
		return nil, err
	}
	if err == nil {
		ao.Key = key
	}
	return jobs, nil
}

// holdsRun reports whether this control node holds a journal of the run
// asked for (of any run of these hosts, when none was named).
func holdsRun(o Options) bool {
	if o.Run == "" {
		_, err := latestRun(o.StateDir, hostNames(o), o.Command)
		return err == nil
	}
	for _, h := range o.Hosts {
		if _, err := os.Stat(actions.JournalPath(o.StateDir, o.Run, h.Name)); err == nil {
			return true
		}
	}
	return false
}

func hostNames(o Options) []string {
	names := make([]string, len(o.Hosts))
	for i, h := range o.Hosts {
		names[i] = h.Name
	}
	return names
}

// fetchRepoJournals reads the run (o.Run, else the newest of these hosts)
// from the plan's repository, verified, and stores its journals in the
// state dir, with a run.json naming their chain heads so that a journal
// cut short here later shows. A journal this control node already holds
// is kept when it is the repository's or extends it; any other difference
// is an error (which copy is right is the operator's call).
func fetchRepoJournals(ctx context.Context, ao *actions.Options, o Options) (*actions.RepoRun, error) {
	progress(ao, actions.Progress{What: fmt.Sprintf("reading the journals of %s from the repository %s", runOrLatest(o.Run), ao.Journals.Location())})
	rr, err := ao.Journals.LoadRun(ctx, o.Run, hostNames(o), o.Command)
	if err != nil {
		return nil, err
	}
	info := actions.RunInfo{Run: rr.Run, Command: rr.Command, Heads: map[string]string{}}
	for host, data := range rr.Journals {
		path := actions.JournalPath(o.StateDir, rr.Run, host)
		local, err := os.ReadFile(path)
		switch {
		case err == nil && bytes.HasPrefix(local, data):
			// the same, or this control node went on from it
		case err == nil:
			return nil, fmt.Errorf("%s: this control node's journal of run %s differs from the repository's (snapshot %s); not replacing it: restore with --state-dir NEW-DIR to use the repository's, or without --from-repo to use this one",
				host, rr.Run, rr.Snapshots[host].ID.Str())
		case errors.Is(err, os.ErrNotExist):
			if err := actions.StoreHostJournal(o.StateDir, host, actions.JournalCopy{Run: rr.Run, Host: host, Data: data}); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
		j, err := journal.Read(bytes.NewReader(data), rr.Key)
		if err != nil { // LoadRun verified it; it cannot fail now
			return nil, err
		}
		info.Hosts = append(info.Hosts, host)
		info.Heads[host] = j.Head
		if t := j.Entries[0].Time; info.Started.IsZero() || t.Before(info.Started) {
			info.Started = t
		}
		progress(ao, actions.Progress{Host: host, What: fmt.Sprintf("journal of run %s read from the repository (snapshot %s, saved %s)",
			rr.Run, rr.Snapshots[host].ID.Str(), rr.Snapshots[host].Time.UTC().Format(time.RFC3339))})
	}
	runJSON := filepath.Join(actions.RunDir(o.StateDir, rr.Run), "run.json")
	if _, err := os.Stat(runJSON); errors.Is(err, os.ErrNotExist) {
		b, err := json.MarshalIndent(info, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(runJSON, append(b, '\n'), 0o600); err != nil {
			return nil, err
		}
	}
	return rr, nil
}

func runOrLatest(run string) string {
	if run == "" {
		return "the newest run"
	}
	return "run " + run
}

func progress(ao *actions.Options, p actions.Progress) {
	if ao.Progress != nil {
		ao.Progress(p)
	}
}
