package dbdump

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// VerifiedDump is a dump verified as it is read: every byte read from it
// is also given, in order, to Verify running beside the dump on this host
// (pg_restore --list and a full read, or the scratch restore; MySQL's
// marks or scratch load). Wait says the dump is whole and the verifier
// accepted exactly the bytes read, so a dump crosses SSH once.
type VerifiedDump struct {
	d      *Dump
	ch     chan []byte // copies of what was read, for the verifier
	closed bool
	rerr   error         // why the reader stopped early, for the verifier
	verr   chan error    // Verify's result
	free   chan []byte   // buffers handed back by the verifier
	cancel func()        // stops the verifier's tools when the dump is abandoned
	done   chan struct{} // closed when the verifier has returned
}

// verifyAhead bounds the dump the verifier may lag behind the reader (in
// buffers of up to verifyBuf): the chunker and the link do not wait for
// pg_restore's every read, nor pg_restore for theirs.
const (
	verifyAhead = 32
	verifyBuf   = 256 << 10
)

// StartVerified starts s's dump (Start) and Verify beside it on the same
// bytes, with scratch as Verify's.
func StartVerified(ctx context.Context, s Spec, scratch bool) (*VerifiedDump, error) {
	d, err := Start(ctx, s)
	if err != nil {
		return nil, err
	}
	vctx, cancel := context.WithCancel(ctx)
	v := &VerifiedDump{d: d, ch: make(chan []byte, verifyAhead), verr: make(chan error, 1), free: make(chan []byte, verifyAhead+1),
		cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(v.done)
		r := &chanReader{ch: v.ch, free: v.free, v: v}
		v.verr <- Verify(vctx, s, r, scratch)
		for b := range v.ch { // a verifier that returned early must not block the dump
			v.recycle(b)
		}
	}()
	return v, nil
}

// Read reads the dump and queues a copy of what it read for the verifier.
func (v *VerifiedDump) Read(p []byte) (int, error) {
	n, err := v.d.Read(p)
	for off := 0; off < n; off += verifyBuf {
		var b []byte
		select {
		case b = <-v.free:
		default:
			b = make([]byte, 0, verifyBuf)
		}
		v.ch <- append(b[:0], p[off:min(n, off+verifyBuf)]...)
	}
	if err != nil && !v.closed {
		if err != io.EOF {
			v.rerr = err
		}
		v.closed = true
		close(v.ch)
	}
	return n, err
}

func (v *VerifiedDump) recycle(b []byte) {
	select {
	case v.free <- b:
	default:
	}
}

// Wait returns nil only when the dump is whole (Dump.Wait) and the
// verifier accepted every byte of it; the dump's own failure is named
// first (it explains the verifier's).
func (v *VerifiedDump) Wait() error {
	derr := v.d.Wait()
	if !v.closed {
		// the reader stopped early: the verifier sees a stream cut short
		v.rerr, v.closed = errors.New("the dump was not read to its end"), true
		close(v.ch)
	}
	if derr != nil {
		v.cancel()
		<-v.done
		return derr
	}
	<-v.done
	v.cancel()
	if err := <-v.verr; err != nil {
		return fmt.Errorf("the dump was made but does not restore: %w", err)
	}
	return nil
}

// Bytes is how many bytes of the dump were read so far.
func (v *VerifiedDump) Bytes() int64 { return v.d.Bytes() }

// chanReader is the verifier's side: the reader's copies, in order, and
// its error at the end.
type chanReader struct {
	ch   chan []byte
	free chan []byte
	cur  []byte
	buf  []byte
	v    *VerifiedDump
}

func (c *chanReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.buf != nil {
			c.v.recycle(c.buf)
			c.buf = nil
		}
		b, ok := <-c.ch
		if !ok {
			if c.v.rerr != nil {
				return 0, c.v.rerr
			}
			return 0, io.EOF
		}
		c.buf, c.cur = b, b
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}
