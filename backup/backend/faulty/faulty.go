// Package faulty wraps a backend and injects failures for tests: fail the
// Nth save or load, truncate or corrupt what a load returns, store other
// bytes than a save was given, or let another writer's file appear right
// after a save (a racing lock); and it lets a test watch the loads.
//
// It must never import the repository (backup/repo) or anything above
// backup.
package faulty

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/holiday-ops/holiday/backup/backend"
)

// ErrInjected is the error a planned failure returns.
var ErrInjected = errors.New("injected failure")

// Backend is a backend.Backend with faults scheduled on it.
type Backend struct {
	backend.Backend

	mu        sync.Mutex
	saves     int
	loads     int
	FailSave  map[int]bool // 1-based numbers of Save calls that fail
	FailLoad  map[int]bool // 1-based numbers of Load calls that fail
	Truncate  map[int]int  // Load number → bytes to drop from its end
	Corrupt   map[int]int  // Load number → offset in the returned range whose byte is flipped
	OnlyTypes map[backend.FileType]bool
	// Mangle, when set, is given the bytes of each counted Save and
	// returns what is stored instead, the Save succeeding: a store that
	// loses or damages what it was given (nil keeps them).
	Mangle func(h backend.Handle, b []byte) []byte
	// OnLoad, when set, is called at each counted Load, before it runs.
	OnLoad func(h backend.Handle, length int, offset int64)
	// AfterSave, when set, runs after every Save that stored its file,
	// before Save returns: what another process writes at that moment
	// (a conflicting lock that appears just after this one's was
	// written). Its own saves through the wrapper call it again.
	AfterSave func(h backend.Handle)
}

// New wraps be with no faults scheduled.
func New(be backend.Backend) *Backend {
	return &Backend{Backend: be, FailSave: map[int]bool{}, FailLoad: map[int]bool{}, Truncate: map[int]int{}, Corrupt: map[int]int{}}
}

func (b *Backend) counts(h backend.Handle) bool {
	return b.OnlyTypes == nil || b.OnlyTypes[h.Type]
}

// Save fails with ErrInjected when its number is scheduled, storing
// nothing; with Mangle, it stores what Mangle makes of the bytes.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker) error {
	if b.counts(h) {
		b.mu.Lock()
		b.saves++
		fail := b.FailSave[b.saves]
		b.mu.Unlock()
		if fail {
			return ErrInjected
		}
		if b.Mangle != nil {
			if _, err := rd.Seek(0, io.SeekStart); err != nil {
				return err
			}
			buf, err := io.ReadAll(rd)
			if err != nil {
				return err
			}
			if m := b.Mangle(h, buf); m != nil {
				buf = m
			}
			return b.Backend.Save(ctx, h, bytes.NewReader(buf))
		}
	}
	if err := b.Backend.Save(ctx, h, rd); err != nil {
		return err
	}
	if b.AfterSave != nil {
		b.AfterSave(h)
	}
	return nil
}

// Load fails, truncates or corrupts as scheduled.
func (b *Backend) Load(ctx context.Context, h backend.Handle, length int, offset int64) (io.ReadCloser, error) {
	if !b.counts(h) {
		return b.Backend.Load(ctx, h, length, offset)
	}
	if b.OnLoad != nil {
		b.OnLoad(h, length, offset)
	}
	b.mu.Lock()
	b.loads++
	n := b.loads
	fail := b.FailLoad[n]
	trunc, doTrunc := b.Truncate[n]
	corrupt, doCorrupt := b.Corrupt[n]
	b.mu.Unlock()
	if fail {
		return nil, ErrInjected
	}
	rd, err := b.Backend.Load(ctx, h, length, offset)
	if err != nil || (!doTrunc && !doCorrupt) {
		return rd, err
	}
	defer rd.Close()
	buf, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	if doTrunc {
		buf = buf[:max(0, len(buf)-trunc)]
	}
	if doCorrupt && corrupt < len(buf) {
		buf[corrupt] ^= 0x01
	}
	return io.NopCloser(bytes.NewReader(buf)), nil
}
