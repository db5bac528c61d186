package sshx

import (
	"context"
	"sync"
)

// Pool keeps one connection per target, shared by everything that works
// on that host, and redials a connection that has died. Concurrent Gets
// for the same target wait for one dial.
type Pool struct {
	opts  Options
	mu    sync.Mutex
	conns map[Target]*poolEntry
}

type poolEntry struct {
	ready chan struct{}
	conn  *Conn
	err   error
}

// NewPool returns a pool dialing with opts.
func NewPool(opts Options) *Pool {
	return &Pool{opts: opts, conns: map[Target]*poolEntry{}}
}

// Get returns the live connection for t, dialing it if needed. A failed
// dial is not cached: the next Get tries again.
func (p *Pool) Get(ctx context.Context, t Target) (*Conn, error) {
	for {
		p.mu.Lock()
		e, ok := p.conns[t]
		if !ok {
			e = &poolEntry{ready: make(chan struct{})}
			p.conns[t] = e
			p.mu.Unlock()
			e.conn, e.err = Dial(ctx, t, p.opts)
			if e.err != nil {
				p.mu.Lock()
				delete(p.conns, t)
				p.mu.Unlock()
			}
			close(e.ready)
			return e.conn, e.err
		}
		p.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		if e.conn.Err() == nil {
			return e.conn, nil
		}
		// Dead: forget it and dial again.
		p.mu.Lock()
		if p.conns[t] == e {
			delete(p.conns, t)
		}
		p.mu.Unlock()
	}
}

// Close closes every connection in the pool.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for t, e := range p.conns {
		select {
		case <-e.ready:
			if e.conn != nil {
				e.conn.Close()
			}
		default:
		}
		delete(p.conns, t)
	}
	return nil
}
