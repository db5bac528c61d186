package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	_ "github.com/holiday-ops/holiday/actions/agentops" // registers the actions' host-side operations
	"github.com/holiday-ops/holiday/internal/agent"
	_ "github.com/holiday-ops/holiday/internal/facts" // registers the facts operation
)

// newAgentCmd is the host side: the control node uploads this same binary
// and runs `holiday agent` over SSH, one session per operation. Hidden: it
// is not for people.
func newAgentCmd() *cobra.Command {
	var sshConnection, logLevel string
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Run as holiday's agent on a host (started by holiday over SSH)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if st, err := os.Stdin.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				return &usageError{errors.New("holiday agent speaks a binary protocol on stdin; holiday starts it over SSH, it is not for interactive use")}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &usageError{err}
			}
			log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return agent.Serve(cmd.Context(), os.Stdin, os.Stdout, agent.Config{
				Log: log, SSHConnection: sshConnection, Version: version,
			})
		},
	}
	cmd.Flags().StringVar(&sshConnection, "ssh-connection", "", "the login shell's $SSH_CONNECTION, read before sudo")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	return cmd
}
