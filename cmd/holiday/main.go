// Command holiday backs up, locks down and restores a fleet of hosts and
// network devices around a long break. See README.md.
//
// Each command lives in its own file and calls into the packages below;
// this file alone turns errors into messages and exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/holiday-ops/holiday/internal/exitcode"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes one command line and returns the process exit code.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	code := exitcode.Of(err)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		code = exitcode.Interrupted
	}
	var usage *usageError
	if errors.As(err, &usage) {
		code = exitcode.Usage
	}
	fmt.Fprintf(os.Stderr, "holiday: error: %v\n", err)
	if hint := exitcode.HintOf(err); hint != "" {
		fmt.Fprintf(os.Stderr, "hint: %s\n", hint)
	}
	return code
}
