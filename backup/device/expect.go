package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// cli is an interactive CLI on one SSH channel. Exactly one goroutine
// reads the channel (a second reader would steal bytes a wait needs); it
// feeds a vterm, and waits look at the vterm's current line, which is
// where a device that waits for input leaves its prompt, pager or
// question.
type cli struct {
	w io.Writer

	mu     sync.Mutex
	vt     vterm
	err    error         // why reading stopped (io.EOF when the device closed)
	wake   chan struct{} // closed and replaced when bytes arrive or reading stops
	total  int64         // bytes read so far
	prompt *regexp.Regexp
	// mask hides secrets in device text quoted in errors (the last line
	// seen may be a config line)
	mask func(string) string
}

func newCLI(r io.Reader, w io.Writer, mask func(string) string) *cli {
	c := &cli{w: w, wake: make(chan struct{}), mask: mask}
	go c.read(r)
	return c
}

func (c *cli) read(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		c.mu.Lock()
		if n > 0 {
			c.vt.write(buf[:n])
			c.total += int64(n)
		}
		if err != nil {
			c.err = err
		}
		close(c.wake)
		c.wake = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// errTimeout is a wait that saw no matching output within its deadline.
var errTimeout = errors.New("timed out")

// waitError says what a wait was waiting for and what the device showed
// last, so an operator can tell a wrong prompt from a dead device.
type waitError struct {
	what string
	err  error
	last string // the current line when the wait gave up
	idle time.Duration
}

func (e *waitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "waiting for %s: ", e.what)
	switch {
	case errors.Is(e.err, errTimeout):
		fmt.Fprintf(&b, "nothing new from the device for %s", e.idle)
	case errors.Is(e.err, io.EOF):
		b.WriteString("the device closed the session")
	case errors.Is(e.err, context.DeadlineExceeded):
		b.WriteString("time ran out")
	default:
		b.WriteString(e.err.Error())
	}
	if l := strings.TrimSpace(e.last); l != "" {
		fmt.Fprintf(&b, " (last line: %q)", clipText(l, 80))
	}
	return b.String()
}

func (e *waitError) Unwrap() error { return e.err }

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// send writes a line as typed: text and a carriage return.
func (c *cli) send(s string) error {
	_, err := io.WriteString(c.w, s+"\r")
	return err
}

// expect waits until the current line matches one of pats and returns
// its index and the finished lines that arrived before it (also on
// error, so a caller can say how far the device got). idle bounds
// the time without any new byte (a device that streams a long config is
// not cut off; one that hangs is); ctx bounds the whole wait.
func (c *cli) expect(ctx context.Context, what string, idle time.Duration, pats ...*regexp.Regexp) (int, string, error) {
	timer := time.NewTimer(idle)
	defer timer.Stop()
	var seen int64 = -1
	for {
		c.mu.Lock()
		cur := c.vt.current()
		for i, p := range pats {
			if p != nil && p.MatchString(cur) {
				out := c.vt.take()
				c.mu.Unlock()
				return i, out, nil
			}
		}
		if c.err != nil {
			err := c.err
			if ctx.Err() != nil {
				err = ctx.Err() // the session was closed because time ran out
			}
			out := c.vt.take()
			c.mu.Unlock()
			return -1, out, &waitError{what: what, err: err, last: c.mask(cur)}
		}
		if c.total != seen {
			seen = c.total
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(idle)
		}
		wake := c.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return -1, c.takeLines(), &waitError{what: what, err: errTimeout, last: c.mask(cur), idle: idle}
		case <-ctx.Done():
			return -1, c.takeLines(), &waitError{what: what, err: ctx.Err(), last: c.mask(cur)}
		}
	}
}

// takeLines returns the finished lines not yet taken.
func (c *cli) takeLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vt.take()
}

// clearLine forgets the current line (see vterm.clearLine).
func (c *cli) clearLine() {
	c.mu.Lock()
	c.vt.clearLine()
	c.mu.Unlock()
}

// currentLine returns the line the cursor is on.
func (c *cli) currentLine() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vt.current()
}

// anchor builds the pattern of a learned prompt: exactly that text on the
// current line, allowing the trailing blank some devices add.
func anchor(prompt string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(strings.TrimRight(prompt, " ")) + `\s?$`)
}

// command sends cmd, answers pagers and questions, and returns what it
// printed once the learned prompt is back: the echo of the command
// stripped, lines ending in '\n'.
func (c *cli) command(ctx context.Context, cmd string, idle time.Duration, pager *regexp.Regexp, pagerKey string, answers []Answer) (string, error) {
	// the prompt on the current line belongs to the previous command; the
	// echo that follows it must not be mistaken for the next prompt
	c.clearLine()
	if err := c.send(cmd); err != nil {
		return "", fmt.Errorf("send %q: %w", cmd, err)
	}
	pats := []*regexp.Regexp{c.prompt, pager}
	for _, a := range answers {
		pats = append(pats, a.Question)
	}
	var out strings.Builder
	for {
		i, before, err := c.expect(ctx, fmt.Sprintf("the prompt after %q", cmd), idle, pats...)
		out.WriteString(before)
		if err != nil {
			return out.String(), err
		}
		switch {
		case i == 0:
			return stripEcho(out.String(), cmd), nil
		case i == 1:
			c.clearLine()
			if _, err := io.WriteString(c.w, pagerKey); err != nil {
				return out.String(), err
			}
		default:
			a := answers[i-2]
			out.WriteString(c.currentLine() + "\n")
			c.clearLine()
			if err := c.send(a.Reply); err != nil {
				return out.String(), err
			}
		}
	}
}

// stripEcho drops the device's echo of cmd (the first line, which ends
// with the command as typed, after the prompt).
func stripEcho(out, cmd string) string {
	first, rest, ok := strings.Cut(out, "\n")
	if ok && strings.HasSuffix(strings.TrimRight(first, " "), cmd) {
		return rest
	}
	return out
}
