// Package agent holds the host side of `holiday agent`: it answers the
// control node's hello, checks the request against the safety guards and
// dispatches it to a registered operation. The built-in operations here are
// the read-only ones every command needs (ping, facts-basic); operations
// that change a host register themselves with a Class, and the dispatcher
// refuses firewall and power classes on the control node's own machine.
//
// It speaks internal/agentproto and imports nothing of holiday's above
// internal/.
package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/internal/agentproto"
)

// Class says how dangerous an operation is; the dispatcher's guards key
// on it.
type Class int

const (
	ClassRead     Class = iota // reads only
	ClassChange                // changes the host (services, files)
	ClassFirewall              // can cut the host's network: never on the control node
	ClassPower                 // can switch the host off: never on the control node
)

// Op is one operation's view of its session.
type Op struct {
	Args    json.RawMessage
	Conn    *agentproto.Conn // for Message/Data frames, as the op defines
	Control agentproto.Hello // the control node's hello
	// ControlAddr is the control node's address as this host sees it
	// (from $SSH_CONNECTION, read before sudo), or "" if unknown.
	ControlAddr string
	Log         *slog.Logger
}

// Handler is a registered operation.
type Handler struct {
	Name  string
	Class Class
	// Run does the work and returns the result value (JSON-encoded into
	// the Result frame). Errors become RemoteError{Code: "failed"}.
	Run func(ctx context.Context, op *Op) (any, error)
}

var (
	regMu    sync.RWMutex
	handlers = map[string]Handler{}
)

// Register adds an operation. Registering a name twice panics: it is a
// programming error.
func Register(h Handler) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := handlers[h.Name]; dup {
		panic("agent: operation registered twice: " + h.Name)
	}
	handlers[h.Name] = h
}

// Ops lists the registered operation names, sorted.
func Ops() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var names []string
	for n := range handlers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Config is what the `holiday agent` command passes in.
type Config struct {
	Log *slog.Logger
	// SSHConnection is the login shell's $SSH_CONNECTION
	// ("client-ip client-port server-ip server-port"), passed as an
	// argument because sudo's env_reset drops it.
	SSHConnection string
	Version       string // holiday's version string
	// Executable is hashed for the hello's Build; "" means /proc/self/exe.
	Executable string
	// MachineIDFiles overrides where the host's machine-id is read
	// (tests); nil means /etc/machine-id then /var/lib/dbus/machine-id.
	MachineIDFiles []string
}

// ControlAddrFrom returns the client address of an $SSH_CONNECTION value.
func ControlAddrFrom(sshConnection string) string {
	f := strings.Fields(sshConnection)
	if len(f) != 4 || net.ParseIP(f[0]) == nil {
		return ""
	}
	return f[0]
}

// pipeSize is what growPipe asks for: Linux's default for an
// unprivileged user's largest pipe.
const pipeSize = 1 << 20

// growPipe enlarges out when it is a pipe, as the agent's stdout to sshd
// is: in the default 64 KiB, a backup's data has the agent and sshd take
// turns every 64 KiB. Anything else is left as it is.
func growPipe(out io.Writer) {
	f, ok := out.(*os.File)
	if !ok {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	if sc, err := f.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

// Serve runs one session: hello, one request, its result. It returns the
// error that ended the session abnormally; an op's failure is reported to
// the control node in the Result and is not an error here.
func Serve(ctx context.Context, in io.Reader, out io.Writer, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	growPipe(out)
	conn := agentproto.NewConn(in, out)
	build, err := selfHash(cfg.Executable)
	if err != nil {
		log.Warn("cannot hash own executable", "err", err)
	}
	hostname, _ := os.Hostname()
	machineID, _ := readMachineID(cfg.MachineIDFiles)
	mine := agentproto.Hello{
		Build: build, Version: cfg.Version, Hostname: hostname, UID: os.Geteuid(), PID: os.Getpid(),
		ControlAddr: ControlAddrFrom(cfg.SSHConnection), MachineID: machineID,
	}
	peer, err := agentproto.ServerHello(conn, mine)
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	// Requests one after another, each answered by its Result, until the
	// control node closes the session (EOF where a request would start).
	for first := true; ; first = false {
		var req agentproto.Request
		if err := conn.ReadJSON(agentproto.FrameRequest, &req); err != nil {
			if !first && errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading request: %w", err)
		}
		if err := serveOne(ctx, conn, req, peer, mine, cfg, log); err != nil {
			return err
		}
	}
}

// serveOne runs one request and writes its Result.
func serveOne(ctx context.Context, conn *agentproto.Conn, req agentproto.Request, peer, mine agentproto.Hello, cfg Config, log *slog.Logger) error {
	log = log.With("op", req.Op)
	regMu.RLock()
	h, ok := handlers[req.Op]
	regMu.RUnlock()
	if !ok {
		return reply(conn, nil, &agentproto.RemoteError{Code: "unknown-op",
			Message: fmt.Sprintf("this agent has no operation %q (it has %s)", req.Op, strings.Join(Ops(), ", "))})
	}
	if h.Class == ClassFirewall || h.Class == ClassPower {
		if err := guardNotControlNode(peer.ControlMachineID, cfg.MachineIDFiles); err != nil {
			log.Warn("refused", "err", err)
			return reply(conn, nil, &agentproto.RemoteError{Code: "refused", Message: err.Error()})
		}
	}
	log.Debug("running")
	op := &Op{Args: req.Args, Conn: conn, Control: peer, ControlAddr: mine.ControlAddr, Log: log}
	v, err := h.Run(ctx, op)
	if err != nil {
		var re *agentproto.RemoteError
		if !errors.As(err, &re) {
			re = &agentproto.RemoteError{Code: "failed", Message: err.Error()}
		}
		return reply(conn, nil, re)
	}
	return reply(conn, v, nil)
}

func reply(conn *agentproto.Conn, v any, rerr *agentproto.RemoteError) error {
	res := agentproto.Result{Error: rerr}
	if rerr == nil && v != nil {
		p, err := json.Marshal(v)
		if err != nil {
			res.Error = &agentproto.RemoteError{Code: "failed", Message: "encoding result: " + err.Error()}
		} else {
			res.Value = p
		}
	}
	return conn.WriteJSON(agentproto.FrameResult, res)
}

// ErrControlNode is returned (wrapped) by the guard.
var ErrControlNode = errors.New("refusing: this host is the control node itself")

// guardNotControlNode refuses when this host's machine-id equals the
// control node's, or when either is unknown (then nobody can tell the two
// apart, and a firewall or power action could cut off the operator's own
// machine).
func guardNotControlNode(controlID string, files []string) error {
	mine, err := readMachineID(files)
	switch {
	case controlID == "":
		return fmt.Errorf("%w? the control node sent no machine-id, so it cannot be told apart from this host", ErrControlNode)
	case err != nil:
		return fmt.Errorf("%w? this host has no readable machine-id (%v), so it cannot be told apart from the control node", ErrControlNode, err)
	case mine == controlID:
		return fmt.Errorf("%w (machine-id %s): firewall and power operations would cut off the operator", ErrControlNode, mine)
	}
	return nil
}

// CheckNotControlNode is the guard as a function, for operations that
// decide their class from their arguments.
func CheckNotControlNode(op *Op, files []string) error {
	return guardNotControlNode(op.Control.ControlMachineID, files)
}

func readMachineID(files []string) (string, error) {
	if files == nil {
		files = []string{"/etc/machine-id", "/var/lib/dbus/machine-id"}
	}
	var firstErr error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				return id, nil
			}
			err = fmt.Errorf("%s is empty", f)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MachineID returns this machine's machine-id (the control node uses it
// for its hello).
func MachineID() (string, error) { return readMachineID(nil) }

// selfHash is the SHA-256 of the running executable: the name of its
// directory when the stamp beside it (agentproto.StampSuffix) still matches the
// running file, else hashed.
func selfHash(path string) (string, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if real, err := os.Readlink(path); err == nil && filepath.Base(real) == "holiday" {
		dir := filepath.Base(filepath.Dir(real))
		if b, err := os.ReadFile(real + agentproto.StampSuffix); err == nil && isHex64(dir) {
			if st, err := agentproto.StatStamp(f); err == nil && strings.TrimSpace(string(b)) == st {
				return dir, nil
			}
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
