package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/plans"
)

// An Action changes one thing on one host and can undo it (DESIGN §5).
//
//   - Observe returns the prior state. The runner journals it (fsynced)
//     before Apply touches the host.
//   - Apply makes the change and returns what it actually did — also when
//     it fails half-way, so Revert knows what to undo.
//   - Verify reports whether the change still holds on the host now.
//   - Revert puts back the prior state. It is idempotent, and must work
//     with done empty (a crash after the intent was journaled and before
//     the result was): then it works from prior alone.
type Action interface {
	Observe(ctx context.Context, h *Host) (Record, error)
	Apply(ctx context.Context, h *Host, prior Record) (Record, error)
	Verify(ctx context.Context, h *Host, done Record) error
	Revert(ctx context.Context, h *Host, prior, done Record) error
}

// Record is an action's view of one thing on one host: the prior state
// (from Observe) or what was done (from Apply). It is what the journal
// holds, as JSON; State is the kind's own type.
type Record struct {
	Kind   string          `json:"kind"`   // the action kind: service, power, hook, …
	Target string          `json:"target"` // what on the host: a unit name, …
	State  json.RawMessage `json:"state,omitempty"`
}

// IsZero reports whether r holds nothing (e.g. a result that was never
// journaled).
func (r Record) IsZero() bool { return r.Kind == "" && r.Target == "" && len(r.State) == 0 }

// NewRecord encodes state into a Record.
func NewRecord(kind, target string, state any) (Record, error) {
	p, err := json.Marshal(state)
	if err != nil {
		return Record{}, fmt.Errorf("%s %s: encoding record: %w", kind, target, err)
	}
	return Record{Kind: kind, Target: target, State: p}, nil
}

// Decode decodes r's State into v; an empty record leaves v alone.
func (r Record) Decode(v any) error {
	if len(r.State) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.State, v); err != nil {
		return fmt.Errorf("%s %s: decoding record: %w", r.Kind, r.Target, err)
	}
	return nil
}

// Caller runs one agent operation on a host: *agentctl.Agent's Call.
type Caller interface {
	Call(ctx context.Context, op string, args, result any) error
}

// Host is one host as actions see it: its plan entry and its agent.
type Host struct {
	Name  string
	Plan  *plans.Host // nil when restoring without the plan entry
	Agent Caller
	Info  agentctl.Info
	// Management are the plan's management ranges (the firewall keeps
	// them and the control node's address open).
	Management []netip.Prefix
	// Confirm proves the control node can still reach the host over a
	// NEW SSH connection (a fresh TCP handshake, not the shared one):
	// the firewall disarms its dead-man only after it succeeds. nil when
	// the host was reached without a way to dial again.
	Confirm func(ctx context.Context) error
	// Backups is the run's repository for the backup step; nil when the
	// run takes no backups.
	Backups *Backups
	// Baselines keeps the baseline step's snapshot; nil when the run
	// has no repository.
	Baselines BaselineStore
}

// Kind builds the Action for one step from its kind and target, as the
// journal names them: how restore finds the Action for a journaled step.
type Kind func(target string) (Action, error)

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// RegisterKind makes a kind known to restore. Registering twice panics.
func RegisterKind(name string, k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[name]; dup {
		panic("actions: kind registered twice: " + name)
	}
	kinds[name] = k
}

// ForKind returns the Action for a journaled step.
func ForKind(kind, target string) (Action, error) {
	kindsMu.RLock()
	k, ok := kinds[kind]
	kindsMu.RUnlock()
	if !ok {
		var names []string
		for n := range kinds {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown action kind %q (this build knows %v)", kind, names)
	}
	return k(target)
}
