package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
)

// KindHook is the command hook's kind. Its targets are "before" and
// "after": one step each, holding all of the plan's commands of that list.
const KindHook = "hook"

func init() {
	RegisterKind(KindHook, func(target string) (Action, error) {
		if target != "before" && target != "after" {
			return nil, fmt.Errorf("hook: unknown target %q", target)
		}
		return Hook{When: target}, nil
	})
}

// Hook runs the plan's `hooks:` commands on the host, as root, with
// /bin/sh -c, in the order the plan lists them, stopping at the first
// that fails. Exactly when:
//
//   - hooks.before runs at lockdown, first — after the preflight and
//     before anything else (baseline, backups, services, firewall, power).
//     A failing command fails the step: that host's lockdown stops there
//     (what it started is reverted, so hooks.after runs), with the
//     command's exit code and output tail in the summary. Restore has no
//     undo for it.
//   - hooks.after runs at restore, last — after every other step of the
//     host is reverted. It is journaled at lockdown as the host's very
//     first step (nothing runs then); steps revert in reverse, so its
//     Revert, which runs the commands, comes after all the others. A
//     lockdown that fails half-way reverts too, and so runs hooks.after.
//     A failing command fails the restore of the host; running restore
//     again runs the after list again from its first command.
//
// The journal holds each command, its exit code and the last
// hookTailBytes of its output, with secret-looking words
// (password=…, token: …) replaced. Commands run with a minimal
// environment (PATH, LANG=C, HOME=/root): nothing of the control node's.
// Write them idempotent.
type Hook struct {
	When string // before or after
}

// HookPrior is the hook step's Observe record: the commands.
type HookPrior struct {
	When     string   `json:"when"`
	Commands []string `json:"commands"`
}

// HookRun is one command's outcome.
type HookRun struct {
	Command string  `json:"command"`
	Exit    int     `json:"exit"` // -1: did not run to an exit (timeout, signal)
	Output  string  `json:"output_tail,omitempty"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// HookDone is what running the commands did.
type HookDone struct {
	When string    `json:"when"`
	Runs []HookRun `json:"runs"`
	Ran  bool      `json:"ran"` // false: the after list at lockdown, journaled only
}

// hookTailBytes is how much of a command's output the journal keeps.
const hookTailBytes = 2048

// HookTimeout bounds one command.
var HookTimeout = 10 * time.Minute

type hookArgs struct {
	Commands []string `json:"commands"`
}

func (k Hook) commands(h *Host) []string {
	if h.Plan == nil || h.Plan.Hooks == nil {
		return nil
	}
	if k.When == "before" {
		return h.Plan.Hooks.Before
	}
	return h.Plan.Hooks.After
}

// Observe records the commands from the plan (redacted as the journal
// keeps them; the commands that run are the plan's).
func (k Hook) Observe(ctx context.Context, h *Host) (Record, error) {
	var shown []string
	for _, c := range k.commands(h) {
		shown = append(shown, Redact(c))
	}
	return NewRecord(KindHook, k.When, HookPrior{When: k.When, Commands: shown})
}

// Apply runs the before list; the after list only is journaled.
func (k Hook) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	if k.When != "before" {
		return NewRecord(KindHook, k.When, HookDone{When: k.When})
	}
	return k.run(ctx, h, k.commands(h))
}

func (k Hook) run(ctx context.Context, h *Host, cmds []string) (Record, error) {
	d := HookDone{When: k.When, Ran: true}
	var err error
	if len(cmds) > 0 {
		err = h.Agent.Call(ctx, "hook-run", hookArgs{Commands: cmds}, &d.Runs)
	}
	d.When, d.Ran = k.When, true
	rec, rerr := NewRecord(KindHook, k.When, d)
	if err == nil {
		err = rerr
	}
	if err == nil {
		err = hookFailure(d.Runs)
	}
	return rec, err
}

func hookFailure(runs []HookRun) error {
	for _, r := range runs {
		if r.Exit != 0 || r.Error != "" {
			msg := fmt.Sprintf("hook %q exited %d", r.Command, r.Exit)
			if r.Error != "" {
				msg += " (" + r.Error + ")"
			}
			if out := strings.TrimSpace(r.Output); out != "" {
				msg += ": " + lastLinesOf(out, 5)
			}
			return errors.New(msg)
		}
	}
	return nil
}

func lastLinesOf(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// Verify: a hook has nothing that holds.
func (Hook) Verify(ctx context.Context, h *Host, done Record) error { return nil }

// Revert runs the after list (from the plan when restore has it, else as
// journaled — redacted words stay redacted, so a command that needs a
// secret must read it on the host); the before list has no undo.
func (k Hook) Revert(ctx context.Context, h *Host, prior, done Record) error {
	if k.When != "after" {
		return nil
	}
	cmds := k.commands(h)
	if h.Plan == nil {
		var p HookPrior
		if err := prior.Decode(&p); err != nil {
			return err
		}
		cmds = p.Commands
	}
	_, err := k.run(ctx, h, cmds)
	return err
}

var secretWords = regexp.MustCompile(`(?i)\b([A-Za-z0-9_-]*(?:password|passwd|secret|token|apikey|api_key)[A-Za-z0-9_-]*)(\s*[=:]\s*|\s+)("[^"]*"|'[^']*'|\S+)`)

// Redact replaces the values of secret-looking words (password=…,
// --token …, SECRET: …) in s.
func Redact(s string) string { return secretWords.ReplaceAllString(s, "$1$2<redacted>") }

// --- host side ---

func hookRun(ctx context.Context, op *agent.Op) (any, error) {
	var a hookArgs
	if err := jsonUnmarshal(op.Args, &a); err != nil {
		return nil, err
	}
	var runs []HookRun
	for _, cmd := range a.Commands {
		r := runHookCommand(ctx, cmd)
		runs = append(runs, r)
		if r.Exit != 0 || r.Error != "" {
			break
		}
	}
	return runs, nil
}

func runHookCommand(ctx context.Context, cmd string) HookRun {
	cctx, cancel := context.WithTimeout(ctx, HookTimeout)
	defer cancel()
	t0 := time.Now()
	c := exec.CommandContext(cctx, "/bin/sh", "-c", cmd)
	c.Dir = "/"
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "HOME=/root"}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	r := HookRun{Command: Redact(cmd), Seconds: time.Since(t0).Seconds()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
		if r.Exit < 0 {
			r.Error = ee.String()
		}
	default:
		r.Exit, r.Error = -1, err.Error()
	}
	if cctx.Err() == context.DeadlineExceeded {
		r.Exit, r.Error = -1, fmt.Sprintf("timed out after %v", HookTimeout)
	}
	b := out.Bytes()
	if len(b) > hookTailBytes {
		b = b[len(b)-hookTailBytes:]
	}
	r.Output = Redact(strings.ToValidUTF8(string(b), "?"))
	return r
}
