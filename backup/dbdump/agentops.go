package dbdump

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// The agent operations (host side in Handlers, control node side in the
// *OnHost functions):
//
//	db-expand  args ExpandArgs → result []Spec
//	db-dump    args Spec; agent → Data… EOF; result DumpResult (an error
//	           if the dump is not whole, after the EOF)
//	db-verify  args VerifyArgs; control → Data… EOF; result {}
//	db-load    args LoadArgs; control → Data… EOF; result {}
const (
	OpExpand = "db-expand"
	OpDump   = "db-dump"
	OpVerify = "db-verify"
	OpLoad   = "db-load"
)

// ExpandArgs are db-expand's arguments: a plan source.
type ExpandArgs struct {
	Engine    string   `json:"engine"`
	Databases []string `json:"databases,omitempty"`
	All       bool     `json:"all,omitempty"`
	Globals   bool     `json:"globals,omitempty"`
	User      string   `json:"user,omitempty"`
}

// DumpResult is db-dump's result.
type DumpResult struct {
	Bytes int64 `json:"bytes"`
}

// VerifyArgs are db-verify's arguments.
type VerifyArgs struct {
	Spec    Spec `json:"spec"`
	Scratch bool `json:"scratch,omitempty"`
}

// LoadArgs are db-load's arguments.
type LoadArgs struct {
	Spec    Spec   `json:"spec"`
	Into    string `json:"into,omitempty"`
	Replace bool   `json:"replace,omitempty"`
}

// Handlers are the host side, for `holiday agent` to register
// (actions/agentops does).
func Handlers() []agent.Handler {
	return []agent.Handler{
		{Name: OpExpand, Class: agent.ClassRead, Run: expandOp},
		{Name: OpDump, Class: agent.ClassRead, Run: dumpOp},
		// A scratch check creates and drops a database.
		{Name: OpVerify, Class: agent.ClassChange, Run: verifyOp},
		{Name: OpLoad, Class: agent.ClassChange, Run: loadOp},
	}
}

func decode(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return &agentproto.RemoteError{Code: "bad-args", Message: "bad arguments: " + err.Error()}
	}
	return nil
}

func expandOp(ctx context.Context, op *agent.Op) (any, error) {
	var a ExpandArgs
	if err := decode(op.Args, &a); err != nil {
		return nil, err
	}
	return Expand(ctx, a.Engine, a.Databases, a.All, a.Globals, a.User)
}

func dumpOp(ctx context.Context, op *agent.Op) (any, error) {
	var s Spec
	if err := decode(op.Args, &s); err != nil {
		return nil, err
	}
	w := op.Conn.DataWriter()
	d, err := Start(ctx, s)
	if err != nil {
		// An empty stream, then the error: the control node reads the
		// Result where it always does.
		if cerr := w.Close(); cerr != nil {
			return nil, join(err, cerr)
		}
		return nil, err
	}
	_, cerr := io.Copy(w, d)
	werr := d.Wait()
	if cerr != nil {
		// The session is broken: nothing more can be sent.
		return nil, fmt.Errorf("sending the dump: %w", cerr)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	return DumpResult{Bytes: d.Bytes()}, nil
}

func verifyOp(ctx context.Context, op *agent.Op) (any, error) {
	var a VerifyArgs
	if err := decode(op.Args, &a); err != nil {
		return nil, err
	}
	fr := &frameReader{c: op.Conn}
	err := Verify(ctx, a.Spec, fr, a.Scratch)
	if derr := fr.drain(); derr != nil {
		return nil, join(err, derr)
	}
	return struct{}{}, err
}

func loadOp(ctx context.Context, op *agent.Op) (any, error) {
	var a LoadArgs
	if err := decode(op.Args, &a); err != nil {
		return nil, err
	}
	fr := &frameReader{c: op.Conn}
	err := Load(ctx, a.Spec, fr, a.Into, a.Replace)
	if derr := fr.drain(); derr != nil {
		err = join(err, derr)
	}
	if u := (*Untouched)(nil); errors.As(err, &u) {
		return nil, &agentproto.RemoteError{Code: CodeUntouched, Message: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// CodeUntouched is db-load's error code for a --replace that failed
// before it changed the old database (Untouched).
const CodeUntouched = "db-untouched"

// frameReader reads Data frames up to the EOF frame as a stream.
type frameReader struct {
	c   *agentproto.Conn
	buf []byte
	eof bool
	err error
}

func (f *frameReader) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		if f.eof {
			return 0, io.EOF
		}
		if f.err != nil {
			return 0, f.err
		}
		t, b, err := f.c.ReadFrame()
		switch {
		case err != nil:
			f.err = fmt.Errorf("the control node's stream broke off: %w", err)
		case t == agentproto.FrameData:
			f.buf = b
		case t == agentproto.FrameEOF:
			f.eof = true
		default:
			f.err = fmt.Errorf("agent protocol: unexpected %s frame in a data stream", t)
		}
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// drain reads what the control node still sends, up to its EOF, so that
// the session stays in step for the Result (the op may fail before
// reading everything).
func (f *frameReader) drain() error {
	var one [1]byte
	for !f.eof && f.err == nil {
		f.buf = nil // unread data of a failed op is dropped
		f.Read(one[:])
	}
	if f.eof {
		return nil
	}
	return f.err
}

// Agent is what the control node side needs of a deployed agent
// (*agentctl.Agent).
type Agent interface {
	Start(ctx context.Context, op string, args any) (*agentctl.Stream, error)
}

// ExpandOnHost runs Expand on the host.
func ExpandOnHost(ctx context.Context, a Agent, args ExpandArgs) ([]Spec, error) {
	s, err := a.Start(ctx, OpExpand, args)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var specs []Spec
	if err := s.Result(&specs); err != nil {
		return nil, err
	}
	return specs, nil
}

// DumpOnHost runs s's dump on the host and writes it to w; it returns the
// bytes written and an error unless the dump is whole (what w got is then
// to be thrown away).
func DumpOnHost(ctx context.Context, a Agent, s Spec, w io.Writer) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := a.Start(ctx, OpDump, s)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var n int64
	for {
		t, p, err := st.ReadFrame()
		if err != nil {
			// Result explains a session that ended early; should it
			// have nothing to say, the read error still fails the dump.
			if rerr := st.Result(nil); rerr != nil {
				return n, rerr
			}
			return n, fmt.Errorf("dump of %s: %w", s, err)
		}
		switch t {
		case agentproto.FrameData:
			k, werr := w.Write(p)
			n += int64(k)
			if werr != nil {
				cancel() // kills the session: the agent's dump stops
				return n, fmt.Errorf("writing the dump of %s: %w", s, werr)
			}
			continue
		case agentproto.FrameEOF:
			var r DumpResult
			if err := st.Result(&r); err != nil {
				return n, err
			}
			if r.Bytes > n {
				return n, fmt.Errorf("dump of %s: got %d bytes, the agent sent %d", s, n, r.Bytes)
			}
			return n, nil
		case agentproto.FrameResult:
			var r agentproto.Result
			if err := json.Unmarshal(p, &r); err == nil && r.Error != nil {
				return n, r.Error
			}
			return n, fmt.Errorf("dump of %s: the agent ended without its data's end", s)
		default:
			return n, fmt.Errorf("dump of %s: unexpected %s frame", s, t)
		}
	}
}

// VerifyOnHost sends the dump read from r to the host and runs Verify
// there.
func VerifyOnHost(ctx context.Context, a Agent, s Spec, r io.Reader, scratch bool) error {
	return send(ctx, a, OpVerify, VerifyArgs{Spec: s, Scratch: scratch}, r)
}

// LoadOnHost sends the dump read from r to the host and runs Load there.
func LoadOnHost(ctx context.Context, a Agent, s Spec, r io.Reader, into string, replace bool) error {
	return send(ctx, a, OpLoad, LoadArgs{Spec: s, Into: into, Replace: replace}, r)
}

// send streams r to op. If reading r fails, the session is killed rather
// than ended with EOF: the host must never take a stream cut short here
// for a whole dump.
func send(ctx context.Context, a Agent, op string, args any, r io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := a.Start(ctx, op, args)
	if err != nil {
		return err
	}
	defer st.Close()
	w := st.DataWriter()
	buf := make([]byte, agentproto.DataChunk)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				// The agent is gone: its Result (or exit) says why.
				return st.Result(nil)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			cancel()
			return fmt.Errorf("reading the dump to send: %w", rerr)
		}
	}
	if err := w.Close(); err != nil {
		return st.Result(nil)
	}
	return st.Result(nil)
}
