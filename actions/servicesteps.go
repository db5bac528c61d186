package actions

import (
	"context"

	"github.com/holiday-ops/holiday/internal/journal"
)

// journalWrite appends one entry to the host's journal, fsynced.
type journalWrite = func(journal.Entry) error

// batch makes all of a host's consecutive service steps one
// service-batch session (servicebatch.go), when its agent can stream.
func (Service) batch(h *Host, steps []Step) (stepBatch, bool) {
	if _, ok := h.Agent.(streamer); !ok {
		return nil, false
	}
	svcs := make([]Service, len(steps))
	for i, s := range steps {
		svc, ok := s.Action.(Service)
		if !ok {
			return nil, false
		}
		svcs[i] = svc
	}
	return &serviceSteps{h: h, svcs: svcs}, true
}

func (Service) revertBatch(ctx context.Context, o *Options, write journalWrite, h *Host, items []revertItem) ([]error, bool) {
	return revertServices(ctx, o, write, h, items)
}

// serviceSteps adapts a service-batch session to the runner's phases.
type serviceSteps struct {
	h    *Host
	svcs []Service
	sb   *serviceBatch
	n    int
}

func (b *serviceSteps) Observe(ctx context.Context) ([]Record, []error, error) {
	sb, priors, errs, err := startServiceBatch(ctx, b.h, b.svcs)
	if err != nil {
		return nil, nil, err
	}
	// All of them: the agent stops them together and takes the unit
	// lists once for all (servicetogether.go).
	b.sb, b.n = sb, len(priors)
	return priors, errs, nil
}

func (b *serviceSteps) Store(ctx context.Context, copy *JournalCopy) (string, error, error) {
	return b.sb.Store(b.n, copy)
}

func (b *serviceSteps) Apply(ctx context.Context) ([]Record, []error, error) {
	return b.sb.Apply(b.n)
}

func (b *serviceSteps) Close() {
	if b.sb != nil {
		b.sb.Close()
	}
}
