// Package agentproto holds the wire protocol between holiday on the
// control node and `holiday agent` on a host: framing, the hello exchange
// and the generic message shapes. It holds no domain logic — which
// operations exist and what their arguments mean live with the callers.
//
// One SSH session carries one operation at a time: one hello, then
// requests one after another. Both directions are a stream of frames on
// the session's stdin/stdout:
//
//	[type: 1 byte][length: 4 bytes, big endian][payload: length bytes]
//
// Control frames carry JSON; data frames carry raw bytes, so a file or a
// disk streams without base64. The agent's stderr is its log, never part
// of the protocol. A session goes:
//
//	control → agent   Hello      (protocol, expected build, control machine-id)
//	agent → control   Hello      (protocol, its build hash, what it sees)
//	control → agent   Request    (op name, JSON args)
//	either way        Message / Data / EOF frames, as the op defines
//	agent → control   Result     (value or error)
//	control → agent   Request …  (the next operation, on the same session)
//	control → agent   EOF of stdin: the agent exits
//
// Keeping a session for the next operation spares a session, a sudo and
// an agent start per operation; the control node reuses a session only
// after reading its Result cleanly.
//
// An agent of another protocol version still answers the hello (so the
// control node can say which versions met) and then exits; a program that
// is not a holiday agent at all is detected by its first bytes.
//
// It imports nothing of holiday's.
package agentproto

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Version is the protocol version. Bump it on any incompatible change.
const Version = 2

// Magic opens every hello.
const Magic = "holiday-agent"

// MaxFrame bounds a frame's payload; larger data is sent as several
// frames. It is generous for a chunk (restic's are at most 8 MiB).
const MaxFrame = 32 << 20

// DataChunk is the payload size the DataWriter sends per frame.
const DataChunk = 1 << 20

// FrameType says what a frame carries.
type FrameType byte

const (
	FrameHello   FrameType = 'H' // JSON Hello; first frame each way
	FrameRequest FrameType = 'Q' // JSON Request; control → agent, one per operation
	FrameMessage FrameType = 'M' // JSON, either way, defined by the op
	FrameData    FrameType = 'D' // raw bytes, either way
	FrameEOF     FrameType = 'E' // end of the sender's data stream, empty
	FrameResult  FrameType = 'R' // JSON Result; agent → control, ends an operation
)

func (t FrameType) valid() bool {
	switch t {
	case FrameHello, FrameRequest, FrameMessage, FrameData, FrameEOF, FrameResult:
		return true
	}
	return false
}

func (t FrameType) String() string {
	if t.valid() {
		return string(rune(t))
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// Hello is the first frame each way.
type Hello struct {
	Magic    string `json:"magic"`
	Protocol int    `json:"protocol"`
	// Build is the SHA-256 (hex) of the sender's executable. The control
	// node sends the build it expects the agent to be.
	Build   string `json:"build"`
	Version string `json:"version,omitempty"` // holiday's version string

	// Control → agent.
	ControlMachineID string `json:"control_machine_id,omitempty"`

	// Agent → control: what the host sees.
	Hostname    string `json:"hostname,omitempty"`
	UID         int    `json:"uid"`
	PID         int    `json:"pid,omitempty"`
	ControlAddr string `json:"control_addr,omitempty"` // the control node's address as the host sees it
	MachineID   string `json:"machine_id,omitempty"`
}

// Request names an operation.
type Request struct {
	Op   string          `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Result ends an operation: a value or an error.
type Result struct {
	Value json.RawMessage `json:"value,omitempty"`
	Error *RemoteError    `json:"error,omitempty"`
}

// RemoteError is an error reported by the agent. Code is a stable word
// callers can switch on ("refused", "unknown-op", "bad-args", "failed").
type RemoteError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *RemoteError) Error() string { return e.Message }

// ErrForeign means the peer is not a holiday agent.
var ErrForeign = errors.New("the peer is not a holiday agent")

// VersionError says the two ends speak different protocol versions.
type VersionError struct {
	Local, Remote int
	RemoteBuild   string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("agent protocol mismatch: this holiday speaks version %d, the other end version %d (build %.12s)",
		e.Local, e.Remote, e.RemoteBuild)
}

// Conn reads and writes frames. Writes are safe from several goroutines
// (an op may send data while answering messages); reads are not.
type Conn struct {
	r   *bufio.Reader
	wmu sync.Mutex
	w   *bufio.Writer
	out io.Writer // what w writes to
	// pipe is out when it is a pipe (WriteFrameFrom splices into it);
	// pipeKnown says whether that was looked at
	pipe      *os.File
	pipeKnown bool
	hdr       [5]byte
	// first is true until the first frame has been read, to tell a
	// foreign program's output from a broken frame.
	first bool
}

// NewConn frames r and w.
func NewConn(r io.Reader, w io.Writer) *Conn {
	return &Conn{r: bufio.NewReaderSize(r, 64<<10), w: bufio.NewWriterSize(w, 64<<10), out: w, first: true}
}

// WriteFrame sends one frame and flushes it.
func (c *Conn) WriteFrame(t FrameType, p []byte) error {
	if len(p) > MaxFrame {
		return fmt.Errorf("frame of %d bytes exceeds the %d limit", len(p), MaxFrame)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var hdr [5]byte
	hdr[0] = byte(t)
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	if _, err := c.w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := c.w.Write(p); err != nil {
		return err
	}
	return c.w.Flush()
}

// WriteFrameFrom sends n bytes of f from off as one frame. When this end
// writes to a pipe (the agent's stdout, read by sshd), the kernel moves
// them from f's page cache into the pipe (splice(2)) without copying them
// through this process; otherwise they are read and written. If f cannot
// give all n bytes (it ends, or a read fails), the frame is padded with
// zeros to its announced length, so that the stream stays whole for the
// error that follows, and the error is returned: the caller must fail
// its operation, never let the frame count.
func (c *Conn) WriteFrameFrom(t FrameType, f *os.File, off int64, n int) error {
	if n > MaxFrame || n < 0 {
		return fmt.Errorf("frame of %d bytes exceeds the %d limit", n, MaxFrame)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var hdr [5]byte
	hdr[0] = byte(t)
	binary.BigEndian.PutUint32(hdr[1:], uint32(n))
	if _, err := c.w.Write(hdr[:]); err != nil {
		return err
	}
	var sent int
	var rerr error
	if p := c.pipeOut(); p != nil {
		if err := c.w.Flush(); err != nil {
			return err
		}
		var werr error
		sent, rerr, werr = splice(p, f, off, n)
		if werr != nil {
			return werr
		}
	} else {
		var k int64
		k, rerr = io.Copy(c.w, io.NewSectionReader(f, off, int64(n)))
		sent = int(k)
	}
	if sent < n {
		if rerr == nil {
			rerr = io.ErrUnexpectedEOF
		}
		var pad [32 << 10]byte
		for left := n - sent; left > 0; {
			k, err := c.w.Write(pad[:min(left, len(pad))])
			if err != nil {
				return err
			}
			left -= k
		}
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("reading %s at %d: %w", f.Name(), off+int64(sent), rerr)
	}
	return nil
}

// pipeOut is the pipe the Conn writes to, or nil.
func (c *Conn) pipeOut() *os.File {
	if !c.pipeKnown {
		c.pipeKnown = true
		if f, ok := c.out.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
				c.pipe = f
			}
		}
	}
	return c.pipe
}

// splice moves n bytes of src from off into the pipe dst: how many went,
// why src gave fewer (rerr) or why the pipe took no more (werr).
func splice(dst, src *os.File, off int64, n int) (sent int, rerr, werr error) {
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err, nil
	}
	for sent < n {
		var k int64
		var serr error
		cerr := rc.Control(func(sfd uintptr) {
			werr = wc.Write(func(dfd uintptr) bool {
				k, serr = unix.Splice(int(sfd), &off, int(dfd), nil, n-sent, unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
				return serr != unix.EAGAIN
			})
		})
		switch {
		case cerr != nil:
			return sent, cerr, nil
		case werr != nil:
			return sent, nil, werr
		case serr == unix.EINTR:
			continue
		case serr == unix.EPIPE:
			return sent, nil, serr
		case serr != nil:
			// which end refused is not said: src's read error or a
			// closed pipe; a pipe that is gone fails the padding next
			return sent, serr, nil
		case k == 0:
			return sent, io.ErrUnexpectedEOF, nil
		}
		sent += int(k)
	}
	return sent, nil, nil
}

// WriteJSON sends v as a frame of type t.
func (c *Conn) WriteJSON(t FrameType, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s frame: %w", t, err)
	}
	return c.WriteFrame(t, p)
}

// ReadFrame reads the next frame. io.EOF means the peer closed cleanly
// between frames; io.ErrUnexpectedEOF means it stopped inside one.
func (c *Conn) ReadFrame() (FrameType, []byte, error) { return c.ReadFrameInto(nil) }

// ReadFrameInto is ReadFrame with the payload read into buf when it has
// the room (a receiver that reuses its buffers saves allocating and
// zeroing megabytes per data frame), else into a new slice.
func (c *Conn) ReadFrameInto(buf []byte) (FrameType, []byte, error) {
	first := c.first
	c.first = false
	if _, err := io.ReadFull(c.r, c.hdr[:1]); err != nil {
		return 0, nil, err
	}
	t := FrameType(c.hdr[0])
	if !t.valid() {
		if first {
			peek, _ := c.r.Peek(min(c.r.Buffered(), 40))
			return 0, nil, fmt.Errorf("%w (it wrote %q)", ErrForeign, append([]byte{c.hdr[0]}, peek...))
		}
		return 0, nil, fmt.Errorf("agent protocol: bad frame type %s", t)
	}
	if _, err := io.ReadFull(c.r, c.hdr[1:]); err != nil {
		return 0, nil, unexpected(err)
	}
	n := binary.BigEndian.Uint32(c.hdr[1:])
	if n > MaxFrame {
		if first {
			return 0, nil, fmt.Errorf("%w (first frame claims %d bytes)", ErrForeign, n)
		}
		return 0, nil, fmt.Errorf("agent protocol: %s frame of %d bytes exceeds the %d limit", t, n, MaxFrame)
	}
	p := buf[:0]
	if p == nil || cap(p) < int(n) {
		p = make([]byte, n)
	}
	p = p[:n]
	if _, err := io.ReadFull(c.r, p); err != nil {
		return 0, nil, unexpected(err)
	}
	return t, p, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadJSON reads the next frame, which must be of type want, into v.
func (c *Conn) ReadJSON(want FrameType, v any) error {
	t, p, err := c.ReadFrame()
	if err != nil {
		return err
	}
	if t != want {
		return fmt.Errorf("agent protocol: got a %s frame, want %s", t, want)
	}
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("agent protocol: decoding %s frame: %w", t, err)
	}
	return nil
}

// DataWriter returns a writer that sends what is written as Data frames
// of at most DataChunk bytes; Close sends EOF.
func (c *Conn) DataWriter() io.WriteCloser { return &dataWriter{c: c} }

type dataWriter struct{ c *Conn }

func (d *dataWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), DataChunk)
		if err := d.c.WriteFrame(FrameData, p[:k]); err != nil {
			return n, err
		}
		n += k
		p = p[k:]
	}
	return n, nil
}

func (d *dataWriter) Close() error { return d.c.WriteFrame(FrameEOF, nil) }

// Check validates a peer's hello against this end's protocol version.
func Check(peer Hello) error {
	if peer.Magic != Magic {
		return fmt.Errorf("%w (hello magic %q)", ErrForeign, peer.Magic)
	}
	if peer.Protocol != Version {
		return &VersionError{Local: Version, Remote: peer.Protocol, RemoteBuild: peer.Build}
	}
	return nil
}

// ClientHello is the control node's side of the hello: send mine, read
// and check the agent's.
func ClientHello(c *Conn, mine Hello) (Hello, error) {
	mine.Magic, mine.Protocol = Magic, Version
	if err := c.WriteJSON(FrameHello, mine); err != nil {
		return Hello{}, fmt.Errorf("sending hello: %w", err)
	}
	var peer Hello
	if err := c.ReadJSON(FrameHello, &peer); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return peer, fmt.Errorf("the agent exited before its hello: %w", err)
		}
		return peer, err
	}
	return peer, Check(peer)
}

// ServerHello is the agent's side: read and check the control node's
// hello, and answer with mine even on a version mismatch, so the control
// node learns which version it met.
func ServerHello(c *Conn, mine Hello) (Hello, error) {
	var peer Hello
	if err := c.ReadJSON(FrameHello, &peer); err != nil {
		return peer, fmt.Errorf("reading hello: %w", err)
	}
	mine.Magic, mine.Protocol = Magic, Version
	if err := c.WriteJSON(FrameHello, mine); err != nil {
		return peer, fmt.Errorf("sending hello: %w", err)
	}
	return peer, Check(peer)
}

// StampSuffix names the file next to an installed agent that holds the
// installed file's identity as `stat -c '%s %i %d %.9Z'` printed it right
// after the installer checked its SHA-256: size, inode, device and ctime.
// While they still match, the file is the one that was hashed (any write,
// truncate, rename over or chmod moves the ctime, which user space cannot
// set back), so neither the probe nor the agent hashes ~12 MB again on
// every session. Only root can write it: the agent directory is 0700 root.
const StampSuffix = ".stamp"

// StatStamp is f's identity in the format of StampSuffix.
func StatStamp(f *os.File) (string, error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", errors.New("no stat_t")
	}
	return fmt.Sprintf("%d %d %d %d.%09d", st.Size, st.Ino, st.Dev, st.Ctim.Sec, st.Ctim.Nsec), nil
}
