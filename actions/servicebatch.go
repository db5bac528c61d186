package actions

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/journal"
)

// A batch of service steps runs as ONE agent operation ("service-batch",
// one SSH session) instead of an observe, an apply and a verify session
// per step plus a session for the journal copy. The write-ahead order
// holds inside the session, step by step of the protocol:
//
//	control → agent  request: the units (and the batch's names)
//	agent → control  message: every unit's prior state (observe)
//	                 the control node journals every intent, fsynced
//	control → agent  message: how many to apply, and the journal copy
//	agent → control  message: copy stored (fsynced) on the host
//	control → agent  message: go            (crash point after-intent)
//	agent → control  result:  each step's done record and verify error
//
// Nothing changes on the host before "go", which the control node sends
// only once the intents are fsynced on it and the host holds their copy.
// A session that ends before "go" (the control node died) changes
// nothing. After "go" the agent stops and disables all the units together
// (applyTogether: one systemctl stop, one disable, the unit list once
// before and once after). Verify runs on the host after that, the same
// check (serviceVerify) as a separate service-verify session.
//
// The results come back all at once, when the whole stop is over, not
// step by step: a step's done record holds its side effects, the
// difference of the unit lists before and after, and the "after" list
// exists only once every stop of the batch has ended. A step's result
// journaled earlier would lack them, and a crash then would leave a
// restore that does not put them back. (A crash before the results are
// journaled is after-apply: the restore works from the priors, which
// name the units a stop takes along.)

type batchReq struct {
	Names []string `json:"names"`
}

type batchPriors struct {
	Priors []ServicePrior `json:"priors"`
	Errors []string       `json:"errors"` // per unit, "" when observed
}

type batchGo struct {
	Apply int          `json:"apply"` // the first Apply units; 0 aborts
	Copy  *JournalCopy `json:"copy,omitempty"`
	Go    bool         `json:"go,omitempty"`
}

type batchStored struct {
	Path  string `json:"path,omitempty"`
	Error string `json:"error,omitempty"`
}

type batchResult struct {
	Done   []ServiceDone `json:"done"`
	Errors []string      `json:"errors"` // per unit: the call failed
	Verify []string      `json:"verify"` // per unit: verify's failure
}

// streamer is an agent that can run a streaming operation
// (*agentctl.Agent).
type streamer interface {
	Start(ctx context.Context, op string, args any) (*agentctl.Stream, error)
}

// serviceBatch is one service-batch session from the control node.
type serviceBatch struct {
	s     *agentctl.Stream
	svcs  []Service
	taken bool
}

// startServiceBatch opens the session and reads the priors. It returns
// nil, nil when h's agent can't stream (then the runner calls each
// step's Observe/Apply/Verify).
func startServiceBatch(ctx context.Context, h *Host, svcs []Service) (*serviceBatch, []Record, []error, error) {
	st, ok := h.Agent.(streamer)
	if !ok {
		return nil, nil, nil, nil
	}
	req := batchReq{Names: make([]string, len(svcs))}
	for i, s := range svcs {
		req.Names[i] = s.Name
	}
	s, err := st.Start(ctx, "service-batch", req)
	if err != nil {
		return nil, nil, nil, err
	}
	b := &serviceBatch{s: s, svcs: svcs}
	var p batchPriors
	if err := s.ReadJSON(agentproto.FrameMessage, &p); err != nil {
		b.Close()
		return nil, nil, nil, fmt.Errorf("%s: service-batch: %w", h.Name, err)
	}
	if len(p.Priors) != len(svcs) || len(p.Errors) != len(svcs) {
		b.Close()
		return nil, nil, nil, fmt.Errorf("%s: service-batch: %d priors for %d units", h.Name, len(p.Priors), len(svcs))
	}
	recs := make([]Record, len(svcs))
	errs := make([]error, len(svcs))
	for i := range svcs {
		if p.Errors[i] != "" {
			errs[i] = errors.New(p.Errors[i])
			continue
		}
		recs[i], errs[i] = NewRecord(KindService, svcs[i].Name, p.Priors[i])
	}
	return b, recs, errs, nil
}

// Store sends the journal copy (holding the first n intents) and waits
// until the host has it fsynced. copy nil: no host copy (NoHostCopy).
// A copy the host could not store is failed (the runner warns, as after
// a failed journal-put); err is the session's failure.
func (b *serviceBatch) Store(n int, copy *JournalCopy) (path string, failed, err error) {
	if err := b.s.WriteJSON(agentproto.FrameMessage, batchGo{Apply: n, Copy: copy}); err != nil {
		return "", nil, err
	}
	var st batchStored
	if err := b.s.ReadJSON(agentproto.FrameMessage, &st); err != nil {
		return "", nil, err
	}
	if st.Error != "" {
		return "", errors.New(st.Error), nil
	}
	return st.Path, nil, nil
}

// Apply says go and returns each of the first n steps' done record and
// error (apply's, else verify's, worded as the runner's).
func (b *serviceBatch) Apply(n int) ([]Record, []error, error) {
	b.taken = true
	if err := b.s.WriteJSON(agentproto.FrameMessage, batchGo{Apply: n, Go: true}); err != nil {
		return nil, nil, err
	}
	var r batchResult
	if err := b.s.Result(&r); err != nil {
		return nil, nil, err
	}
	if len(r.Done) != n || len(r.Errors) != n || len(r.Verify) != n {
		return nil, nil, fmt.Errorf("service-batch: %d results for %d units", len(r.Done), n)
	}
	recs := make([]Record, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		if r.Errors[i] != "" {
			errs[i] = errors.New(r.Errors[i])
			continue
		}
		recs[i], errs[i] = NewRecord(KindService, b.svcs[i].Name, r.Done[i])
		switch {
		case errs[i] != nil:
		case r.Done[i].Error != "":
			errs[i] = errors.New(r.Done[i].Error)
		case r.Verify[i] != "":
			errs[i] = fmt.Errorf("applied, but verify failed: %s", r.Verify[i])
		}
	}
	return recs, errs, nil
}

// Close ends the session; before Apply it tells the agent to change
// nothing.
func (b *serviceBatch) Close() {
	if !b.taken {
		b.s.WriteJSON(agentproto.FrameMessage, batchGo{Apply: 0})
	}
	b.s.Close()
}

// --- host side ---

func serviceBatchOp(ctx context.Context, op *agent.Op) (any, error) {
	var req batchReq
	if err := jsonUnmarshal(op.Args, &req); err != nil {
		return nil, err
	}
	if len(req.Names) == 0 {
		return nil, errors.New("no service names")
	}
	p := batchPriors{Priors: make([]ServicePrior, len(req.Names)), Errors: make([]string, len(req.Names))}
	// Observing only reads: every unit at once.
	priors, errs := observeTogether(ctx, req.Names)
	for i := range priors {
		if errs[i] != nil {
			p.Errors[i] = errs[i].Error()
			continue
		}
		p.Priors[i] = priors[i]
	}
	if err := op.Conn.WriteJSON(agentproto.FrameMessage, p); err != nil {
		return nil, err
	}
	var g batchGo
	if err := op.Conn.ReadJSON(agentproto.FrameMessage, &g); err != nil {
		return nil, err
	}
	if g.Apply <= 0 || g.Apply > len(req.Names) {
		return batchResult{}, nil // the control node changes nothing
	}
	var st batchStored
	if g.Copy != nil {
		path, err := journalStore(*g.Copy)
		if err != nil {
			st.Error = "storing the journal copy: " + err.Error()
		}
		st.Path = path
	}
	// A copy that could not be stored is the control node's call (it
	// warns and goes on, as after a failed journal-put).
	if err := op.Conn.WriteJSON(agentproto.FrameMessage, st); err != nil {
		return nil, err
	}
	var gogo batchGo
	if err := op.Conn.ReadJSON(agentproto.FrameMessage, &gogo); err != nil {
		return nil, err
	}
	n := gogo.Apply
	if !gogo.Go || n <= 0 || n > len(req.Names) {
		return batchResult{}, nil
	}
	r := batchResult{Done: make([]ServiceDone, n), Errors: make([]string, n), Verify: make([]string, n)}
	steps := make([]serviceArgs, n)
	for i, name := range req.Names[:n] {
		steps[i] = serviceArgs{Name: name, Prior: &p.Priors[i]}
	}
	// All of them together (servicetogether.go); only the units applied
	// now are left out of each other's side effects (the control node
	// may cut the batch to n).
	var seen *hostView
	v, err := lockedShared(func(ctx context.Context, _ serviceArgs) (any, error) {
		done, s := applyTogether(ctx, steps, nil)
		seen = s
		return done, nil
	})(ctx, serviceArgs{})
	if err != nil {
		for i := range r.Errors {
			r.Errors[i] = err.Error()
		}
		return r, nil
	}
	r.Done = v.([]ServiceDone)
	// Verify after every apply of the batch, as separate sessions
	// would, from what the apply saw once all its stops had ended.
	var check []serviceArgs
	var at []int
	for i := range steps {
		if r.Done[i].Error == "" {
			check = append(check, serviceArgs{Name: steps[i].Name, Done: &r.Done[i]})
			at = append(at, i)
		}
	}
	for k, err := range verifyTogether(ctx, check, seen) {
		if err != nil {
			r.Verify[at[k]] = err.Error()
		}
	}
	return r, nil
}

// othersOf returns names without names[i].
func othersOf(names []string, i int) []string {
	var out []string
	for k, n := range names {
		if k != i {
			out = append(out, n)
		}
	}
	return out
}

// A run of service reverts is one agent operation too
// ("service-revert-batch"): the control node journals every revert
// intent, fsynced, then sends the steps in revert order; the agent
// reverts them together (every step's files, then one start of all that
// must run again) and reports each step as soon as its state is checked,
// which the control node journals as it arrives. If the control node dies
// half-way, the agent still finishes (reverting is the safe direction);
// a restore after that finds results missing and reverts again, which
// changes nothing twice (serviceRevert compares with the state now).

type revertBatchReq struct {
	Steps []serviceArgs `json:"steps"`
}

type revertBatchMsg struct {
	Index int    `json:"index"`
	Error string `json:"error,omitempty"`
}

// revertServices reverts items (all service steps, in revert order) in
// one session; it returns each item's error. ok is false when h's agent
// can't stream (the caller reverts them one by one).
func revertServices(ctx context.Context, o *Options, write func(journal.Entry) error, h *Host, items []revertItem) (errs []error, ok bool) {
	st, ok := h.Agent.(streamer)
	if !ok {
		return nil, false
	}
	errs = make([]error, len(items))
	failAll := func(from int, err error) []error {
		for k := from; k < len(items); k++ {
			errs[k] = err
			o.progress(Progress{Host: h.Name, Step: items[k].id(), What: "revert failed", Err: err})
		}
		return errs
	}
	req := revertBatchReq{Steps: make([]serviceArgs, len(items))}
	for k, it := range items {
		a, err := serviceRevertArgs(it.target, it.prior, it.done)
		if err != nil {
			return failAll(0, fmt.Errorf("%s: %w", it.id(), err)), true
		}
		req.Steps[k] = a
	}
	// Write-ahead: every intent is on disk before the host changes.
	for k, it := range items {
		if err := write(journal.Entry{Step: it.id(), Kind: it.kind, Phase: journal.RevertIntent}); err != nil {
			return failAll(k, err), true
		}
		o.progress(Progress{Host: h.Name, Step: it.id(), What: "revert"})
	}
	s, err := st.Start(ctx, "service-revert-batch", req)
	if err != nil {
		return failAll(0, err), true
	}
	defer s.Close()
	reported := make([]bool, len(items))
	for range items {
		var m revertBatchMsg
		if err := s.ReadJSON(agentproto.FrameMessage, &m); err != nil {
			// Which reverts the host finished is unknown: none is
			// journaled as done, and a restore again settles it.
			for k := range items {
				if errs[k] == nil && !reported[k] {
					errs[k] = err
				}
			}
			return errs, true
		}
		if m.Index < 0 || m.Index >= len(items) || reported[m.Index] {
			return failAll(0, fmt.Errorf("service-revert-batch: unexpected report for step %d", m.Index)), true
		}
		it := items[m.Index]
		reported[m.Index] = true
		e := journal.Entry{Step: it.id(), Kind: it.kind, Phase: journal.RevertResult}
		var rerr error
		if m.Error != "" {
			rerr = errors.New(m.Error)
			e.Error = m.Error
			o.progress(Progress{Host: h.Name, Step: it.id(), What: "revert failed", Err: rerr})
		} else {
			o.progress(Progress{Host: h.Name, Step: it.id(), What: "reverted"})
		}
		if err := write(e); err != nil && rerr == nil {
			rerr = err
		}
		errs[m.Index] = rerr
		o.crashAt(KindService, "mid-revert")
	}
	if err := s.Result(nil); err != nil {
		o.Log.Warn("service-revert-batch ended badly after every report", "host", h.Name, "err", err)
	}
	return errs, true
}

func serviceRevertArgs(name string, prior, done Record) (serviceArgs, error) {
	var p ServicePrior
	if err := prior.Decode(&p); err != nil {
		return serviceArgs{}, err
	}
	a := serviceArgs{Name: name, Prior: &p}
	if !done.IsZero() {
		var d ServiceDone
		if err := done.Decode(&d); err != nil {
			return serviceArgs{}, err
		}
		a.Done = &d
	}
	return a, nil
}

// serviceRevertBatchOp is the host side: every step's files, then one
// start of all that must run again, then each step checked and reported
// as soon as it is (revertTogether). A report that can't be sent (the
// control node is gone) does not stop the reverts.
func serviceRevertBatchOp(ctx context.Context, op *agent.Op) (any, error) {
	var req revertBatchReq
	if err := jsonUnmarshal(op.Args, &req); err != nil {
		return nil, err
	}
	for _, a := range req.Steps {
		if a.Name == "" || a.Prior == nil {
			return nil, errors.New("service-revert-batch: a step without its name or prior state")
		}
	}
	var mu sync.Mutex
	var gone error
	_, err := locked(func(ctx context.Context, _ serviceArgs) (any, error) {
		revertTogether(ctx, req.Steps, func(i int, err error) {
			m := revertBatchMsg{Index: i}
			if err != nil {
				m.Error = err.Error()
			}
			mu.Lock()
			defer mu.Unlock()
			if gone == nil {
				gone = op.Conn.WriteJSON(agentproto.FrameMessage, m)
			}
		})
		return nil, nil
	})(ctx, serviceArgs{})
	if err != nil {
		return nil, err
	}
	if gone != nil {
		return nil, gone
	}
	return map[string]int{"reverted": len(req.Steps)}, nil
}
