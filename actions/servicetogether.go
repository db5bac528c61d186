package actions

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/internal/units"
)

// Stopping and reverting a host's service steps together (host side).
//
// applyTogether stops every step's unit and triggers at once — on systemd
// ONE `systemctl stop` of all of them, which PID 1 orders by the units'
// dependencies (a socket with a stop job pending does not start its
// service); on SysV the scripts at once unless their LSB headers order
// them — and disables them with one `systemctl disable` (and one with
// --runtime). The unit list is taken once before and once after for the
// whole batch; their difference, less the batch's own units, is the side
// effects, handed to the steps they belong to (below). So n steps cost
// about as much as the slowest of them, not the sum.
//
// revertTogether is the reverse: every step's files first (unmask, mask,
// enable, disable, rc links), then one start of everything that must run
// again, then each step's exact state checked as serviceRevert always did.

// applyTogether stops and disables the units of steps (each with its
// Prior) together and returns each step's done record. skip are other
// units stopped at the same time by someone else (Service.Batch): theirs,
// not side effects. A unit that fails leaves the others' records as
// correct as ever: each record lists what its step stopped and disabled
// and its side effects, and carries only its own units' errors in Error.
//
// The unit list and listening ports taken after the stop come back too
// (seen): the batch's verify reads them instead of asking again a moment
// later.
func applyTogether(ctx context.Context, steps []serviceArgs, skip []string) (_ []ServiceDone, seen *hostView) {
	done := make([]ServiceDone, len(steps))
	if len(steps) == 0 {
		return done, nil
	}
	init := steps[0].Prior.Init
	errs := make([][]string, len(steps))
	blame := func(i int, err error) {
		if err != nil {
			errs[i] = append(errs[i], err.Error())
		}
	}
	blameAll := func(err error) {
		for i := range steps {
			blame(i, err)
		}
	}
	finish := func() ([]ServiceDone, *hostView) {
		for i := range done {
			done[i].Init = init
			if len(errs[i]) > 0 {
				done[i].Error = strings.Join(dedup(errs[i]), "; ")
			}
		}
		return done, seen
	}

	// Each step's own units: its triggers first, then the unit. A unit
	// may belong to several steps (a socket two services share; a plan
	// that names a service and its socket): its owners.
	var own []string
	owners := map[string][]int{}
	mine := map[string]bool{}
	for _, s := range skip {
		mine[units.Canonical(init, s)] = true
	}
	var around []string // what the lists must know the enablement of
	for i, a := range steps {
		p := a.Prior
		for _, u := range append(append([]units.Unit{}, p.Triggers...), p.Unit) {
			if u.Name == "" {
				continue
			}
			if _, ok := owners[u.Name]; !ok {
				own = append(own, u.Name)
			}
			if !slices.Contains(owners[u.Name], i) {
				owners[u.Name] = append(owners[u.Name], i)
			}
			mine[u.Name] = true
			around = appendNew(around, u.Name)
		}
		for _, r := range p.Related {
			around = appendNew(around, r.Name)
		}
		for _, r := range append(append([]string{}, p.Unit.Also...), p.Unit.Stoppers...) {
			around = appendNew(around, r)
		}
	}

	// The list and the listening ports: independent reads, at once.
	var lsBefore []units.Listener
	var lerr error
	lsDone := make(chan struct{})
	go func() {
		defer close(lsDone)
		lsBefore, lerr = units.Listening()
	}()
	before, err := units.ListAround(ctx, init, around)
	<-lsDone
	if err == nil {
		err = lerr
	}
	if err != nil {
		blameAll(err)
		return finish()
	}
	// Who holds each listening port now (systemd: the process's unit),
	// to hand the ports that close to the steps they belong to.
	portUnits := map[int][]string{}
	if init == units.Systemd {
		for _, l := range lsBefore {
			for _, pid := range l.PIDs {
				if u := units.UnitOfPID(pid); u != "" {
					portUnits[l.Port] = appendNew(portUnits[l.Port], u)
				}
			}
		}
	}

	// The state of each own unit now, from the list where it has it.
	cur, err := units.PickOrAsk(ctx, init, before, own)
	if err != nil {
		blameAll(err)
		return finish()
	}
	var stop []string
	disable := map[bool][]string{} // by runtime
	for _, n := range own {
		u := cur[n]
		if u.Running() || (init == units.Systemd && u.Active == "failed") {
			stop = append(stop, n)
			for _, i := range owners[n] {
				done[i].Stopped = append(done[i].Stopped, n)
			}
		}
		if init == units.SysV {
			if u.Enablement == "enabled" {
				disable[false] = append(disable[false], n)
				for _, i := range owners[n] {
					done[i].Disabled = append(done[i].Disabled, n)
				}
			}
			continue
		}
		if ok, rt := disableable(u.Enablement); ok {
			disable[rt] = append(disable[rt], n)
			for _, i := range owners[n] {
				done[i].Disabled = append(done[i].Disabled, n)
			}
		}
	}

	// Stop and disable. On systemd the disable (unit files and a
	// daemon-reload) runs while the stop jobs run: neither waits for the
	// other, and PID 1 keeps its jobs across the reload. On SysV
	// update-rc.d runs after the scripts, as `service` would.
	var stopErrs map[string]error
	disErrs := map[string]error{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		stopErrs = units.StopAll(ctx, init, stop)
	}()
	disableAll := func() {
		for _, rt := range []bool{false, true} {
			for n, err := range units.DisableAll(ctx, init, disable[rt], rt) {
				disErrs[n] = err
			}
		}
	}
	if init == units.Systemd {
		disableAll()
		// A socket unit's port is held by PID 1: its Listen= says
		// whose it is (asked while the stop runs).
		var socks []string
		for _, n := range stop {
			if strings.HasSuffix(n, ".socket") {
				socks = append(socks, n)
			}
		}
		for u, ports := range units.SocketPorts(ctx, socks) {
			for _, p := range ports {
				portUnits[p] = appendNew(portUnits[p], u)
			}
		}
		wg.Wait()
	} else {
		wg.Wait()
		disableAll()
	}
	for _, m := range []map[string]error{stopErrs, disErrs} {
		for n, err := range m {
			if n == "" {
				blameAll(err)
				continue
			}
			for _, i := range owners[n] {
				blame(i, err)
			}
		}
	}

	var lsAfter []units.Listener
	lsDone = make(chan struct{})
	go func() {
		defer close(lsDone)
		lsAfter, lerr = units.Listening()
	}()
	after, err := units.ListAround(ctx, init, around)
	<-lsDone
	if err != nil {
		blameAll(err)
	}
	if lerr != nil {
		blameAll(lerr)
	}
	if err == nil && lerr == nil {
		seen = &hostView{list: after, ls: lsAfter}
	}

	// Side effects: the difference of the two lists, less the batch's
	// own units. Each goes to the steps it belongs to — a unit the step's
	// unit takes along (RequiredBy, BoundBy, ConsistsOf, Also), a SysV
	// script whose header names the step's unit — and one that belongs
	// to none of them to every step: a revert compares with the state now,
	// so a unit put back twice is put back once.
	if after != nil {
		side := diffUnits(before, after, mine)
		var fill []string
		for _, u := range side {
			if (u.Init == units.SysV && u.Status == units.StatusNotAsked) || (u.Init == units.Systemd && u.Enablement == "") {
				fill = append(fill, u.Name)
			}
		}
		// A SysV script whose only change is its rc links was not
		// asked its status around the stop; a systemd unit whose
		// enablement the lists did not read was not disabled by us (a
		// disable changes only the units it names): take those as
		// they are now.
		now, err := units.StatesOf(ctx, init, fill)
		if err != nil {
			blameAll(err)
		}
		for k, u := range side {
			n, ok := now[u.Name]
			if !ok {
				continue
			}
			if u.Init == units.SysV {
				side[k].Status, side[k].Active = n.Status, n.Active
			} else {
				side[k].Enablement = n.Enablement
			}
		}
		for _, u := range side {
			var to []int
			for i, a := range steps {
				if belongsTo(init, u.Name, a.Prior) {
					to = append(to, i)
				}
			}
			if len(to) == 0 {
				for i := range steps {
					to = append(to, i)
				}
			}
			for _, i := range to {
				done[i].SideEffects = append(done[i].SideEffects, u)
			}
		}
	}

	// Ports that closed: to the steps whose units (or side effects) held
	// them; one no known unit held to every step that stopped something.
	for _, port := range minus(units.Ports(lsBefore), units.Ports(lsAfter)) {
		var to []int
		for _, u := range portUnits[port] {
			for i := range steps {
				if slices.Contains(done[i].Stopped, u) || hasUnit(done[i].SideEffects, u) {
					to = appendNewInt(to, i)
				}
			}
		}
		if len(to) == 0 {
			for i := range steps {
				if len(done[i].Stopped) > 0 {
					to = append(to, i)
				}
			}
		}
		for _, i := range to {
			done[i].Ports = append(done[i].Ports, port)
		}
	}

	// Each step's unit as it is now.
	names := make([]string, len(steps))
	for i, a := range steps {
		names[i] = a.Prior.Unit.Name
	}
	afterStates, _ := units.PickOrAsk(ctx, init, after, names)
	for i, n := range names {
		done[i].After = afterStates[n]
	}
	return finish()
}

// belongsTo reports whether a side effect on unit name is one step p's
// stop or disable brings along.
func belongsTo(init units.Init, name string, p *ServicePrior) bool {
	if hasUnit(p.Related, name) || slices.Contains(p.Unit.Stoppers, name) || slices.Contains(p.Unit.Also, name) {
		return true
	}
	return init == units.SysV && units.HeaderNames(name, p.Unit.Name)
}

func appendNew(l []string, s string) []string {
	if s == "" || slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

func appendNewInt(l []int, x int) []int {
	if slices.Contains(l, x) {
		return l
	}
	return append(l, x)
}

// revertSet is what a revert of step a puts back, in start order:
// triggers (sockets first), related, side effects, then the unit itself.
func revertSet(a serviceArgs) []units.Unit {
	p := a.Prior
	var set []units.Unit
	add := func(u units.Unit) {
		if u.Name != "" && u.Exists() && !hasUnit(set, u.Name) {
			set = append(set, u)
		}
	}
	for _, t := range p.Triggers {
		add(t)
	}
	for _, r := range p.Related {
		add(r)
	}
	if a.Done != nil {
		for _, s := range a.Done.SideEffects {
			add(s)
		}
	}
	add(p.Unit)
	return set
}

// revertTogether puts back the prior state of every step (each with its
// Prior and, when its result was journaled, Done) and calls report once
// per step, as soon as that step's state is checked. It compares with the
// state now, so running it twice changes nothing.
//
// A unit several steps name (a side effect of one that is another's
// unit, a trigger two services share) is wanted as the step it belongs to
// recorded it (its own unit, trigger or related unit before its side
// effects), else as the first step to name it recorded it.
func revertTogether(ctx context.Context, steps []serviceArgs, report func(i int, err error)) {
	if len(steps) == 0 {
		return
	}
	init := steps[0].Prior.Init
	sets := make([][]units.Unit, len(steps))
	errs := make([][]string, len(steps))
	users := map[string][]int{} // unit → steps whose set holds it
	want := map[string]units.Unit{}
	strong := map[string]bool{} // want comes from a prior, not a side effect
	var order []string
	for i, a := range steps {
		sets[i] = revertSet(a)
		for _, u := range sets[i] {
			users[u.Name] = append(users[u.Name], i)
			fromPrior := a.Done == nil || !hasUnit(a.Done.SideEffects, u.Name) || hasUnit(a.Prior.Related, u.Name) || hasUnit(a.Prior.Triggers, u.Name) || u.Name == a.Prior.Unit.Name
			if _, ok := want[u.Name]; !ok || (fromPrior && !strong[u.Name]) {
				if !ok {
					order = append(order, u.Name)
				}
				want[u.Name] = u
				strong[u.Name] = fromPrior
			}
		}
	}
	own := map[string]bool{} // a step's own unit: stopped again if it runs now
	for _, a := range steps {
		own[a.Prior.Unit.Name] = true
	}
	blame := func(names map[string]error) {
		for n, err := range names {
			if n == "" {
				for i := range steps {
					errs[i] = append(errs[i], err.Error())
				}
				continue
			}
			for _, i := range users[n] {
				errs[i] = append(errs[i], err.Error())
			}
		}
	}
	note := func(name string, err error) {
		if err != nil {
			blame(map[string]error{name: err})
		}
	}

	// Files first (mask, enablement, rc links), for every step.
	if init == units.SysV {
		for _, n := range order {
			// Only the links matter here: no status script run.
			links, err := units.RCLinks(n)
			if err != nil {
				note(n, err)
				continue
			}
			if !slices.Equal(links, want[n].RCLinks) {
				note(n, units.SetRCLinks(n, want[n].RCLinks))
			}
		}
	} else {
		cur, err := units.StatesOf(ctx, init, order)
		if err != nil {
			blame(map[string]error{"": err})
		}
		var unmask, mask [2][]string // [runtime]
		for _, n := range order {
			w, c := want[n], cur[n]
			switch {
			case w.Masked && !c.Masked:
				mask[b2i(w.Enablement == "masked-runtime")] = append(mask[b2i(w.Enablement == "masked-runtime")], n)
			case !w.Masked && c.Masked:
				unmask[b2i(c.Enablement == "masked-runtime")] = append(unmask[b2i(c.Enablement == "masked-runtime")], n)
			}
		}
		for rt := range 2 {
			blame(units.MaskAll(ctx, mask[rt], rt == 1))
			blame(units.UnmaskAll(ctx, unmask[rt], rt == 1))
		}
		var again []string // unmasked: their enablement is new
		for rt := range 2 {
			again = append(again, unmask[rt]...)
		}
		if len(again) > 0 {
			re, err := units.StatesOf(ctx, init, again)
			if err != nil {
				blame(map[string]error{"": err})
			}
			for n, u := range re {
				cur[n] = u
			}
		}
		var enable, disable [2][]string
		for _, n := range order {
			w, c := want[n], cur[n]
			if w.Masked || c.Masked || w.Enablement == "" || c.Enablement == w.Enablement {
				continue
			}
			if ok, rt := disableable(w.Enablement); ok {
				enable[b2i(rt)] = append(enable[b2i(rt)], n)
			} else if w.Enablement == "disabled" {
				if ok, rt := disableable(c.Enablement); ok {
					disable[b2i(rt)] = append(disable[b2i(rt)], n)
				}
			}
		}
		for rt := range 2 {
			blame(units.EnableAll(ctx, init, enable[rt], rt == 1))
			blame(units.DisableAll(ctx, init, disable[rt], rt == 1))
		}
	}

	// Then running state: what must run again starts in one go; a step's
	// own unit that was stopped before the break and runs now (someone
	// started it) is stopped: exactly the prior state.
	now, err := units.StatesOf(ctx, init, order)
	if err != nil {
		blame(map[string]error{"": err})
	}
	settled := map[string]units.Unit{} // not started or stopped since
	var start, stop []string
	for _, n := range order {
		w, c := want[n], now[n]
		switch {
		case w.Running() && !c.Running():
			start = append(start, n)
		case !w.Running() && c.Running() && own[n]:
			stop = append(stop, n)
		default:
			settled[n] = c
		}
	}
	blame(units.StopAll(ctx, init, stop))
	blame(units.StartAll(ctx, init, start))

	// Check what each step reached, reporting each as it is known. A
	// daemon that forks (redis-server's init script) may have its pid
	// file a moment after `start` returned, so a running-state mismatch
	// is asked again for a few seconds. A unit left as it was is not
	// asked again.
	var wg sync.WaitGroup
	for i := range steps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := append([]string{}, errs[i]...)
			for _, w := range sets[i] {
				cur, ok := settled[w.Name]
				var err error
				for deadline := time.Now().Add(settleTimeout); !ok; {
					cur, err = units.State(ctx, init, w.Name)
					if err != nil || cur.Running() == w.Running() || time.Now().After(deadline) || ctx.Err() != nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil && !errors.Is(err, units.ErrNotFound) {
					e = append(e, err.Error())
					continue
				}
				if cur.Running() != w.Running() || (w.Enablement != "" && cur.Enablement != w.Enablement) || cur.Masked != w.Masked {
					e = append(e, fmt.Sprintf("%s: want %s, have %s", w.Name, stateWords(w), stateWords(cur)))
				}
			}
			if len(e) > 0 {
				report(i, errors.New(strings.Join(dedup(e), "; ")))
			} else {
				report(i, nil)
			}
		}()
	}
	wg.Wait()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// hostView is what applyTogether saw once every stop had ended: the unit
// list (ListAround of the batch's units) and the listening sockets.
type hostView struct {
	list []units.Unit
	ls   []units.Listener
}
