package units

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// LSB is the part of an init script's LSB header ("### BEGIN INIT INFO")
// that orders scripts.
type LSB struct {
	Provides                   []string
	RequiredStart, ShouldStart []string
	RequiredStop, ShouldStop   []string
	StartBefore, StopAfter     []string // X-Start-Before, X-Stop-After
}

// ReadLSB reads script name's LSB header from InitDir; a script without
// one has a zero LSB.
func ReadLSB(name string) LSB {
	b, err := os.ReadFile(filepath.Join(InitDir, name))
	if err != nil {
		return LSB{}
	}
	return parseLSB(string(b))
}

func parseLSB(s string) LSB {
	var h LSB
	begin := strings.Index(s, "### BEGIN INIT INFO")
	end := strings.Index(s, "### END INIT INFO")
	if begin < 0 || end < begin {
		return h
	}
	for _, l := range strings.Split(s[begin:end], "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch strings.TrimSpace(k) {
		case "Provides":
			h.Provides = append(h.Provides, f...)
		case "Required-Start":
			h.RequiredStart = append(h.RequiredStart, f...)
		case "Should-Start":
			h.ShouldStart = append(h.ShouldStart, f...)
		case "Required-Stop":
			h.RequiredStop = append(h.RequiredStop, f...)
		case "Should-Stop":
			h.ShouldStop = append(h.ShouldStop, f...)
		case "X-Start-Before":
			h.StartBefore = append(h.StartBefore, f...)
		case "X-Stop-After":
			h.StopAfter = append(h.StopAfter, f...)
		}
	}
	return h
}

// mentions reports whether the header names unit in any ordering field.
func (h LSB) mentions(unit string) bool {
	for _, l := range [][]string{h.RequiredStart, h.ShouldStart, h.RequiredStop, h.ShouldStop, h.StartBefore, h.StopAfter} {
		for _, f := range l {
			if f == unit {
				return true
			}
		}
	}
	return false
}

// StopPreds returns, for each of names (SysV scripts stopped together),
// the ones among them that must be stopped before it: a script whose
// Required-Stop or Should-Stop names another stops first (the other must
// still run while it stops); a script with X-Stop-After stops after the
// ones it names. Names are matched by script name and by Provides. A
// cycle is broken by stopping its scripts one after another, by name.
func StopPreds(names []string) map[string][]string {
	return preds(names, func(h LSB) (before, after []string) {
		// I stop before these: they wait for me.
		return append(append([]string{}, h.RequiredStop...), h.ShouldStop...), h.StopAfter
	})
}

// StartPreds is StopPreds for starting: a script starts after what its
// Required-Start and Should-Start name, and before what its
// X-Start-Before names.
func StartPreds(names []string) map[string][]string {
	return preds(names, func(h LSB) (before, after []string) {
		return h.StartBefore, append(append([]string{}, h.RequiredStart...), h.ShouldStart...)
	})
}

// preds builds the wait-for lists from each script's header: rel returns
// the facilities the script goes before and the ones it goes after.
func preds(names []string, rel func(LSB) (before, after []string)) map[string][]string {
	headers := map[string]LSB{}
	provider := map[string][]string{} // facility or script name → scripts of names
	for _, n := range names {
		h := ReadLSB(n)
		headers[n] = h
		provider[n] = appendNew(provider[n], n)
		for _, p := range h.Provides {
			provider[p] = appendNew(provider[p], n)
		}
	}
	return orderGraph(names, func(n string) (before, after []string) {
		b, a := rel(headers[n])
		for _, f := range b {
			for _, m := range provider[f] {
				if m != n {
					before = appendNew(before, m)
				}
			}
		}
		for _, f := range a {
			for _, m := range provider[f] {
				if m != n {
					after = appendNew(after, m)
				}
			}
		}
		return before, after
	})
}

// orderGraph returns each name's predecessors from edges (n goes before
// the "before" names and after the "after" names), with cycles broken:
// the names left in a cycle after a topological sort wait for each other
// in name order instead.
func orderGraph(names []string, edges func(n string) (before, after []string)) map[string][]string {
	p := map[string][]string{}
	for _, n := range names {
		p[n] = nil
	}
	for _, n := range names {
		b, a := edges(n)
		for _, m := range b {
			p[m] = appendNew(p[m], n)
		}
		for _, m := range a {
			p[n] = appendNew(p[n], m)
		}
	}
	// Kahn: whatever is left is in (or behind) a cycle.
	indeg := map[string]int{}
	next := map[string][]string{}
	for n, ps := range p {
		indeg[n] = len(ps)
		for _, m := range ps {
			next[m] = append(next[m], n)
		}
	}
	var queue []string
	for n, d := range indeg {
		if d == 0 {
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, m := range next[n] {
			if indeg[m]--; indeg[m] == 0 {
				queue = append(queue, m)
			}
		}
		delete(indeg, n)
	}
	if len(indeg) > 0 {
		var left []string
		for n := range indeg {
			left = append(left, n)
		}
		sort.Strings(left)
		for i, n := range left {
			var keep []string
			for _, m := range p[n] {
				if _, cyc := indeg[m]; !cyc {
					keep = append(keep, m)
				}
			}
			if i > 0 {
				keep = append(keep, left[i-1])
			}
			p[n] = keep
		}
	}
	for n := range p {
		sort.Strings(p[n])
	}
	return p
}

func appendNew(l []string, s string) []string {
	for _, x := range l {
		if x == s {
			return l
		}
	}
	return append(l, s)
}

// RunOrdered runs f for every name at once, each after f returned for
// the names preds lists for it (whatever they returned: a failed stop
// does not hold up the others), and returns each name's error.
func RunOrdered(ctx context.Context, names []string, preds map[string][]string, f func(ctx context.Context, name string) error) map[string]error {
	done := map[string]chan struct{}{}
	for _, n := range names {
		done[n] = make(chan struct{})
	}
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[n])
			for _, m := range preds[n] {
				if c, ok := done[m]; ok {
					<-c
				}
			}
			if err := f(ctx, n); err != nil {
				mu.Lock()
				errs[n] = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}
