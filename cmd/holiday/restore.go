package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

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
	// runs[host] is the run each host's journal belongs to. From the
	// hosts' copies, each host has its own latest run: a host the crashed
	// run never reached still has its previous (already restored) one,
	// and reverting that again is a no-op.
	runs := map[string]string{}
	if fromHost {
		asked := run // each host's own latest run unless --run names one
		for _, h := range hosts {
			ah, closeHost, err := conn.Connect(ctx, h)
			if err != nil {
				// A host that lockdown powered off can't hand over its
				// copy: fall back to this control node's journal of it,
				// which says so (and how it comes back).
				if r, lerr := latestRun(f.stateDir, []string{h.Name}); lerr == nil {
					runs[h.Name] = r
					continue
				}
				return nil, "", fmt.Errorf("%s: fetching its journal copy: %w", h.Name, err)
			}
			r, err := actions.FetchHostJournal(ctx, ah, f.stateDir, asked)
			closeHost()
			if err != nil {
				return nil, "", fmt.Errorf("%s: fetching its journal copy: %w", h.Name, err)
			}
			runs[h.Name] = r
			if r > run {
				run = r
			}
		}
	} else {
		if run == "" {
			names := make([]string, len(hosts))
			for i, h := range hosts {
				names[i] = h.Name
			}
			var err error
			if run, err = latestRun(f.stateDir, names); err != nil {
				return nil, "", err
			}
		}
		for _, h := range hosts {
			runs[h.Name] = run
		}
	}
	var jobs []actions.RevertJob
	for _, h := range hosts {
		h := h
		jobs = append(jobs, actions.RevertJob{
			Name: h.Name, Journal: actions.JournalPath(f.stateDir, runs[h.Name], h.Name),
			Connect: func(ctx context.Context) (*actions.Host, func(), error) { return conn.Connect(ctx, h) },
		})
	}
	return jobs, run, nil
}
