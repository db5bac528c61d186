package device

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// fetchExec reads the config on an exec channel: no pty, no prompt, no
// pager; the exit status tells a finished read from a cut one.
func fetchExec(ctx context.Context, client *ssh.Client, t Target, d *Driver, o Options) (*Fetched, error) {
	s, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	idle := orDefault(o.Idle, 30*time.Second)
	var stderr bytes.Buffer
	out := &progressWriter{tick: make(chan struct{}, 1)}
	s.Stdout, s.Stderr = out, &stderr
	if err := s.Start(d.ShowCommand); err != nil {
		return nil, fmt.Errorf("run %q: %w", d.ShowCommand, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				// the channel ended because the client was closed when
				// time ran out, not because the device cut it
				return nil, fmt.Errorf("%q: time ran out after %d bytes", d.ShowCommand, out.Len())
			}
			return execResult(t, d, out.String(), stderr.String(), err)
		case <-out.tick:
			timer.Reset(idle)
		case <-timer.C:
			s.Close()
			return nil, fmt.Errorf("%q: nothing new from the device for %s after %d bytes", d.ShowCommand, idle, out.Len())
		case <-ctx.Done():
			s.Close()
			if ctx.Err() == context.DeadlineExceeded {
				return nil, fmt.Errorf("%q: time ran out after %d bytes", d.ShowCommand, out.Len())
			}
			return nil, fmt.Errorf("%q: %w after %d bytes", d.ShowCommand, ctx.Err(), out.Len())
		}
	}
}

func execResult(t Target, d *Driver, cfg, stderr string, err error) (*Fetched, error) {
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("%q: the device closed the channel without an exit status after %d bytes: the config is cut off, not stored", d.ShowCommand, len(cfg))
	case errors.As(err, &exitErr):
		return nil, fmt.Errorf("%q exited with status %d: %s", d.ShowCommand, exitErr.ExitStatus(), clipText(Mask(d.Model, strings.TrimSpace(stderr+" "+lastLine(cfg))), 200))
	case err != nil:
		return nil, fmt.Errorf("%q: %w", d.ShowCommand, err)
	}
	// the same text an interactive read gives: lines ending in '\n'
	cfg = strings.ReplaceAll(cfg, "\r\n", "\n")
	if !d.Complete(cfg) {
		return nil, incomplete(d, cfg)
	}
	// Junos runs what was committed; RouterOS saves every change at once
	f := &Fetched{Config: cfg, Unsaved: UnsavedNone}
	if t.Save {
		f.SaveSkipped = "no save needed: " + d.Model + "'s running config is the saved one"
	}
	return f, nil
}

func incomplete(d *Driver, cfg string) error {
	return fmt.Errorf("the config has no end marker (%s) after %d bytes: it is cut off, not stored (last line: %q)", d.EndMarker, len(cfg), clipText(Mask(d.Model, lastLine(cfg)), 80))
}

// progressWriter collects a channel's output and signals tick on every
// write, for idle timeouts. x/crypto's copier may still write after a
// timeout made us give up, hence the lock.
type progressWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	tick chan struct{}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	select {
	case p.tick <- struct{}{}:
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Write(b)
}

func (p *progressWriter) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Len()
}

func (p *progressWriter) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}
