package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
	_ "github.com/holiday-ops/holiday/actions/agentops" // registers the actions' host-side operations
	"github.com/holiday-ops/holiday/internal/agent"
	_ "github.com/holiday-ops/holiday/internal/facts"     // registers the facts operation
	_ "github.com/holiday-ops/holiday/internal/integrity" // registers the integrity operations
	"github.com/holiday-ops/holiday/restore"
)

func init() {
	for _, h := range restore.AgentHandlers() {
		agent.Register(h) // rollback's host side
	}
}

// newAgentCmd is the host side: the control node uploads this same binary
// and runs `holiday agent` over SSH, one session per operation. Hidden: it
// is not for people.
func newAgentCmd() *cobra.Command {
	var sshConnection, logLevel, deadman, revert, boot string
	cmd := &cobra.Command{
		Use:    "agent",
		Short:  "Run as holiday's agent on a host (started by holiday over SSH)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The firewall's dead-man and console undo: Revert from what
			// the host kept, no control node (actions/firewall_host.go).
			if boot != "" {
				return actions.FirewallBoot(cmd.Context(), boot, os.Stderr)
			}
			if deadman != "" || revert != "" {
				dir := deadman + revert
				return actions.FirewallDeadman(cmd.Context(), dir, deadman != "", os.Stderr)
			}
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
	cmd.Flags().StringVar(&deadman, "firewall-deadman", "", "run the lockdown firewall's dead-man: revert from DIR unless disarmed")
	cmd.Flags().StringVar(&revert, "firewall-revert", "", "revert the lockdown firewall from DIR (the console undo)")
	cmd.Flags().StringVar(&boot, "firewall-boot", "", "re-apply the lockdown firewall from DIR at boot (the boot-time unit)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	return cmd
}
