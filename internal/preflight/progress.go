package preflight

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
)

// Progress reports a run on stderr: a live line on a terminal, otherwise
// one plain line per finished host. Its Started and Done fit Options.
type Progress struct {
	w       io.Writer
	tty     bool
	total   int
	mu      sync.Mutex
	done    int
	running map[string]bool
}

// NewProgress reports on w for a run over total hosts.
func NewProgress(w io.Writer, total int) *Progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &Progress{w: w, tty: tty, total: total, running: map[string]bool{}}
}

// Started notes that a host's check began.
func (p *Progress) Started(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[name] = true
	p.redraw()
}

// Done notes that a host's check ended.
func (p *Progress) Done(r *Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, r.Name)
	p.done++
	if p.tty {
		p.redraw()
		return
	}
	line := fmt.Sprintf("plan: [%d/%d] %s %s (%s)", p.done, p.total, r.Name, r.Status, r.Took)
	if r.Status == StatusFailed {
		line += ": " + r.ErrorKind
	}
	fmt.Fprintln(p.w, line)
}

func (p *Progress) redraw() {
	if !p.tty {
		return
	}
	var names []string
	for n := range p.running {
		names = append(names, n)
	}
	sort.Strings(names)
	s := strings.Join(names, " ")
	if len(s) > 50 {
		s = s[:50] + "…"
	}
	fmt.Fprintf(p.w, "\r\033[K[%d/%d] checking %s", p.done, p.total, s)
}

// Finish clears the live line.
func (p *Progress) Finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
