package runlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// OpName is the agent operation that holds the host's run lock.
const OpName = "run-lock"

// HostPath is the host's lock file. It lives on disk, not in /run, so a
// record left by a run the host's reboot cut short is recognised (by its
// boot id) and reported when the next run takes the lock over.
var HostPath = "/var/lib/holiday/run.lock"

// The run-lock session:
//
//	control → agent  request: the Holder
//	agent → control  result:  {busy: holder}            when another run holds it
//	            or   message: {held: true, stale: …}    it is ours, until:
//	control → agent  message: {release: true}           (or EOF: the run died)
//	agent → control  result:  {released: true}
//
// The agent holds the flock for as long as the session lives: if the
// control node dies, sshd ends the session, the agent sees EOF and
// exits, and the kernel drops the lock; the record it leaves reads as
// stale to the next run.

type hostMsg struct {
	Held     bool    `json:"held,omitempty"`
	Busy     *Holder `json:"busy,omitempty"`
	Stale    *Stale  `json:"stale,omitempty"`
	Release  bool    `json:"release,omitempty"`
	Released bool    `json:"released,omitempty"`
}

// Handler is the host side, for the agent to register.
func Handler() agent.Handler {
	return agent.Handler{Name: OpName, Class: agent.ClassChange, Run: hostOp}
}

func hostOp(ctx context.Context, op *agent.Op) (any, error) {
	var me Holder
	if err := json.Unmarshal(op.Args, &me); err != nil {
		return nil, fmt.Errorf("run-lock: decoding arguments: %w", err)
	}
	if me.Run == "" {
		return nil, errors.New("run-lock: no run named")
	}
	me.PID, me.BootID = os.Getpid(), BootID()
	l, stale, err := take(HostPath, "on the host", me, whyGone)
	var be *BusyError
	if errors.As(err, &be) {
		return hostMsg{Busy: &be.Holder}, nil
	}
	if err != nil {
		return nil, err
	}
	defer l.Release()
	if stale != nil {
		op.Log.Warn("run lock taken over", "stale", stale.String())
	}
	if err := op.Conn.WriteJSON(agentproto.FrameMessage, hostMsg{Held: true, Stale: stale}); err != nil {
		return nil, err
	}
	// Held until the control node says so or goes away.
	var m hostMsg
	if err := op.Conn.ReadJSON(agentproto.FrameMessage, &m); err != nil {
		return nil, err
	}
	if err := l.Release(); err != nil {
		return nil, fmt.Errorf("run-lock: releasing: %w", err)
	}
	return hostMsg{Released: true}, nil
}

// Starter runs a streaming agent operation (*agentctl.Agent).
type Starter interface {
	Start(ctx context.Context, op string, args any) (*agentctl.Stream, error)
}

// ownStarter starts an operation on a session of its own
// (*agentctl.Agent).
type ownStarter interface {
	StartOwn(ctx context.Context, op string, args any) (*agentctl.Stream, error)
}

// HostLock is a run lock held on a host by an agent session.
type HostLock struct {
	s *agentctl.Stream
}

// Host takes the run lock on the host behind a. The session lives on
// ctx, which should outlive the run's own cancellation (a revert after
// Ctrl-C still holds the lock): pass context.WithoutCancel of the run's.
// A busy host is a *BusyError naming the other run.
func Host(ctx context.Context, a Starter, me Holder) (*HostLock, *Stale, error) {
	start := a.Start
	if o, ok := a.(ownStarter); ok {
		// the lock keeps its session for the whole run: not the one
		// prepared for the run's next operation
		start = o.StartOwn
	}
	s, err := start(ctx, OpName, me)
	if err != nil {
		return nil, nil, err
	}
	t, p, err := s.ReadFrame()
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("run lock: %w", err)
	}
	switch t {
	case agentproto.FrameMessage:
		var m hostMsg
		if err := json.Unmarshal(p, &m); err != nil || !m.Held {
			s.Close()
			return nil, nil, fmt.Errorf("run lock: unexpected answer %q", p)
		}
		return &HostLock{s: s}, m.Stale, nil
	case agentproto.FrameResult:
		defer s.Close()
		var r agentproto.Result
		if err := json.Unmarshal(p, &r); err != nil {
			return nil, nil, fmt.Errorf("run lock: decoding the answer: %w", err)
		}
		if r.Error != nil {
			return nil, nil, fmt.Errorf("run lock: %w", r.Error)
		}
		var m hostMsg
		if err := json.Unmarshal(r.Value, &m); err != nil || m.Busy == nil {
			return nil, nil, fmt.Errorf("run lock: unexpected answer %q", r.Value)
		}
		return nil, nil, &BusyError{Where: "on the host", Holder: *m.Busy}
	}
	s.Close()
	return nil, nil, fmt.Errorf("run lock: unexpected %s frame", t)
}

// Release tells the agent to drop the lock and waits for it. Safe to
// call twice; after a failure the session is closed, which drops the
// lock too (the agent exits on EOF).
func (l *HostLock) Release() error {
	if l == nil || l.s == nil {
		return nil
	}
	s := l.s
	l.s = nil
	defer s.Close()
	if err := s.WriteJSON(agentproto.FrameMessage, hostMsg{Release: true}); err != nil {
		return err
	}
	return s.Result(nil)
}
