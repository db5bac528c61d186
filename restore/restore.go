package restore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// Options says which hosts and which run.
type Options struct {
	StateDir string        // the control node's runs and journals
	Hosts    []*plans.Host // the hosts to restore or check
	Run      string        // the run; "" for the latest
	// Command picks the latest run of this command only ("isolate" for
	// `holiday isolate --undo`); "" for any.
	Command string
	// FromHost fetches each host's own copy of its journal first: for a
	// control node that lost its state, or another one.
	FromHost bool
	// FromRepo reads the run's journals, and the key that verifies them,
	// from the plan's repository (actions.Options.Journals) first: for a
	// second control node holding only the plan and the repository
	// password. Without it the repository is read when this control node
	// holds no journal of the run (or of any run of these hosts).
	FromRepo bool
	Parallel int // hosts at once while fetching copies
	// AcceptFindings reopens the hosts the integrity gate would keep
	// closed (indicators found, or not checked); the reason is journaled
	// with each.
	AcceptFindings string
	// Incident shapes the gate's check and evidence (version, log; the
	// agent binaries in tests).
	Incident incident.Options
}

// Run checks each host the run left closed (the integrity gate, gate.go)
// and reverts the run's journal on every host the gate reopens
// (actions.RevertJournals): the way back after the break. A host it
// keeps closed is left as it is, its verdict journaled and in the result.
// ao.RunID is set to the run restored.
func Run(ctx context.Context, ao actions.Options, conn *actions.Connector, o Options) (actions.RunResult, error) {
	jobs, err := prepare(ctx, &ao, conn, o)
	if err != nil {
		return actions.RunResult{}, err
	}
	gate(ctx, ao, conn.Plan, o, jobs)
	return actions.RevertJournals(ctx, ao, jobs), nil
}

// Status runs every journaled step's Verify on its host
// (actions.VerifyJournals): does the lockdown still hold?
func Status(ctx context.Context, ao actions.Options, conn *actions.Connector, o Options) (actions.RunResult, error) {
	o.FromHost = false
	jobs, err := prepare(ctx, &ao, conn, o)
	if err != nil {
		return actions.RunResult{}, err
	}
	return actions.VerifyJournals(ctx, ao, jobs), nil
}

// Jobs finds the run (o.Run, else the latest) and each host's journal of
// it, fetching the hosts' copies first with o.FromHost. A host the run
// has no journal for gets a job all the same: actions says the run never
// reached it.
func Jobs(ctx context.Context, conn *actions.Connector, o Options) ([]actions.RevertJob, string, error) {
	run := o.Run
	if o.FromHost {
		var err error
		if run, err = fetchHostJournals(ctx, conn, o); err != nil {
			return nil, "", err
		}
	} else if run == "" {
		names := make([]string, len(o.Hosts))
		for i, h := range o.Hosts {
			names[i] = h.Name
		}
		var err error
		if run, err = latestRun(o.StateDir, names, o.Command); err != nil {
			return nil, "", err
		}
	}
	var jobs []actions.RevertJob
	for _, h := range o.Hosts {
		var only string
		if o.Command == "isolate" {
			only = actions.KindFirewall + ":isolate" // the isolation, not the lockdown under it
		}
		jobs = append(jobs, actions.RevertJob{
			Name: h.Name, Journal: actions.JournalPath(o.StateDir, run, h.Name), Only: only,
			Connect: func(ctx context.Context) (*actions.Host, func(), error) { return conn.Connect(ctx, h) },
		})
	}
	return jobs, run, nil
}

// latestRun returns the newest run in stateDir that has a journal for at
// least one of hosts, by start time (not by name: two runs in one second
// have IDs that differ only in their random suffix).
func latestRun(stateDir string, hosts []string, command string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(stateDir, "runs"))
	if err != nil {
		return "", fmt.Errorf("no runs in %s: %w", stateDir, err)
	}
	var runs []string
	for _, e := range ents {
		if e.IsDir() {
			runs = append(runs, e.Name())
		}
	}
	actions.SortRuns(stateDir, runs) // newest first, by start time

	if command == "isolate" {
		// isolate --undo: the newest run holding an isolation not undone
		// (an isolate run, or the run whose restore isolated a host its
		// gate kept closed), else the newest isolate run.
		for _, r := range runs {
			if c := runCommand(stateDir, r); (c == "isolate" || c == "lockdown") && isolationPending(stateDir, r, hosts) {
				return r, nil
			}
		}
	}
	for _, r := range runs {
		// An isolate run whose isolation is undone everywhere is no
		// longer what plain restore should pick: the run under it is.
		if c := runCommand(stateDir, r); command == "" && c == "isolate" && !isolationPending(stateDir, r, hosts) {
			continue
		}
		// A rollback run is undone with the snapshot it took first, and a
		// backup run changes nothing: the latest run means the latest other one.
		if c := runCommand(stateDir, r); command != "" && c != command || command == "" && !actions.Restorable(c) {
			continue
		}
		for _, h := range hosts {
			if _, err := os.Stat(actions.JournalPath(stateDir, r, h)); err == nil {
				return r, nil
			}
		}
	}
	return "", fmt.Errorf("no run in %s has a journal for these hosts", filepath.Join(stateDir, "runs"))
}

// fetchHostJournals stores each host's copy of the run into the state
// dir and returns the run: the one named, else the latest any host
// holds. A host without a copy of that run was never reached by it
// (restore says so and leaves it alone): reverting an older run of its
// own again could undo changes made since. A host that cannot be reached
// keeps this control node's journal of the run, if there is one
// (lockdown may have powered it off, as planned).
func fetchHostJournals(ctx context.Context, conn *actions.Connector, o Options) (string, error) {
	var (
		mu          sync.Mutex
		copies      = map[string]actions.JournalCopy{}
		unreachable []string
		g           errgroup.Group
	)
	g.SetLimit(max(1, o.Parallel))
	for _, h := range o.Hosts {
		g.Go(func() error {
			ah, closeHost, err := conn.Connect(ctx, h)
			if err != nil {
				if _, lerr := latestRun(o.StateDir, []string{h.Name}, ""); lerr == nil {
					mu.Lock()
					unreachable = append(unreachable, h.Name)
					mu.Unlock()
					return nil
				}
				return fmt.Errorf("%s: fetching its journal copy: %w", h.Name, err)
			}
			c, err := actions.HostJournal(ctx, ah, o.Run)
			closeHost()
			if err != nil {
				return fmt.Errorf("%s: fetching its journal copy: %w", h.Name, err)
			}
			mu.Lock()
			copies[h.Name] = c
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	run := o.Run
	if run == "" {
		for _, c := range copies {
			if !c.None && (run == "" || copyNewer(c, copies, run)) {
				run = c.Run
			}
		}
		if run == "" {
			return "", errors.New("no host holds a journal copy: no lockdown reached them")
		}
	}
	for _, name := range unreachable {
		if _, err := os.Stat(actions.JournalPath(o.StateDir, run, name)); err != nil {
			return "", fmt.Errorf("%s: unreachable, and this control node has no journal of run %s for it", name, run)
		}
	}
	for name, c := range copies {
		if c.None || c.Run != run {
			continue // its latest is older: run never reached it
		}
		if err := actions.StoreHostJournal(o.StateDir, name, c); err != nil {
			return "", err
		}
	}
	return run, nil
}

// copyNewer reports whether copy c started after the run named run (as
// some host's copy holds it): by the first entry's time, then by name.
func copyNewer(c actions.JournalCopy, copies map[string]actions.JournalCopy, run string) bool {
	var other actions.JournalCopy
	for _, o := range copies {
		if o.Run == run {
			other = o
			break
		}
	}
	tc, to := actions.CopyStarted(c), actions.CopyStarted(other)
	if !tc.Equal(to) {
		return tc.After(to)
	}
	return c.Run > run
}

// runCommand is the command run.json records for the run: "lockdown"
// for a run recorded before run.json held one.
func runCommand(stateDir, run string) string {
	var info actions.RunInfo
	b, err := os.ReadFile(filepath.Join(actions.RunDir(stateDir, run), "run.json"))
	if err != nil || json.Unmarshal(b, &info) != nil {
		return ""
	}
	if info.Command == "" {
		return "lockdown"
	}
	return info.Command
}

// isolationPending reports whether a host's journal of run holds a
// firewall:isolate step applied and not reverted. It reads the entries
// without verifying them: it only chooses the run, and reverting it
// verifies the journal as any restore does.
func isolationPending(stateDir, run string, hosts []string) bool {
	id := actions.KindFirewall + ":isolate"
	for _, h := range hosts {
		b, err := os.ReadFile(actions.JournalPath(stateDir, run, h))
		if err != nil {
			continue
		}
		pending := false
		for _, line := range bytes.Split(b, []byte("\n")) {
			var e journal.Entry
			if json.Unmarshal(line, &e) != nil || e.Step != id {
				continue
			}
			switch e.Phase {
			case journal.Result:
				pending = e.Error == ""
			case journal.RevertResult:
				pending = pending && e.Error != ""
			}
		}
		if pending {
			return true
		}
	}
	return false
}
