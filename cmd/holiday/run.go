package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// runFlags are the flags lockdown, restore and status share.
type runFlags struct {
	plan     string
	stateDir string
	keyFile  string
	hosts    []string
	parallel int
	json     bool
	verbose  bool
	timeout  time.Duration
	wait     time.Duration
	// withoutBaseline: lockdown --without-baseline (the summary says
	// restore cannot check the hosts).
	withoutBaseline bool
}

func (f *runFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.plan, "file", "f", "", "the plan file (required)")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", defaultStateDir(), "where runs and their journals live on this control node")
	cmd.Flags().StringVar(&f.keyFile, "journal-key", defaultKeyFile(), "the control node's journal key (created if missing)")
	cmd.Flags().StringSliceVar(&f.hosts, "host", nil, "only these hosts (repeatable)")
	cmd.Flags().IntVar(&f.parallel, "parallel", 32, "hosts at once")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the result as JSON")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log each connection and agent operation on stderr")
	cmd.Flags().DurationVar(&f.timeout, "revert-timeout", 5*time.Minute, "bound on reverting one host after a failure or Ctrl-C")
	cmd.MarkFlagRequired("file")
}

// addWait adds --wait to the commands that change hosts.
func (f *runFlags) addWait(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&f.wait, "wait", 0, "when another run holds a host, wait up to this long for it (default: refuse that host at once)")
}

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "holiday")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "holiday")
}

func defaultKeyFile() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "holiday", "journal.key")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "holiday", "journal.key")
}

// planError prints a plan's lint errors (lockdown refuses such a plan
// before touching any host) and gives them the usage exit code.
func planError(w io.Writer, err error) error {
	var pe *actions.PlanError
	if !errors.As(err, &pe) {
		return err
	}
	for _, e := range pe.Errors {
		fmt.Fprintln(w, e)
	}
	return exitcode.WithHint(exitcode.Usage, err, "fix the plan; `holiday plan validate` checks it without touching hosts")
}

// setup loads the plan and key and builds the runner's options.
func (f *runFlags) setup(cmd *cobra.Command) (*plans.Plan, *actions.Connector, actions.Options, error) {
	p, err := plans.Load(f.plan)
	if err != nil {
		return nil, nil, actions.Options{}, exitcode.With(exitcode.Usage, err)
	}
	for _, h := range f.hosts {
		if p.Host(h) == nil {
			return nil, nil, actions.Options{}, &usageError{fmt.Errorf("--host %s: the plan has no such host", h)}
		}
	}
	key, err := journal.LoadOrCreateKey(f.keyFile)
	if err != nil {
		return nil, nil, actions.Options{}, err
	}
	// the agent's SHA-256 (this executable's) from the last run, while
	// the executable is the same file
	agentctl.SetSelfCache(filepath.Join(f.stateDir, "agent-sha256"))
	log := slog.New(slog.DiscardHandler)
	if f.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	o := actions.Options{StateDir: f.stateDir, Key: key, Parallel: f.parallel, RevertTimeout: f.timeout, Log: log, PlanFile: f.plan, Plan: p, Wait: f.wait}
	o.Journals = actions.PlanJournals(p, version)
	if !f.json {
		o.Progress = progressPrinter(cmd.ErrOrStderr())
	}
	return p, actions.NewConnector(p, log, version), o, nil
}

// progressPrinter prints one line per event, for the operator watching.
func progressPrinter(w io.Writer) func(actions.Progress) {
	var mu sync.Mutex
	start := time.Now()
	return func(p actions.Progress) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf("[%6.1fs] %-10s %s", time.Since(start).Seconds(), p.Host, p.What)
		if p.Step != "" {
			line += " " + p.Step
		}
		if p.Err != nil {
			line += ": " + p.Err.Error()
		}
		fmt.Fprintln(w, line)
	}
}

// saidByStep reports that the host's error repeats a step's error the
// summary already printed.
func saidByStep(h actions.HostResult) bool {
	for _, s := range h.Steps {
		if s.Error != "" && strings.Contains(h.Error, s.Error) {
			return true
		}
	}
	return false
}

// printResult prints the summary table (or JSON) and returns the error
// that carries the exit code.
func printResult(cmd *cobra.Command, f *runFlags, res actions.RunResult, p *plans.Plan, ctx context.Context) error {
	w := cmd.OutOrStdout()
	if f.json {
		if err := writeJSON(w, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "%s run %s (%.1fs)\n", res.Command, res.Run, res.Elapsed.Seconds())
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tSTATUS\tSTEPS\tTIME\tCHAIN HEAD")
		for _, h := range res.Hosts {
			head := h.Head
			if len(head) > 16 {
				head = head[:16]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fs\t%s\n", h.Host, h.Status, stepSummary(h.Steps), h.Elapsed.Seconds(), head)
		}
		tw.Flush()
		for _, h := range res.Hosts {
			if res.Command == "lockdown" {
				printBaseline(w, h, p, f.withoutBaseline)
			}
			if res.Command == "lockdown" || res.Command == "backup" {
				printBackups(w, h)
			}
			for _, s := range h.Steps {
				if s.Error != "" {
					fmt.Fprintf(w, "%s: %s %s: %s\n", h.Host, s.ID, s.Status, s.Error)
				}
			}
			if h.Status != actions.HostPoweredOff && h.Status != actions.HostKeptClosed && h.Error != "" && !saidByStep(h) {
				fmt.Fprintf(w, "%s: %s\n", h.Host, h.Error)
			}
			if h.Note != "" {
				fmt.Fprintf(w, "%s: %s\n", h.Host, h.Note)
			}
			printGate(w, h, f.plan, res.Run)
			if h.Head != "" && res.Command != "status" {
				fmt.Fprintf(w, "%s: journal %s chain head %s\n", h.Host, h.Journal, h.Head)
			}
			if h.PowerOn != nil && res.Command == "lockdown" && h.Status == actions.HostDone {
				fmt.Fprintf(w, "%s: powered off last; it comes back %s\n", h.Host, h.PowerOn.HowBack())
			}
		}
		var off []actions.HostResult
		for _, h := range res.Hosts {
			if h.Status == actions.HostPoweredOff {
				off = append(off, h)
			}
		}
		if len(off) > 0 {
			fmt.Fprintf(w, "\nPowered off by holiday lockdown, as the plan says (not failures). Switch these on, then run %s again:\n", res.Command)
			for _, h := range off {
				fmt.Fprintf(w, "  %s: %s\n", h.Host, h.PowerOn.HowBack())
			}
		}
	}
	printOffsite(cmd, f, res)
	return exitFor(ctx, res)
}

func stepSummary(steps []actions.StepResult) string {
	count := map[string]int{}
	var order []string
	for _, s := range steps {
		if count[s.Status] == 0 {
			order = append(order, s.Status)
		}
		count[s.Status]++
	}
	if len(order) == 0 {
		return "-"
	}
	var parts []string
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%d %s", count[st], st))
	}
	return strings.Join(parts, ", ")
}

func exitFor(ctx context.Context, res actions.RunResult) error {
	if ctx.Err() != nil {
		return exitcode.With(exitcode.Interrupted, fmt.Errorf("%s interrupted: %w", res.Command, context.Canceled))
	}
	if err := gateError(res); err != nil {
		return err
	}
	var failed, reverted, drift []string
	for _, h := range res.Hosts {
		switch h.Status {
		case actions.HostDone, actions.HostPoweredOff:
			// powered-off: lockdown switched it off as planned; the
			// summary lists how to switch it on. Not a failure.
		case actions.HostReverted:
			reverted = append(reverted, h.Host)
		case actions.HostDrift:
			drift = append(drift, h.Host)
		default:
			failed = append(failed, h.Host)
		}
	}
	switch {
	case len(failed) > 0:
		return exitcode.With(exitcode.HostsFailed, fmt.Errorf("%s failed on %s", res.Command, strings.Join(append(failed, reverted...), ", ")))
	case len(reverted) > 0:
		return exitcode.With(exitcode.Reverted, fmt.Errorf("%s aborted and reverted on %s", res.Command, strings.Join(reverted, ", ")))
	case len(drift) > 0:
		return exitcode.With(exitcode.Drift, fmt.Errorf("drift on %s: lockdown no longer holds there", strings.Join(drift, ", ")))
	}
	return nil
}

var errNoHosts = errors.New("the plan selects no hosts")

func selectedHosts(p *plans.Plan, only []string) []*plans.Host {
	var hs []*plans.Host
	for _, h := range p.Hosts() {
		if len(only) == 0 || contains(only, h.Name) {
			hs = append(hs, h)
		}
	}
	return hs
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
