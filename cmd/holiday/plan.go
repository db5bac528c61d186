package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	var pf planFlags
	plan := &cobra.Command{
		Use:   "plan -f PLAN",
		Short: "Check a plan and show what lockdown would do",
		Long: `Connect to every host of the plan in parallel and report, per host: reachable,
host key, sudo, holiday's agent (uploaded or cached — the only thing changed
on a host), each service the plan stops and its current state, the firewall
backends and co-owners, whether this control node is inside management, the
live inbound flows lockdown would cut, and the pre-holiday audit (password
and root SSH logins, accounts without passwords, pending security updates,
world-writable web roots).

Under each host it lists what lockdown would do there, step by step in
lockdown's order, and what each step would change — observed on the host
now, read-only (e.g. "stop redis-server.service (active/running), disable
redis-server.service (enabled)"). Backups come first ("backups: NOT
TAKEN" with --without-backups or backup: none).

Above the hosts, one line each for the plan's repository and its copy_to,
read-only: reachable (opened with its password) or why not, and whether it
is immutable (S3 Object Lock) and until when; a retention that ends before
lockdown's pins, or differs from the plan's object_lock, is a warning.

Exit codes: 0 every host is fine (warnings may be listed), 1 the plan is
invalid, 2 some hosts failed or would be refused, or lockdown would stop
because the repository it backs up into cannot be opened.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pf.file == "" {
				return &usageError{errors.New("plan needs a plan file: holiday plan -f PLAN (or holiday plan validate FILE)")}
			}
			return runPlan(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), pf)
		},
	}
	plan.Flags().StringVarP(&pf.file, "file", "f", "", "the plan file")
	plan.Flags().BoolVar(&pf.json, "json", false, "print the reports as JSON (for scripts)")
	plan.Flags().IntVarP(&pf.parallel, "parallel", "p", 32, "hosts checked at once")
	plan.Flags().DurationVar(&pf.timeout, "host-timeout", 3*time.Minute, "bound on one host's whole check")
	plan.Flags().StringVar(&pf.agentBin, "agent-binary", "", "static holiday build to push as the agent (default: this executable)")
	plan.Flags().BoolVarP(&pf.verbose, "verbose", "v", false, "log each connection and agent step on stderr")
	plan.Flags().BoolVar(&pf.withoutBaseline, "without-baseline", false, "judge hosts as `lockdown --without-baseline` would (no integrity baseline: restore cannot check them)")
	plan.Flags().BoolVar(&pf.withoutBackups, "without-backups", false, "judge hosts as `lockdown --without-backups` would (backups NOT TAKEN)")
	var files, control []string
	var checkFiles bool
	validate := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Load, validate and lint plans without touching any host",
		Long: `Load each plan exactly as every other command does, validate and lint it,
and print every problem as FILE:LINE:COL: FIELD: message. Nothing is contacted
and no secret is read. Exits 1 if any plan has an error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			args = append(files, args...)
			if len(args) == 0 {
				return &usageError{errors.New("plan validate needs a plan file (holiday plan validate FILE...)")}
			}
			var ctl []netip.Addr
			for _, c := range control {
				a, err := netip.ParseAddr(c)
				if err != nil {
					return &usageError{fmt.Errorf("--control %s: not an address", c)}
				}
				ctl = append(ctl, a)
			}
			return validatePlans(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, plans.Options{CheckFiles: checkFiles}, ctl)
		},
	}
	validate.Flags().StringSliceVar(&control, "control", nil, "the control node's address as the hosts see it (repeatable): refuse a plan whose management leaves it out")
	validate.Flags().StringArrayVarP(&files, "file", "f", nil, "plan file (may be repeated; same as a FILE argument)")
	validate.Flags().BoolVar(&checkFiles, "check-files", false, "also check that the files the plan names (password_file, identity, …) exist")
	plan.AddCommand(validate)
	return plan
}

// validatePlans prints "FILE: ok (…)" for each good plan and each finding
// on its own line for the others.
func validatePlans(stdout, stderr io.Writer, files []string, opt plans.Options, control []netip.Addr) error {
	bad := 0
	for _, f := range files {
		p, err := plans.LoadWith(f, opt)
		var findings plans.Errors
		if err != nil && !errors.As(err, &findings) {
			fmt.Fprintf(stderr, "%s: %v\n", f, err)
			bad++
			continue
		}
		findings = append(findings, plans.Lint(p)...)
		findings = append(findings, plans.LintControl(p, control)...)
		findings.Sort()
		for _, e := range findings {
			fmt.Fprintln(stderr, e)
		}
		if findings.HasErrors() {
			bad++
			continue
		}
		warn := ""
		if n := len(findings); n > 0 {
			warn = fmt.Sprintf(", %d warning%s", n, plural(n))
		}
		fmt.Fprintf(stdout, "%s: ok (%d host%s, %d device%s%s)\n", f,
			len(p.Hosts()), plural(len(p.Hosts())), len(p.Devices), plural(len(p.Devices)), warn)
	}
	if bad > 0 {
		return exitcode.WithHint(exitcode.Usage,
			fmt.Errorf("%d of %d plan%s invalid", bad, len(files), plural(len(files))),
			"fix the lines above; each names the file, line, column and field")
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
