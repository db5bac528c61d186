package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
	"github.com/spf13/cobra"
)

func newPlanCmd() *cobra.Command {
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Check a plan and show what lockdown would do",
	}
	var files []string
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
			return validatePlans(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, plans.Options{CheckFiles: checkFiles})
		},
	}
	validate.Flags().StringArrayVarP(&files, "file", "f", nil, "plan file (may be repeated; same as a FILE argument)")
	validate.Flags().BoolVar(&checkFiles, "check-files", false, "also check that the files the plan names (password_file, identity, …) exist")
	plan.AddCommand(validate)
	return plan
}

// validatePlans prints "FILE: ok (…)" for each good plan and each finding
// on its own line for the others.
func validatePlans(stdout, stderr io.Writer, files []string, opt plans.Options) error {
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
