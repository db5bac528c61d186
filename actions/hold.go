package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/runlock"
)

// held is a host taken for a run: this control node's lock on it, the
// connection with its agent, and the host's own run lock (DESIGN §5: one
// run per host at a time). release gives all three back.
type held struct {
	h      *Host
	close  func()
	local  *runlock.Lock
	remote *runlock.HostLock
	notes  []string // stale locks taken over
}

func (hd *held) release() {
	if hd == nil {
		return
	}
	// A failed release needs nothing more: the session is closed either
	// way, and the agent drops the lock when its session ends.
	hd.remote.Release()
	if hd.close != nil {
		hd.close()
	}
	hd.local.Release()
}

// hold takes the host for a run of command: first this control node's
// lock (before connecting: two runs from one control node never both
// reach the host), then the connection, then the host's lock, held by an
// agent session for as long as the run. With o.Wait it queues behind a
// busy lock; otherwise a busy host fails at once with a *BusyError
// naming the other run. runCtx is the run's context: the host lock's
// session lives on it, uncancelled, so a revert after Ctrl-C still holds
// the lock.
func (o *Options) hold(ctx, runCtx context.Context, name string, connect func(context.Context) (*Host, func(), error)) (*held, error) {
	me := runlock.Me(o.RunID, o.command)
	hd := &held{}
	start := time.Now()
	waiting := func(be *runlock.BusyError) {
		o.progress(Progress{Host: name, What: "waiting", Err: be})
	}
	err := runlock.Wait(ctx, o.Wait, func() error {
		l, stale, err := runlock.Local(o.StateDir, name, me)
		if err != nil {
			return err
		}
		hd.local = l
		if stale != nil {
			hd.notes = append(hd.notes, "this control node "+stale.String())
		}
		return nil
	}, waiting)
	if err != nil {
		return nil, err
	}
	o.progress(Progress{Host: name, What: "connecting"})
	h, closeHost, err := connect(ctx)
	if err != nil {
		hd.release()
		return nil, &unreachableError{err}
	}
	hd.h, hd.close = h, closeHost
	st, ok := h.Agent.(runlock.Starter)
	if !ok {
		// Only the unit tests' fake hosts have no streaming agent; every
		// real one does.
		return hd, nil
	}
	if p, ok := h.Agent.(preparer); ok {
		// the agent of the host's next operation starts beside the
		// run lock's
		go func() {
			if _, err := p.Prepare(ctx); err != nil {
				o.Log.Debug("agent session for the next operation", "host", name, "err", err)
			}
		}()
	}
	err = runlock.Wait(ctx, o.Wait-time.Since(start), func() error {
		rl, stale, err := runlock.Host(context.WithoutCancel(runCtx), st, me)
		if err != nil {
			return err
		}
		hd.remote = rl
		if stale != nil {
			hd.notes = append(hd.notes, "the host "+stale.String())
		}
		return nil
	}, waiting)
	if err != nil {
		hd.release()
		return nil, err
	}
	for _, n := range hd.notes {
		o.progress(Progress{Host: name, What: n})
	}
	return hd, nil
}

// preparer starts the session of an agent's next operation ahead of it
// (agentctl.Agent).
type preparer interface {
	Prepare(ctx context.Context) (agentproto.Hello, error)
}

// unreachableError is a host that could not be reached (or its agent
// not started): nothing changed on it.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// holdStatus is the host status for a failed hold.
func holdStatus(err error) string {
	var ue *unreachableError
	switch {
	case errors.Is(err, runlock.ErrBusy):
		return HostBusy
	case errors.As(err, &ue):
		return HostUnreachable
	}
	return HostFailed
}

// holdError words a failed hold for the summary.
func holdError(err error) string {
	var be *runlock.BusyError
	if errors.As(err, &be) {
		return fmt.Sprintf("%v; nothing was changed on it (%s)", be, be.Hint())
	}
	return err.Error()
}
