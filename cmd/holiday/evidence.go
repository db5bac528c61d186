package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

func newEvidenceCmd() *cobra.Command {
	f := &incidentFlags{}
	var since string
	cmd := &cobra.Command{
		Use:   "evidence -f PLAN HOST",
		Short: "Save a host's live evidence before anything changes it (kind:evidence snapshot)",
		Long: `evidence uploads a fresh agent and takes, in order of volatility: processes
(executables of deleted, tmp and memfd processes copied out of /proc),
connections with their processes, the host's ps/ss against /proc, logged-in
users, last/lastb from wtmp/btmp, the auth log's brute-force summary,
promiscuous interfaces, files changed since --since (default: the newest
baseline's time), web-root files owned by the web server's user, exploit-
looking access-log lines with their top sources, and shell histories.

Everything is stored as one kind:evidence snapshot (evidence.tar) with a
SHA-256 manifest (MANIFEST.sha256, for sha256sum -c) and custody.json: who,
when, which agent build, each step's start and end, every item's hash as the
agent read it and as it arrived.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t time.Time
			if since != "" {
				var err error
				if t, err = time.Parse(time.RFC3339, since); err != nil {
					return &usageError{fmt.Errorf("--since %q: want a time like 2026-12-20T18:00:00Z", since)}
				}
			}
			p, hosts, r, release, err := f.open(cmd, args, repocmd.SharedLockAsync)
			if err != nil {
				return err
			}
			defer release()
			res := incident.Evidence(cmd.Context(), p, hosts[0], r, t, f.options())
			if err := writeResult(cmd.OutOrStdout(), f.json, res, func(w io.Writer) { incident.WriteEvidence(w, res) }); err != nil {
				return err
			}
			if res.Error != "" {
				return exitcode.With(exitcode.HostsFailed, fmt.Errorf("evidence of %s not stored: %s", res.Host, res.Error))
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&since, "since", "", "start of the window (RFC 3339; default: the host's newest baseline)")
	return cmd
}
