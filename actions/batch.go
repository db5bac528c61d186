package actions

import (
	"context"
	"fmt"
)

// A stepBatch is consecutive steps of one host that the runner takes as
// one unit of work, in the runner's phases:
//
//	Observe   every step's prior state (read-only)
//	          — the runner journals every intent, fsynced —
//	Store     the host's journal copy, holding those intents, before any change
//	Apply     apply and verify; each step's done record and error
//
// A batch may take fewer steps than it was offered (Observe returns
// fewer priors); the runner offers the rest again as the next batch.
// Kinds that can do several steps in one agent session (services)
// implement batcher; every other step is a batch of one (single).
type stepBatch interface {
	Observe(ctx context.Context) (priors []Record, errs []error, err error)
	Store(ctx context.Context, copy *JournalCopy) (path string, copyErr, err error)
	Apply(ctx context.Context) (done []Record, errs []error, err error)
	Close()
}

// batcher is an Action kind whose consecutive steps on a host run as one
// batch.
type batcher interface {
	batch(h *Host, steps []Step) (stepBatch, bool)
}

// batchReverter is an Action kind whose consecutive reverts on a host run
// as one agent session; ok false: do them one by one.
type batchReverter interface {
	revertBatch(ctx context.Context, o *Options, write journalWrite, h *Host, items []revertItem) (errs []error, ok bool)
}

// resultNoter is an Action kind that adds to its host's result once
// applied (power: how the host comes back).
type resultNoter interface {
	noteApplied(hr *HostResult, prior, done Record)
}

// nextBatch returns the batch for steps[i:] on h.
func nextBatch(h *Host, steps []Step, i int) stepBatch {
	first := steps[i]
	if b, ok := first.Action.(batcher); ok {
		n := 1
		for i+n < len(steps) && steps[i+n].Kind == first.Kind && steps[i+n].Slot == first.Slot {
			n++
		}
		if sb, ok := b.batch(h, steps[i:i+n]); ok {
			return sb
		}
	}
	return &single{h: h, s: first}
}

// single is one step as a batch: the Action's own Observe, Apply and
// Verify, and the journal copy pushed with journal-put.
type single struct {
	h     *Host
	s     Step
	prior Record
}

func (b *single) Observe(ctx context.Context) ([]Record, []error, error) {
	p, err := b.s.Action.Observe(ctx, b.h)
	b.prior = p
	return []Record{p}, []error{err}, nil
}

func (b *single) Store(ctx context.Context, copy *JournalCopy) (string, error, error) {
	if copy == nil {
		return "", nil, nil
	}
	var out struct {
		Path string `json:"path"`
	}
	if err := b.h.Agent.Call(ctx, "journal-put", copy, &out); err != nil {
		return "", err, nil // the runner warns and goes on
	}
	return out.Path, nil, nil
}

func (b *single) Apply(ctx context.Context) ([]Record, []error, error) {
	rec, err := b.s.Action.Apply(ctx, b.h, b.prior)
	if err == nil {
		if verr := b.s.Action.Verify(ctx, b.h, rec); verr != nil {
			err = fmt.Errorf("applied, but verify failed: %w", verr)
		}
	}
	return []Record{rec}, []error{err}, nil
}

func (b *single) Close() {}
