package integrity

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/holiday-ops/holiday/internal/agent"
)

// OpCollect is the agent operation that returns a [State] of the host it
// runs on, for a baseline (zero Args) or a check.
const OpCollect = "integrity-collect"

func init() {
	agent.Register(agent.Handler{Name: OpCollect, Class: agent.ClassRead, Run: runCollect})
}

func runCollect(ctx context.Context, op *agent.Op) (any, error) {
	var a Args
	if len(op.Args) > 0 {
		if err := json.Unmarshal(op.Args, &a); err != nil {
			return nil, fmt.Errorf("integrity-collect: bad arguments: %w", err)
		}
	}
	return Collect(ctx, "/", a), nil
}

// CheckArgs are the arguments of a check's collection against base.
func CheckArgs(base *State, webRoots []string) Args {
	return Args{WebRoots: webRoots, Since: base.Taken, Logs: base.Logs, CrossView: true}
}

// Caller runs one agent operation; *agentctl.Agent is one.
type Caller interface {
	Call(ctx context.Context, op string, args, result any) error
}

// CollectOn runs a collection on a host through its agent. For a check,
// the agent must be a fresh upload (agentctl.Options.Fresh): a cached
// binary on a possibly compromised host is not trusted.
func CollectOn(ctx context.Context, ag Caller, a Args) (*State, error) {
	var st State
	if err := ag.Call(ctx, OpCollect, a, &st); err != nil {
		return nil, fmt.Errorf("collect the host's state: %w", err)
	}
	if st.Format != FormatVersion {
		return nil, fmt.Errorf("the agent answered format %d, this holiday reads %d: %w", st.Format, FormatVersion, ErrFormat)
	}
	return &st, nil
}

func init() {
	agent.Register(agent.Handler{Name: OpEvidence, Class: agent.ClassRead, Run: runEvidence})
}

// runEvidence streams the evidence tar as Data frames, ends it with EOF
// (also after a failure, so the control node's reader stops), and returns
// the Acquisition.
func runEvidence(ctx context.Context, op *agent.Op) (any, error) {
	var a EvidenceArgs
	if len(op.Args) > 0 {
		if err := json.Unmarshal(op.Args, &a); err != nil {
			return nil, fmt.Errorf("integrity-evidence: bad arguments: %w", err)
		}
	}
	dw := op.Conn.DataWriter()
	acq, err := Acquire(ctx, "/", a, dw)
	if cerr := dw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("integrity-evidence: %w", err)
	}
	return acq, nil
}
