package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
)

// incidentFlags are shared by check, baseline and evidence.
type incidentFlags struct {
	devices  devicesFlags // -f, --repo, --password-file: the plan's repository
	json     bool
	verbose  bool
	parallel int
}

func (f *incidentFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.devices.plan, "file", "f", "", "the plan (its hosts, ssh settings and repository)")
	fl.StringVarP(&f.devices.env.Repo, "repo", "r", "", "repository (default: the plan's)")
	fl.StringVar(&f.devices.env.PasswordFile, "password-file", "", "file holding the repository password (default: the plan's)")
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list churn too, and log connections on stderr")
	fl.IntVar(&f.parallel, "parallel", 8, "hosts at once")
	cmd.MarkFlagRequired("file")
}

// open loads the plan, selects hosts and opens its repository with the
// index loaded.
func (f *incidentFlags) open(cmd *cobra.Command, names []string, lock string) (*plans.Plan, []*plans.Host, *repo.Repository, func(), error) {
	p, e, err := f.devices.load(cmd, true)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if e.Repo == "" {
		return nil, nil, nil, nil, exitcode.WithHint(exitcode.Usage, incident.NeedRepository(p), "add repository: to the plan, or pass --repo")
	}
	for _, n := range names {
		if p.Host(n) == nil {
			return nil, nil, nil, nil, &usageError{fmt.Errorf("%s: the plan has no such host", n)}
		}
	}
	hosts := selectedHosts(p, names)
	if len(hosts) == 0 {
		return nil, nil, nil, nil, &usageError{errNoHosts}
	}
	e.Quiet = true
	r, release, err := e.Open(cmd.Context(), lock)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if err := r.LoadIndex(cmd.Context()); err != nil {
		release()
		return nil, nil, nil, nil, err
	}
	return p, hosts, r, release, nil
}

func (f *incidentFlags) options() incident.Options {
	log := slog.New(slog.DiscardHandler)
	if f.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return incident.Options{Log: log, Version: version, Parallel: f.parallel,
		Store: incident.StoreOptions{ProgramVersion: "holiday " + version}}
}

func newCheckCmd() *cobra.Command {
	f := &incidentFlags{}
	cmd := &cobra.Command{
		Use:   "check -f PLAN [HOST...]",
		Short: "Compare hosts with their baseline: compromise indicators, drift, churn",
		Long: `check uploads a fresh agent to each host (never one left there before),
collects the same state as the baseline (accounts, keys, persistence, system
binaries, SUID files, listeners, modules, logs, processes; the host's own ps
and ss are compared with /proc) and compares it with the host's newest
kind:baseline snapshot in the plan's repository. Every difference is an
indicator, drift (a package upgrade, a changed config) or churn (logs that
grew or rotated). It runs on the host's own kernel, so it says "no
indicators found", never "clean".

Exit codes: 0 no findings, 4 drift only, 5 compromise indicators, 2 a host
could not be checked.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, hosts, r, release, err := f.open(cmd, args, repocmd.NoLock)
			if err != nil {
				return err
			}
			defer release()
			res := incident.Check(cmd.Context(), p, hosts, r, f.options())
			if err := writeResult(cmd.OutOrStdout(), f.json, res, func(w io.Writer) { incident.WriteCheck(w, res, f.verbose) }); err != nil {
				return err
			}
			return incident.ExitError(res)
		},
	}
	f.add(cmd)
	return cmd
}

func newBaselineCmd() *cobra.Command {
	f := &incidentFlags{}
	cmd := &cobra.Command{
		Use:   "baseline -f PLAN [HOST...]",
		Short: "Take an integrity baseline of hosts now (lockdown takes one itself)",
		Long: `baseline collects each host's integrity state through a fresh agent and
stores it in the plan's repository as a kind:baseline snapshot (hostname =
the plan's host name). holiday check compares with the newest one. Take it
only of a host you trust: the baseline is what "unchanged" means.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, hosts, r, release, err := f.open(cmd, args, repocmd.SharedLockAsync)
			if err != nil {
				return err
			}
			defer release()
			res := incident.Baselines(cmd.Context(), p, hosts, r, f.options())
			if err := writeResult(cmd.OutOrStdout(), f.json, res, func(w io.Writer) { incident.WriteBaselines(w, res) }); err != nil {
				return err
			}
			var failed []string
			for _, b := range res {
				if b.Error != "" {
					failed = append(failed, b.Host)
				}
			}
			if len(failed) > 0 {
				return exitcode.With(exitcode.HostsFailed, fmt.Errorf("no baseline taken of %s", strings.Join(failed, ", ")))
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
