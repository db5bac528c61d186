package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions/incident"

	"github.com/holiday-ops/holiday/restore"
)

func newRestoreCmd() *cobra.Command {
	var f runFlags
	var run string
	var fromHost, fromRepo bool
	var salvage bool
	var acceptFindings string
	cmd := &cobra.Command{
		Use:   "restore -f PLAN",
		Short: "Put every host back exactly as it was before lockdown",
		Long: `restore reverts, per host and in reverse order, every step of the latest
lockdown run's journal that is not reverted yet — also a run that was
killed half-way. With --from-host it first fetches each host's own copy of
its journal (for a control node that lost its state, or another one).

When this control node holds no journal of the run (a second control node,
or one that lost its state), restore reads the run's journals from the
plan's repository, where lockdown saved them with the key that verifies
them: the plan and the repository password are all it needs. --from-repo
reads them from there even when this control node holds some.

Before anything on a host is reverted, restore checks it against the
integrity baseline the run took (holiday check, with a freshly uploaded
agent). A host with compromise indicators is not reopened: its services
stay stopped and its firewall stays; evidence is taken into the repository
(kind:evidence), and the summary names the report to write and the newest
backup older than the first indicator to roll back to. A host that cannot
be checked stays closed too. --accept-findings "WHY" reopens them anyway
and journals the reason. Exit code 5 when any host had indicators. A plan
without a repository has no baselines: its hosts are reopened, marked NOT
CHECKED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, conn, o, err := f.setup(cmd)
			if err != nil {
				return err
			}
			defer conn.Close()
			hosts := selectedHosts(p, f.hosts)
			if len(hosts) == 0 {
				return &usageError{errNoHosts}
			}
			o.Salvage = salvage
			if cmd.Flags().Changed("accept-findings") && strings.TrimSpace(acceptFindings) == "" {
				return &usageError{errors.New("--accept-findings needs the reason, in words: it is journaled and goes into the report")}
			}
			res, err := restore.Run(cmd.Context(), o, conn, restore.Options{
				StateDir: f.stateDir, Hosts: hosts, Run: run, FromHost: fromHost, FromRepo: fromRepo, Parallel: f.parallel,
				AcceptFindings: strings.TrimSpace(acceptFindings), Incident: incident.Options{Log: o.Log, Version: version},
			})
			if err != nil {
				return err
			}
			return printResult(cmd, &f, res, p, cmd.Context())
		},
	}
	f.add(cmd)
	f.addWait(cmd)
	cmd.Flags().StringVar(&run, "run", "", "the run to restore (default: the latest)")
	cmd.Flags().BoolVar(&fromHost, "from-host", false, "fetch each host's journal copy from the host first")
	cmd.Flags().BoolVar(&fromRepo, "from-repo", false, "read the run's journals and their key from the plan's repository first")
	cmd.Flags().StringVar(&acceptFindings, "accept-findings", "", "reopen hosts the integrity gate would keep closed (indicators found, or not checked), for this reason (journaled, and in the report)")
	cmd.Flags().BoolVar(&salvage, "salvage", false, "for a journal whose chain is broken: revert, newest first, every entry whose own MAC verifies (the damaged file is kept beside it, and the new journal records this)")
	return cmd
}
