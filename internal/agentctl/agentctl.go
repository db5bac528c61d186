// Package agentctl holds the control node's side of holiday's agent: it
// pushes the static holiday binary to a host over an sshx connection
// (cached by content hash, or fresh for check/evidence), verifies the
// copy's SHA-256 on the host, runs `holiday agent` through `sudo -n` (or
// as root, or as the login user) in one SSH session per operation, and
// speaks internal/agentproto with it, forwarding the agent's stderr logs
// to a *slog.Logger.
//
// It knows no operation's meaning. It imports nothing of holiday's above
// internal/.
package agentctl

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/atomicfile"
	"github.com/holiday-ops/holiday/internal/sshx"
)

// DefaultDir is where agents live on a host, one directory per build.
const DefaultDir = "/var/lib/holiday/agent"

// Become says how the agent gets root.
type Become string

const (
	BecomeSudo Become = "sudo" // sudo -n unless the login user is root (default)
	BecomeNone Become = "none" // run as the login user
)

// Binary is an agent executable on the control node.
type Binary struct {
	Path   string
	SHA256 string // hex
	Size   int64
}

var (
	selfOnce  sync.Once
	self      Binary
	selfErr   error
	selfCache string
)

// SetSelfCache names a file that keeps this executable's SHA-256 from one
// run to the next, beside the file's identity (agentproto.StatStamp:
// size, inode, device, ctime). While the executable still has that
// identity, LoadBinary("") takes the SHA-256 from there instead of
// hashing its own tens of MB, which every run otherwise does between its
// first SSH connection and the first host's probe. Any write, truncate,
// rename over or chmod of the executable moves its ctime, and it is
// hashed again. The file belongs in the control node's state directory
// (root's, 0700): a wrong SHA-256 there could only make the agent's
// upload fail its SHA-256 check on the host. Call it before the first
// Deploy; "" (the default) hashes once per process.
func SetSelfCache(path string) { selfCache = path }

// LoadBinary hashes the executable at path ("" is this process's own:
// hashed once, or read from SetSelfCache's file).
func LoadBinary(path string) (Binary, error) {
	if path == "" {
		selfOnce.Do(func() {
			exe, err := os.Executable()
			if err != nil {
				selfErr = err
				return
			}
			self, selfErr = loadCached(exe, selfCache)
		})
		return self, selfErr
	}
	f, err := os.Open(path)
	if err != nil {
		return Binary{}, fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	return hashBinary(path, f)
}

func hashBinary(path string, f *os.File) (Binary, error) {
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Binary{}, fmt.Errorf("agent binary %s: %w", path, err)
	}
	return Binary{Path: path, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// loadCached is LoadBinary(path) through the cache file (see
// SetSelfCache; "" is none): its lines are the path, the file's
// identity and its SHA-256.
func loadCached(path, cache string) (Binary, error) {
	f, err := os.Open(path)
	if err != nil {
		return Binary{}, fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	if cache == "" {
		return hashBinary(path, f)
	}
	stamp, err := agentproto.StatStamp(f)
	if err != nil {
		return hashBinary(path, f)
	}
	if b, err := os.ReadFile(cache); err == nil {
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) == 3 && lines[0] == path && lines[1] == stamp && isSHA256(lines[2]) {
			size, _ := strconv.ParseInt(strings.Fields(stamp)[0], 10, 64)
			return Binary{Path: path, SHA256: lines[2], Size: size}, nil
		}
	}
	bin, err := hashBinary(path, f)
	if err != nil {
		return bin, err
	}
	// the identity taken before the read: a write meanwhile moved the
	// ctime, so the next run hashes again
	_ = atomicfile.Write(cache, []byte(path+"\n"+stamp+"\n"+bin.SHA256+"\n"), 0o600)
	return bin, nil
}

// isSHA256 says whether s is 64 lower-case hex digits.
func isSHA256(s string) bool {
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

// Options says which binary to push and how to run it.
type Options struct {
	Logger *slog.Logger
	// Binaries maps a host's `uname -m` (x86_64, aarch64) to the static
	// build for it. Empty: this process's own executable, for its own
	// architecture only.
	Binaries map[string]Binary
	Dir      string // default DefaultDir (for BecomeNone: ~/.holiday/agent)
	Become   Become // default BecomeSudo
	// Fresh uploads to a new random path every time and removes it on
	// Close: for check, evidence and rollback, where a cached binary on a
	// possibly compromised host is not trusted.
	Fresh bool
	// Preinstalled names an agent the site installed itself (restricted
	// sudo); nothing is uploaded. Its protocol must match; a different
	// build is logged.
	Preinstalled string
	// ControlMachineID is sent to the agent for its control-node guard;
	// "": this machine's /etc/machine-id.
	ControlMachineID string
	Version          string // holiday's version, for the hello
	// Lazy skips the ping after finding the right build cached: every
	// operation's own hello checks the build before its request is sent,
	// so the first one stands in for it (one session fewer per host).
	// Info then lacks what only the hello tells (AgentBuild, Hostname,
	// AgentUID). A fresh upload is always pinged.
	Lazy bool
}

// Info is what Deploy learned about the host.
type Info struct {
	Path        string        // the agent on the host
	Uploaded    bool          // this Deploy uploaded it
	Replaced    string        // why a cached copy was replaced ("" if not)
	UploadTime  time.Duration // upload and install, if Uploaded
	ProbeTime   time.Duration
	LoginUser   string
	LoginUID    int
	Sudo        bool   // the agent runs through sudo -n
	Arch        string // uname -m
	ControlAddr string // the control node's address as the host sees it
	AgentBuild  string // the agent's hello
	Hostname    string
	AgentUID    int // the agent's effective uid
}

// Agent is a deployed agent on one host, ready to run operations.
type Agent struct {
	conn      *sshx.Conn
	opts      Options
	log       *slog.Logger
	bin       Binary
	sudo      string // "sudo -n " or ""
	info      Info
	controlID string
	freshDir  string

	mu   sync.Mutex
	idle []*session // sessions waiting for the next operation
	// released counts Release calls: a session Prepare opened across
	// one is not kept
	released int
	// preparing is closed when the session Prepare is opening is kept
	// (nil when none is being opened)
	preparing chan struct{}
}

// Error is an agent-level failure on one host, worded for the operator.
type Error struct {
	Host string
	Op   string // "deploy", or the operation
	Err  error
	Hint string
}

func (e *Error) Error() string {
	if e.Op == "deploy" {
		return fmt.Sprintf("%s: agent: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("%s: agent %s: %v", e.Host, e.Op, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// ErrNoSudo means `sudo -n` asked for a password or was refused.
var ErrNoSudo = errors.New("no passwordless sudo")

// Deploy makes sure the right agent is on the host behind conn and
// answers: one probe session (login user, uid, arch, $SSH_CONNECTION,
// sudo, the cached copy's SHA-256), an upload session if the copy is
// missing or wrong, and a ping through the protocol.
func Deploy(ctx context.Context, conn *sshx.Conn, opts Options) (*Agent, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("host", conn.Label())
	a := &Agent{conn: conn, opts: opts, log: log}
	fail := func(err error, hint string) (*Agent, error) {
		var e *Error
		if errors.As(err, &e) {
			return nil, err // already says host and op
		}
		return nil, &Error{Host: conn.Label(), Op: "deploy", Err: err, Hint: hint}
	}
	if opts.Become == "" {
		a.opts.Become = BecomeSudo
	}
	a.controlID = opts.ControlMachineID
	if a.controlID == "" {
		if b, err := os.ReadFile("/etc/machine-id"); err == nil {
			a.controlID = strings.TrimSpace(string(b))
		}
	}

	start := time.Now()
	p, err := a.probe(ctx)
	if err != nil {
		return fail(err, "")
	}
	a.info.ProbeTime = time.Since(start)
	a.info.LoginUser, a.info.LoginUID, a.info.Arch = p["user"], atoi(p["uid"]), p["arch"]
	a.info.ControlAddr = controlAddr(p["conn"])
	if s, ok := p["sudo"]; ok && s != "ok" {
		return fail(fmt.Errorf("%w for %s: %s", ErrNoSudo, a.info.LoginUser, strings.TrimPrefix(s, "fail ")),
			fmt.Sprintf("give %s passwordless sudo (see the README's sudoers rule), log in as root, or set become: none", a.info.LoginUser))
	}
	if a.info.LoginUID != 0 && a.opts.Become == BecomeSudo {
		a.sudo, a.info.Sudo = "sudo -n ", true
	}

	if opts.Preinstalled != "" {
		a.info.Path = opts.Preinstalled
	} else {
		a.bin, err = a.binaryFor(a.info.Arch)
		if err != nil {
			return fail(err, "")
		}
		dir := a.opts.Dir
		if dir == "" {
			dir = DefaultDir
			if a.opts.Become == BecomeNone && a.info.LoginUID != 0 {
				dir = strings.TrimRight(p["home"], "/") + "/.holiday/agent"
			}
		}
		sub := a.bin.SHA256
		if opts.Fresh {
			var r [8]byte
			rand.Read(r[:])
			sub = "fresh-" + hex.EncodeToString(r[:])
			a.freshDir = dir + "/" + sub
		}
		a.info.Path = dir + "/" + sub + "/holiday"
		have := p["have_"+a.bin.SHA256]
		if opts.Fresh || have != a.bin.SHA256 {
			if have != "" && !opts.Fresh {
				a.info.Replaced = fmt.Sprintf("cached agent's SHA-256 is %.12s…, want %.12s…", have, a.bin.SHA256)
				log.Warn("cached agent is not the expected build; replacing it", "path", a.info.Path, "have", have, "want", a.bin.SHA256)
			}
			if err := a.upload(ctx); err != nil {
				return fail(err, "")
			}
		}
	}

	if opts.Lazy && !a.info.Uploaded && opts.Preinstalled == "" {
		log.Debug("agent cached", "path", a.info.Path, "sudo", a.info.Sudo, "probe", a.info.ProbeTime)
		return a, nil
	}
	pong, err := a.hello(ctx)
	if err != nil {
		return fail(err, "")
	}
	a.info.AgentBuild, a.info.Hostname, a.info.AgentUID = pong.Build, pong.Hostname, pong.UID
	if pong.ControlAddr != "" {
		a.info.ControlAddr = pong.ControlAddr
	}
	log.Debug("agent ready", "path", a.info.Path, "uploaded", a.info.Uploaded, "sudo", a.info.Sudo,
		"control_addr", a.info.ControlAddr, "probe", a.info.ProbeTime, "upload", a.info.UploadTime)
	return a, nil
}

func (a *Agent) binaryFor(arch string) (Binary, error) {
	if len(a.opts.Binaries) > 0 {
		if b, ok := a.opts.Binaries[arch]; ok {
			return b, nil
		}
		return Binary{}, fmt.Errorf("no agent build for the host's architecture %q", arch)
	}
	if goarch(arch) != runtime.GOARCH {
		return Binary{}, fmt.Errorf("the host is %s but this holiday is built for %s; give the %s build (make build-all)", arch, runtime.GOARCH, arch)
	}
	return LoadBinary("")
}

func goarch(unameM string) string {
	switch unameM {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l", "armv6l":
		return "arm"
	case "i686", "i386":
		return "386"
	}
	return unameM
}

// probeScript runs as the login user in a POSIX sh. $1: become mode,
// $2: the agent builds (SHA-256s) to look for, $3: the dir ("" = default).
// Root's part — is sudo passwordless, which cached builds are there — is
// one `sudo -n sh` (checkScript), each sudo being a PAM round of its own.
const probeScript = `
echo "conn=${SSH_CONNECTION:-}"
u=$(id -u)
echo "uid=$u"
echo "user=$(id -un)"
echo "arch=$(uname -m)"
echo "home=$HOME"
d=$3
[ -n "$d" ] || d=$HOME/.holiday/agent
if [ "$u" != 0 ] && [ "$1" = sudo ]; then
	if out=$(sudo -n sh -c "$4" holiday-check "$d" $2 2>&1 </dev/null) && [ "${out#sudo=ok}" != "$out" ]; then
		printf '%s\n' "$out"
	else
		printf 'sudo=fail %s\n' "$(printf %s "$out" | tr '\n' ' ')"
	fi
else
	sh -c "$4" holiday-check "$d" $2
fi
`

// checkScript (as root, or the login user without become) prints
// sudo=ok and have_BUILD=SHA-256 for each cached build: from its stamp
// (agentproto.StampSuffix) while that matches the file, else hashed.
const checkScript = `
echo sudo=ok
d=$1; shift
for b; do
	f=$d/$b/holiday
	[ -f "$f" ] || continue
	if st=$(stat -c '%s %i %d %.9Z' "$f" 2>/dev/null) && [ "$st" = "$(cat "$f` + agentproto.StampSuffix + `" 2>/dev/null)" ]; then
		echo "have_$b=$b"
	elif h=$(sha256sum "$f" 2>/dev/null); then
		echo "have_$b=${h%% *}"
	fi
done
`

func (a *Agent) probe(ctx context.Context) (map[string]string, error) {
	dir := a.opts.Dir
	if dir == "" && !(a.opts.Become == BecomeNone) {
		dir = DefaultDir
	}
	// Hash the cached copy of every build that could be the host's, so
	// one round trip settles whether to upload.
	var builds []string
	if a.opts.Preinstalled == "" && !a.opts.Fresh {
		if len(a.opts.Binaries) > 0 {
			for _, b := range a.opts.Binaries {
				builds = append(builds, b.SHA256)
			}
		} else if b, err := LoadBinary(""); err == nil {
			builds = append(builds, b.SHA256)
		}
	}
	rel := strings.Join(builds, " ")
	cmd := "sh -c " + shquote(probeScript) + " holiday-probe " + shquote(string(a.opts.Become)) + " " + shquote(rel) + " " + shquote(dir) + " " + shquote(checkScript)
	out, err := a.conn.Output(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("probing the host: %w", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	if m["uid"] == "" {
		return nil, fmt.Errorf("probing the host: unexpected output %q (is the login shell POSIX?)", out)
	}
	return m, nil
}

// uploadScript runs as the login user with the binary on stdin and hands
// it to installScript, through sudo when $1 says so (one sudo for the
// whole install). $1: "sudo -n" or "", $2: want SHA-256, $3: agent dir,
// $4: installScript.
const uploadScript = `
exec $1 sh -c "$4" holiday-install "$2" "$3"
`

// installScript writes stdin straight into dir $2 under a name of its
// own (another upload of the same build may run at once: two plan
// entries for one machine, two control nodes), checks its SHA-256 is $1
// before it replaces anything, renames it to holiday (mode 0700; the
// last rename wins, with the same content) and writes the stamp of the
// file just hashed (agentproto.StampSuffix). Run through sudo, all of it
// is root's from the first byte.
const installScript = `
set -e
umask 077
install -d -m 0700 "$2"
N=$(mktemp "$2/holiday.new.XXXXXXXX")
trap 'rm -f "$N" "$N.stamp"' EXIT
cat >"$N"
chmod 0700 "$N"
h=$(sha256sum "$N"); h=${h%% *}
if [ "$h" != "$1" ]; then echo "upload arrived damaged: SHA-256 $h, want $1" >&2; exit 3; fi
mv -f "$N" "$2/holiday"
stat -c '%s %i %d %.9Z' "$2/holiday" >"$N.stamp"
mv -f "$N.stamp" "$2/holiday` + agentproto.StampSuffix + `"
`

func (a *Agent) upload(ctx context.Context) error {
	start := time.Now()
	f, err := os.Open(a.bin.Path)
	if err != nil {
		return fmt.Errorf("agent binary: %w", err)
	}
	defer f.Close()
	agentDir := strings.TrimSuffix(a.info.Path, "/holiday")
	cmd := "sh -c " + shquote(uploadScript) + " holiday-upload " + shquote(strings.TrimSpace(a.sudo)) + " " +
		shquote(a.bin.SHA256) + " " + shquote(agentDir) + " " + shquote(installScript)
	var stderr bytes.Buffer
	if err := a.conn.Run(ctx, cmd, f, io.Discard, &stderr); err != nil {
		return fmt.Errorf("uploading the agent to %s: %w: %s", a.info.Path, err, strings.TrimSpace(stderr.String()))
	}
	a.info.Uploaded = true
	a.info.UploadTime = time.Since(start)
	a.log.Info("agent uploaded", "path", a.info.Path, "bytes", a.bin.Size, "took", a.info.UploadTime)
	return nil
}

// Info returns what Deploy learned.
func (a *Agent) Info() Info { return a.info }

// Close ends the idle sessions and removes a Fresh agent from the host.
// The connection stays open.
func (a *Agent) Close(ctx context.Context) error {
	a.Release()
	if a.freshDir == "" {
		return nil
	}
	_, err := a.conn.Output(ctx, a.sudo+"rm -rf -- "+shquote(a.freshDir))
	if err != nil {
		return &Error{Host: a.conn.Label(), Op: "cleanup", Err: err}
	}
	a.freshDir = ""
	return nil
}

func (a *Agent) hello(ctx context.Context) (agentproto.Hello, error) {
	s, err := a.Start(ctx, "ping", nil)
	if err != nil {
		return agentproto.Hello{}, err
	}
	defer s.Close()
	var pong json.RawMessage
	if err := s.Result(&pong); err != nil {
		return s.Peer, err
	}
	return s.Peer, nil
}

// Stream is one running operation: a session with the agent after the
// hello and the request. Send Message/Data frames as the op defines, read
// with Recv, and finish with Result.
type Stream struct {
	*agentproto.Conn
	Peer    agentproto.Hello
	op      string
	host    string
	a       *Agent
	ss      *session
	stopCtx func() bool
	start   time.Time
	clean   bool // the Result was read: the session can take the next op
}

// session is one SSH session running the agent: one hello, then
// operations one at a time (agentproto). Between operations it waits in
// its Agent's idle slot.
type session struct {
	sess   *sshx.Session
	conn   *agentproto.Conn
	stdin  io.WriteCloser
	stderr *logForwarder
	peer   agentproto.Hello
}

func (ss *session) kill() {
	ss.sess.Signal("KILL")
	ss.sess.Session.Close()
}

// close ends the session: EOF to the agent, which exits. A session whose
// far end never reports an exit (its agent killed while a child still
// holds the channel open) is closed after closeWait rather than waited
// for forever.
func (ss *session) close() error {
	ss.stdin.Close()
	done := make(chan struct{})
	go func() { ss.sess.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		ss.sess.Session.Close()
		select {
		case <-done:
		case <-time.After(closeWait): // the connection is gone: give up on it
		}
	}
	ss.stderr.flush()
	return ss.sess.Close()
}

// closeWait bounds how long a closing session waits for the agent's exit.
var closeWait = 5 * time.Second

// maxIdle bounds the sessions an Agent keeps for its next operations;
// each holds one of the connection's session slots.
const maxIdle = 1

// Start sends the request on an idle session of this agent (or one
// Prepare is opening), or on a new one (session, agent start, hello).
// The caller must Close the stream.
func (a *Agent) Start(ctx context.Context, op string, args any) (*Stream, error) {
	return a.start(ctx, op, args, true)
}

// StartOwn is Start on a new session, never an idle or prepared one:
// for an operation that keeps its session for the whole run (the run
// lock), which Prepare's session is not meant for.
func (a *Agent) StartOwn(ctx context.Context, op string, args any) (*Stream, error) {
	return a.start(ctx, op, args, false)
}

func (a *Agent) start(ctx context.Context, op string, args any, reuse bool) (*Stream, error) {
	fail := func(err error) (*Stream, error) {
		return nil, &Error{Host: a.conn.Label(), Op: op, Err: err}
	}
	var raw json.RawMessage
	if args != nil {
		p, err := json.Marshal(args)
		if err != nil {
			return fail(fmt.Errorf("encoding arguments: %w", err))
		}
		raw = p
	}
	start := time.Now()
	for {
		var ss *session
		reused := reuse
		if reuse {
			ss = a.takeIdle()
			if ss == nil && a.waitPrepared(ctx) {
				ss = a.takeIdle()
			}
		}
		if ss == nil {
			var err error
			if ss, err = a.openSession(ctx, op); err != nil {
				return fail(err)
			}
			reused = false
		}
		ss.stderr.relabel(a.log.With("agent_op", op))
		s := &Stream{Conn: ss.conn, Peer: ss.peer, op: op, host: a.conn.Label(), a: a, ss: ss, start: start}
		s.stopCtx = context.AfterFunc(ctx, ss.kill)
		if err := s.WriteJSON(agentproto.FrameRequest, agentproto.Request{Op: op, Args: raw}); err != nil {
			s.stopCtx()
			ss.close()
			if reused {
				continue // the idle session had died: a new one
			}
			return fail(fmt.Errorf("sending the request: %w", err))
		}
		return s, nil
	}
}

// openSession opens a session, runs the agent and does the hello.
func (a *Agent) openSession(ctx context.Context, op string) (*session, error) {
	sess, err := a.conn.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	lf := newLogForwarder(a.log.With("agent_op", op))
	sess.Stderr = lf
	// The login shell expands $SSH_CONNECTION here, before sudo resets
	// the environment; the agent gets it as an argument.
	cmd := "exec " + a.sudo + shquote(a.info.Path) + " agent --ssh-connection \"$SSH_CONNECTION\""
	if err := sess.Start(cmd); err != nil {
		sess.Close()
		return nil, fmt.Errorf("starting the agent: %w", err)
	}
	ss := &session{sess: sess, conn: agentproto.NewConn(stdout, stdin), stdin: stdin, stderr: lf}
	stop := context.AfterFunc(ctx, ss.kill)
	defer stop()
	want := a.bin.SHA256
	peer, err := agentproto.ClientHello(ss.conn, agentproto.Hello{Build: want, Version: a.opts.Version, ControlMachineID: a.controlID})
	ss.peer = peer
	if err != nil {
		ss.close()
		if tail := lf.tail(); tail != "" {
			err = fmt.Errorf("%w; its stderr: %s", err, tail)
		}
		return nil, fmt.Errorf("%s: %w", a.info.Path, err)
	}
	if want != "" && peer.Build != want {
		ss.close()
		return nil, fmt.Errorf("%s is build %.12s…, want %.12s…: an old or foreign agent", a.info.Path, peer.Build, want)
	}
	if want == "" && a.opts.Preinstalled != "" {
		if self, err := LoadBinary(""); err == nil && self.SHA256 != peer.Build {
			a.log.Info("preinstalled agent is another build of the same protocol", "path", a.info.Path, "build", peer.Build)
		}
	}
	return ss, nil
}

// Prepare opens the session of the next operation now — an SSH
// session, the agent (through sudo), its hello — and keeps it for the
// next Start, which then only sends its request. A run calls it beside
// its first operation (the run lock, which keeps a session of its own for
// the whole run), so that the operation after that does not wait for an
// agent to start. Nothing but the hello reaches the agent before the
// next operation's request; Release ends the session unused. It returns
// the hello of the agent kept (or already waiting).
func (a *Agent) Prepare(ctx context.Context) (agentproto.Hello, error) {
	a.mu.Lock()
	if n := len(a.idle); n > 0 || a.preparing != nil {
		var peer agentproto.Hello
		if n > 0 {
			peer = a.idle[n-1].peer
		}
		a.mu.Unlock()
		return peer, nil
	}
	released := a.released
	done := make(chan struct{})
	a.preparing = done
	a.mu.Unlock()
	ss, err := a.openSession(ctx, "next")
	a.mu.Lock()
	keep := err == nil && a.released == released && len(a.idle) < maxIdle
	if keep {
		a.idle = append(a.idle, ss)
	}
	a.preparing = nil
	close(done)
	a.mu.Unlock()
	if err != nil {
		return agentproto.Hello{}, &Error{Host: a.conn.Label(), Op: "start", Err: err}
	}
	if !keep {
		ss.close()
	}
	return ss.peer, nil
}

// waitPrepared waits for the session Prepare is opening, if any, and
// says whether there was one.
func (a *Agent) waitPrepared(ctx context.Context) bool {
	a.mu.Lock()
	done := a.preparing
	a.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (a *Agent) takeIdle() *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.idle); n > 0 {
		ss := a.idle[n-1]
		a.idle = a.idle[:n-1]
		return ss
	}
	return nil
}

func (a *Agent) putIdle(ss *session) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.idle) >= maxIdle {
		return false
	}
	a.idle = append(a.idle, ss)
	return true
}

// Release ends the sessions kept for the next operations (their agents
// exit). The Agent still works: its next operation opens a new session.
func (a *Agent) Release() {
	a.mu.Lock()
	idle := a.idle
	a.idle = nil
	a.released++
	a.mu.Unlock()
	for _, ss := range idle {
		ss.close()
	}
}

// Result reads frames up to the Result, decoding its value into v (may
// be nil). Message and Data frames still unread are an error: read them
// with Recv first. An agent-side failure is a *agentproto.RemoteError.
func (s *Stream) Result(v any) error {
	t, p, err := s.ReadFrame()
	if err != nil {
		return s.wrap(s.exitError(err))
	}
	if t != agentproto.FrameResult {
		return s.wrap(fmt.Errorf("unexpected %s frame before the result", t))
	}
	var r agentproto.Result
	if err := json.Unmarshal(p, &r); err != nil {
		return s.wrap(fmt.Errorf("decoding the result: %w", err))
	}
	s.clean = true
	if r.Error != nil {
		return s.wrap(r.Error)
	}
	if v != nil && len(r.Value) > 0 {
		if err := json.Unmarshal(r.Value, v); err != nil {
			return s.wrap(fmt.Errorf("decoding the result: %w", err))
		}
	}
	return nil
}

func (s *Stream) wrap(err error) error { return &Error{Host: s.host, Op: s.op, Err: err} }

// exitError explains a stream that ended early with the agent's stderr.
func (s *Stream) exitError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		werr := s.ss.sess.Wait()
		msg := "the agent exited without a result"
		var missing *ssh.ExitMissingError
		switch {
		case errors.As(werr, &missing):
			// sshd never said how the agent ended: the connection went
			msg = "the SSH connection was lost before the agent's result"
		case werr != nil:
			msg += " (" + werr.Error() + ")"
		}
		if tail := s.ss.stderr.tail(); tail != "" {
			msg += ": " + tail
		}
		return errors.New(msg)
	}
	return err
}

// Close ends the operation. A session whose Result was read cleanly
// waits for the agent's next operation; any other ends.
func (s *Stream) Close() error {
	if s.ss == nil {
		return nil
	}
	ss := s.ss
	s.ss = nil
	live := s.stopCtx() // false: the context already killed it
	s.a.log.Debug("agent op done", "op", s.op, "took", time.Since(s.start))
	if s.clean && live && s.a.putIdle(ss) {
		return nil
	}
	return ss.close()
}

// Call runs op with args and decodes its result into result (may be nil).
func (a *Agent) Call(ctx context.Context, op string, args, result any) error {
	s, err := a.Start(ctx, op, args)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Result(result)
}

// logForwarder turns the agent's stderr (JSON slog lines) into records on
// the control node's logger, and keeps the last lines for error messages.
type logForwarder struct {
	log  *slog.Logger
	mu   sync.Mutex
	buf  []byte
	last []string
}

func newLogForwarder(l *slog.Logger) *logForwarder { return &logForwarder{log: l} }

func (f *logForwarder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		f.line(string(f.buf[:i]))
		f.buf = f.buf[i+1:]
	}
	if len(f.buf) > 64<<10 {
		f.line(string(f.buf))
		f.buf = nil
	}
	return len(p), nil
}

func (f *logForwarder) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		f.line(string(f.buf))
		f.buf = nil
	}
}

// relabel sends the next lines to l (the session's next operation) and
// forgets the last ones kept for error messages.
func (f *logForwarder) relabel(l *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log, f.last = l, nil
}

func (f *logForwarder) line(s string) {
	s = strings.TrimRight(s, "\r")
	if s == "" {
		return
	}
	var rec map[string]any
	if json.Unmarshal([]byte(s), &rec) == nil {
		level := slog.LevelInfo
		if l, ok := rec["level"].(string); ok {
			level.UnmarshalText([]byte(l))
		}
		msg, _ := rec["msg"].(string)
		var attrs []any
		for k, v := range rec {
			if k != "time" && k != "level" && k != "msg" {
				attrs = append(attrs, slog.Any(k, v))
			}
		}
		f.log.Log(context.Background(), level, "agent: "+msg, attrs...)
		if level >= slog.LevelWarn {
			f.keep(msg)
		}
		return
	}
	f.log.Warn("agent stderr", "line", s)
	f.keep(s)
}

func (f *logForwarder) keep(s string) {
	f.last = append(f.last, s)
	if len(f.last) > 5 {
		f.last = f.last[1:]
	}
}

func (f *logForwarder) tail() string {
	f.flush()
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.last, " | ")
}

func controlAddr(sshConnection string) string {
	if f := strings.Fields(sshConnection); len(f) == 4 {
		return f[0]
	}
	return ""
}

func atoi(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return -1
	}
	return n
}

// shquote quotes s for a POSIX shell.
func shquote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
