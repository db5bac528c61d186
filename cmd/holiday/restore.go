package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/plans"
)

func newRestoreCmd() *cobra.Command {
	var f runFlags
	var run string
	var fromHost bool
	cmd := &cobra.Command{
		Use:   "restore -f PLAN",
		Short: "Put every host back exactly as it was before lockdown",
		Long: `restore reverts, per host and in reverse order, every step of the latest
lockdown run's journal that is not reverted yet — also a run that was
killed half-way. With --from-host it first fetches each host's own copy of
its journal (for a control node that lost its state, or another one).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			jobs, runID, err := journalJobs(cmd.Context(), p, conn, &f, run, fromHost)
			if err != nil {
				return err
			}
			o.RunID = runID
			res := actions.RevertJournals(cmd.Context(), o, jobs)
			return printResult(cmd, &f, res, p, cmd.Context())
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&run, "run", "", "the run to restore (default: the latest)")
	cmd.Flags().BoolVar(&fromHost, "from-host", false, "fetch each host's journal copy from the host first")
	return cmd
}

// journalJobs finds the run (latest unless named) and each selected
// host's journal of it, fetching the hosts' copies first with fromHost.
func journalJobs(ctx context.Context, p *plans.Plan, conn *actions.Connector, f *runFlags, run string, fromHost bool) ([]actions.RevertJob, string, error) {
	hosts := selectedHosts(p, f.hosts)
	if len(hosts) == 0 {
		return nil, "", &usageError{errNoHosts}
	}
	if fromHost {
		var err error
		if run, err = fetchHostJournals(ctx, hosts, conn, f.stateDir, run, max(1, f.parallel)); err != nil {
			return nil, "", err
		}
	} else if run == "" {
		names := make([]string, len(hosts))
		for i, h := range hosts {
			names[i] = h.Name
		}
		var err error
		if run, err = latestRun(f.stateDir, names); err != nil {
			return nil, "", err
		}
	}
	var jobs []actions.RevertJob
	for _, h := range hosts {
		h := h
		jobs = append(jobs, actions.RevertJob{
			Name: h.Name, Journal: actions.JournalPath(f.stateDir, run, h.Name),
			Connect: func(ctx context.Context) (*actions.Host, func(), error) { return conn.Connect(ctx, h) },
		})
	}
	return jobs, run, nil
}

// fetchHostJournals stores each host's copy of the run into stateDir and
// returns the run: the one named, else the latest any host holds. A host
// without a copy of that run was never reached by it (restore says so and
// leaves it alone): reverting an older run of its own again could undo
// changes made since. A host that cannot be reached keeps this control
// node's journal of the run, if there is one (lockdown may have powered
// it off, as planned).
func fetchHostJournals(ctx context.Context, hosts []*plans.Host, conn *actions.Connector, stateDir, run string, parallel int) (string, error) {
	var (
		mu          sync.Mutex
		copies      = map[string]actions.JournalCopy{}
		unreachable []string
		g           errgroup.Group
	)
	g.SetLimit(parallel)
	for _, h := range hosts {
		g.Go(func() error {
			ah, closeHost, err := conn.Connect(ctx, h)
			if err != nil {
				if _, lerr := latestRun(stateDir, []string{h.Name}); lerr == nil {
					mu.Lock()
					unreachable = append(unreachable, h.Name)
					mu.Unlock()
					return nil
				}
				return fmt.Errorf("%s: fetching its journal copy: %w", h.Name, err)
			}
			c, err := actions.HostJournal(ctx, ah, run)
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
	if run == "" {
		for _, c := range copies {
			if !c.None && c.Run > run {
				run = c.Run
			}
		}
		if run == "" {
			return "", errors.New("no host holds a journal copy: no lockdown reached them")
		}
	}
	for _, name := range unreachable {
		if _, err := os.Stat(actions.JournalPath(stateDir, run, name)); err != nil {
			return "", fmt.Errorf("%s: unreachable, and this control node has no journal of run %s for it", name, run)
		}
	}
	for name, c := range copies {
		if c.None || c.Run != run {
			continue // its latest is older: run never reached it
		}
		if err := actions.StoreHostJournal(stateDir, name, c); err != nil {
			return "", err
		}
	}
	return run, nil
}
