package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/backup/repocmd"
)

// progressEvery is how often a host's long work prints a progress line.
const progressEvery = 5 * time.Second

// lineThrottle prints progress lines to a terminal, each key's (a
// host's) at most once per progressEvery; the first at once.
type lineThrottle struct {
	w    io.Writer
	mu   sync.Mutex
	last map[string]time.Time
}

func newLineThrottle(w io.Writer) *lineThrottle {
	return &lineThrottle{w: w, last: map[string]time.Time{}}
}

// print prints line() unless key printed one less than progressEvery ago.
func (p *lineThrottle) print(key string, line func() string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last[key]) < progressEvery {
		return
	}
	p.last[key] = time.Now()
	fmt.Fprintln(p.w, line())
}

// progressFigures is how far one piece of a host's long work is, in the
// terms every progress line shares.
type progressFigures struct {
	counts string // what is behind, in words: "120 files, 100.0 MiB read, 40.0 MiB sent"
	bytes  int64  // the bytes the rate is of
	// total is the bytes of the whole work (0: unknown), done how much
	// of it is behind, estimate whether total is an estimate (a dump's
	// previous size).
	total, done int64
	estimate    bool
	elapsed     time.Duration
}

// progressText is one progress line of a host's work: what is behind,
// the rate, the share of the total and the time left, which is the bytes
// still to go at the rate of those behind so far. An estimated total is
// said to be one ("about"); a work past its estimate has no time left.
func progressText(host, what string, f progressFigures) string {
	secs := max(f.elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("%-10s %s: %s, %s/s", host, what, f.counts, repocmd.Human(int64(float64(f.bytes)/secs)))
	if f.total <= 0 {
		return line
	}
	about := ""
	if f.estimate {
		if f.done >= f.total {
			return line + fmt.Sprintf(", more than the last dump's %s, ETA ?", repocmd.Human(f.total))
		}
		about = "about "
	}
	done := min(f.done, f.total)
	line += fmt.Sprintf(", %d%% of %s%s", done*100/f.total, about, repocmd.Human(f.total))
	if done <= 0 || f.elapsed < time.Second {
		return line + ", ETA ?"
	}
	left := time.Duration(float64(f.total-done) / (float64(done) / secs) * float64(time.Second))
	return line + ", ETA " + about + etaString(left)
}

// etaString rounds a time left for reading: 45s, 3m05s, 2h10m.
func etaString(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}
