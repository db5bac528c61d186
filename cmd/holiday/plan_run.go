package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/holiday-ops/holiday/actions/planview"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/plans"
)

// planFlags are `holiday plan`'s own flags.
type planFlags struct {
	file     string
	json     bool
	parallel int
	timeout  time.Duration
	agentBin string
	verbose  bool
	// withoutBackups: the verdict of `lockdown --without-backups`.
	withoutBackups bool
	// withoutBaseline: the verdict of `lockdown --without-baseline`.
	withoutBaseline bool
}

// runPlan is `holiday plan -f PLAN`: load and lint the plan, check every
// host and observe what lockdown would change there (planview), print a
// table or JSON; exit 0 when every host is ready, 2 when some are not.
func runPlan(ctx context.Context, stdout, stderr io.Writer, fl planFlags) error {
	p, err := plans.Load(fl.file)
	var findings plans.Errors
	if err != nil && !errors.As(err, &findings) {
		return exitcode.With(exitcode.Usage, err)
	}
	findings = append(findings, plans.Lint(p)...)
	findings.Sort()
	for _, e := range findings {
		fmt.Fprintln(stderr, e)
	}
	if findings.HasErrors() {
		return exitcode.WithHint(exitcode.Usage, fmt.Errorf("%s: plan invalid", fl.file),
			"fix the lines above (holiday plan validate shows the same)")
	}

	level := slog.LevelWarn
	if fl.verbose {
		level = slog.LevelDebug
	}
	prog := preflight.NewProgress(stderr, len(p.Hosts()))
	out, err := planview.Run(ctx, fl.file, p, planview.Options{
		Parallel: fl.parallel, HostTimeout: fl.timeout, AgentBinary: fl.agentBin, Version: version,
		WithoutBackups: fl.withoutBackups, WithoutBaseline: fl.withoutBaseline,
		Log:     slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		Started: prog.Started, Done: prog.Done,
	})
	prog.Finish()
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return exitcode.With(exitcode.Usage, err)
	}

	if fl.json {
		err = out.WriteJSON(stdout)
	} else {
		err = out.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if out.Blocked() {
		return exitcode.WithHint(exitcode.HostsFailed, fmt.Errorf("lockdown would stop before any host: the plan's repository cannot be opened"),
			"the repository line above says why (or lock down with --without-backups, and --without-baseline when it keeps baselines)")
	}
	if bad := out.NotReady(); bad > 0 {
		return exitcode.WithHint(exitcode.HostsFailed,
			fmt.Errorf("%d of %d host%s not ready for lockdown", bad, len(out.Hosts), plural(len(out.Hosts))),
			"each host's line above says why")
	}
	return nil
}
