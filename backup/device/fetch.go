package device

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Fetch connects to t, optionally saves its running config, and returns
// the running config. It fails, rather than returning a short config,
// when the output lacks the model's end marker.
func Fetch(ctx context.Context, t Target, o Options) (*Fetched, error) {
	d, ok := Drivers[t.Model]
	if !ok {
		return nil, fmt.Errorf("unknown model %q (known: %s)", t.Model, strings.Join(Models(), ", "))
	}
	ctx, cancel := context.WithTimeout(ctx, orDefault(o.Timeout, 5*time.Minute))
	defer cancel()
	client, err := dial(ctx, t, d, o)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	// closing the client is what unblocks reads when ctx ends
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	var f *Fetched
	if d.Exec {
		f, err = fetchExec(ctx, client, t, d, o)
	} else {
		f, err = fetchCLI(ctx, client, t, d, o)
	}
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%w (whole-device timeout %s)", err, orDefault(o.Timeout, 5*time.Minute))
	}
	return f, err
}

// fetchCLI drives the interactive CLI: learn the prompt, escalate, paging
// off, compare running with startup, save, show.
func fetchCLI(ctx context.Context, client *ssh.Client, t Target, d *Driver, o Options) (*Fetched, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	// a realistic terminal height: the pager shows up until paging is off,
	// and is answered if a paging-off command is refused
	if err := s.RequestPty("vt100", 24, 511, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return nil, fmt.Errorf("request a terminal: %w", err)
	}
	stdin, err := s.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := s.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.Shell(); err != nil {
		return nil, fmt.Errorf("start the CLI: %w", err)
	}
	idle := orDefault(o.Idle, 30*time.Second)
	c := newCLI(stdout, stdin, func(s string) string { return Mask(d.Model, s) })
	log := o.log().With("device", t.Name)

	if _, _, err := c.expect(ctx, "the first prompt", idle, d.Prompt); err != nil {
		return nil, err
	}
	if err := learnPrompt(ctx, c, d, idle); err != nil {
		return nil, err
	}
	log.Debug("prompt learned", "prompt", c.prompt.String())
	if e := d.Escalate; e != nil && e.When.MatchString(c.currentLine()) {
		if err := escalate(ctx, c, t, d, idle); err != nil {
			return nil, err
		}
	}
	f := &Fetched{}
	for _, cmd := range d.OnOpen {
		out, err := c.command(ctx, cmd, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return nil, err
		}
		if l := refused(d, out); l != "" {
			// the pager is still answered; the read just gets slower
			f.Warnings = append(f.Warnings, fmt.Sprintf("%q refused: %s", cmd, l))
		}
	}
	show := func() (string, error) {
		out, err := c.command(ctx, d.ShowCommand, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return "", fmt.Errorf("reading the config (%d bytes so far, nothing stored): %w", len(out), err)
		}
		if l := refused(d, out); l != "" {
			return "", fmt.Errorf("%q refused: %s", d.ShowCommand, l)
		}
		if !d.Complete(out) {
			return "", incomplete(d, out)
		}
		return out, nil
	}
	var running string
	if d.StartupCommand != "" {
		if running, err = show(); err != nil {
			return nil, err
		}
		startup, err := c.command(ctx, d.StartupCommand, idle, d.Pager, d.PagerKey, nil)
		switch {
		case err != nil:
			return nil, fmt.Errorf("reading the startup config: %w", err)
		case refused(d, startup) != "" || strings.TrimSpace(startup) == "":
			f.Warnings = append(f.Warnings, "no startup config to compare with (never saved?)")
			f.Unsaved = UnsavedFound
		case sameConfig(d, running, startup):
			f.Unsaved = UnsavedNone
		default:
			f.Unsaved = UnsavedFound
		}
	}
	if t.Save && d.Save == nil {
		f.SaveSkipped = "no save step for " + d.Model
	} else if t.Save {
		skipped, err := save(ctx, c, d, idle)
		if err != nil {
			// the backup matters more than the save: read on (if the
			// session died, the read fails and says so)
			f.SaveErr = err
			skipped = "save failed"
		}
		if f.SaveSkipped = skipped; skipped == "" {
			f.Saved = true
			running = "" // read again: what is stored is what was saved
		} else if f.Unsaved == UnsavedUnknown && d.Save.Check != "" {
			f.Unsaved = UnsavedNone // the check said the device saves by itself
		}
	}
	if running == "" {
		if running, err = show(); err != nil {
			return nil, err
		}
	}
	if f.Saved && d.StartupCommand != "" {
		// a save is verified, not trusted: the startup config must now
		// be the running one
		startup, err := c.command(ctx, d.StartupCommand, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return nil, fmt.Errorf("reading the startup config after the save: %w", err)
		}
		if !sameConfig(d, running, startup) {
			f.Saved = false
			f.SaveErr = fmt.Errorf("%q reported success, but the startup config still differs from the running one: the save did not take (check the device's flash)", d.Save.Command)
		}
	}
	f.Config = running
	_ = c.send("exit")
	return f, nil
}

// learnPrompt sends an empty line and takes the line the device answers
// with as its exact prompt. Anchoring on it, not on a generic pattern,
// keeps a config line that looks like a prompt from ending the read.
func learnPrompt(ctx context.Context, c *cli, d *Driver, idle time.Duration) error {
	c.clearLine()
	if err := c.send(""); err != nil {
		return err
	}
	if _, _, err := c.expect(ctx, "the prompt after an empty line", idle, d.Prompt); err != nil {
		return err
	}
	c.prompt = anchor(c.currentLine())
	return nil
}

func escalate(ctx context.Context, c *cli, t Target, d *Driver, idle time.Duration) error {
	e := d.Escalate
	c.clearLine()
	if err := c.send(e.Command); err != nil {
		return err
	}
	i, out, err := c.expect(ctx, fmt.Sprintf("%q to answer", e.Command), idle, d.Prompt, e.PasswordPrompt)
	if err != nil {
		return err
	}
	if l := refused(d, out); l != "" {
		return fmt.Errorf("%q refused: %s", e.Command, l)
	}
	if i == 1 {
		if !t.Enable.IsSet() {
			return fmt.Errorf("%q asks for a password and the plan gives none: set enable_password_env or enable_password_file for this device", e.Command)
		}
		pw, err := t.Enable.Read()
		if err != nil {
			return fmt.Errorf("enable password: %w", err)
		}
		c.clearLine()
		if err := c.send(pw); err != nil {
			return err
		}
		i, out, err = c.expect(ctx, fmt.Sprintf("the prompt after the %q password", e.Command), idle, d.Prompt, e.PasswordPrompt)
		if err != nil {
			return err
		}
		if i == 1 || (e.Refused != nil && e.Refused.MatchString(out)) {
			return fmt.Errorf("%q refused the password from %s", e.Command, secretSource(t.Enable))
		}
	}
	if !e.SamePrompt && e.When.MatchString(c.currentLine()) {
		return fmt.Errorf("%q did not raise privileges (prompt still %q): wrong password from %s?", e.Command, strings.TrimSpace(c.currentLine()), secretSource(t.Enable))
	}
	return learnPrompt(ctx, c, d, idle)
}

// save runs the model's save dialog. It returns why it skipped, or "".
func save(ctx context.Context, c *cli, d *Driver, idle time.Duration) (string, error) {
	sv := d.Save
	if sv.Check != "" {
		out, err := c.command(ctx, sv.Check, idle, d.Pager, d.PagerKey, nil)
		if err != nil {
			return "", err
		}
		if !sv.Needed.MatchString(out) {
			return "no save needed: the device saves every change by itself", nil
		}
	}
	out, err := c.command(ctx, sv.Command, orDefault(2*idle, time.Minute), d.Pager, d.PagerKey, sv.Questions)
	if err != nil {
		return "", fmt.Errorf("save (%q): %w", sv.Command, err)
	}
	if l := refused(d, out); l != "" {
		return "", fmt.Errorf("save (%q) refused: %s", sv.Command, l)
	}
	if sv.Success != nil && !sv.Success.MatchString(out) {
		return "", fmt.Errorf("save (%q) did not report success: %q", sv.Command, clipText(Mask(d.Model, strings.TrimSpace(out)), 200))
	}
	return "", nil
}

// refused returns the first error line in out, or "".
func refused(d *Driver, out string) string {
	for _, e := range d.Errors {
		if loc := e.FindStringIndex(out); loc != nil {
			line := out[loc[0]:]
			if i := strings.IndexByte(line, '\n'); i >= 0 {
				line = line[:i]
			}
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// sameConfig compares running and startup without the lines that differ
// between the two by nature (headers, timestamps).
func sameConfig(d *Driver, running, startup string) bool {
	// blank lines too: IOS's running config has one after its header
	// that the startup config lacks
	norm := func(s string) string {
		var b strings.Builder
		for l := range strings.Lines(Normalize(d.Model, s)) {
			if strings.TrimSpace(l) != "" {
				b.WriteString(l)
			}
		}
		return b.String()
	}
	return norm(running) == norm(startup)
}
