package dbdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// toolPath is the PATH the tools are found in: the agent runs under sudo's
// env_reset, and nothing of the caller's environment (PGPASSWORD,
// MYSQL_PWD, PGHOST…) reaches a tool.
var toolPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookTool returns the first of names found on toolPath.
func lookTool(names ...string) (string, error) {
	for _, n := range names {
		for _, dir := range strings.Split(toolPath, ":") {
			p := dir + "/" + n
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found on this host (in %s): install the database's client tools", strings.Join(names, " or "), toolPath)
}

// tool is one database tool to run, as the Spec's OS user.
type tool struct {
	name string   // for messages: "pg_dump"
	argv []string // argv[0] is the name looked up on toolPath
	// alt are other names for argv[0] (mariadb-dump → mysqldump).
	alt  []string
	user string
	// background: the tool verifies a dump running beside it and gets
	// the CPU only after the dump (niceness backgroundNice, started).
	background bool
}

// backgroundNice is a background tool's niceness. A dump tool like
// pg_dump -Fc is single-threaded (it compresses as it goes) and is the
// whole backup's critical path: on a small host, every moment its
// verifier takes the CPU from it adds to the backup's time, while the
// verifier, a bounded queue behind, has the rest of the dump's time to
// catch up. Nothing of the database server itself is reniced.
const backgroundNice = 10

// started does what a tool needs once it runs: a background tool's whole
// process group (the tool runs as a group leader) goes to
// backgroundNice. It is best effort: a tool at the usual priority is
// still correct, only slower for the dump beside it.
func (t tool) started(cmd *exec.Cmd) {
	if t.background {
		unix.Setpriority(unix.PRIO_PGRP, cmd.Process.Pid, backgroundNice)
	}
}

// pipeSize is the pipe buffer asked for between a dump tool and the agent
// and between the agent and a verifier. Linux's default, 64 KiB, is a
// few milliseconds of pg_dump's output: a reader off the CPU for longer
// (two cores, a verifier and the SSH link beside the dump) would stop the
// dump on its write.
const pipeSize = 1 << 20

// widenPipe asks for pipeSize on the pipe f is an end of, best effort
// (the kernel may refuse: pipe-max-size, a user's pipe quota); the usual
// size is slower, not wrong.
func widenPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
}

// command builds the exec.Cmd: the tool found on toolPath, a clean
// environment (PATH, HOME, LC_ALL=C so messages are English), working
// directory "/", and, when the agent is root and the user another, the
// user's uid, gid and groups set in the child before exec (setgroups,
// setgid, setuid: a full drop, as setpriv --init-groups would).
func (t tool) command(ctx context.Context) (*exec.Cmd, error) {
	bin, err := lookTool(append([]string{t.argv[0]}, t.alt...)...)
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup(t.user)
	if err != nil {
		return nil, fmt.Errorf("%s must run as the OS user %q: %w", t.name, t.user, err)
	}
	cmd := exec.CommandContext(ctx, bin, t.argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=" + toolPath, "HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username, "LC_ALL=C"}
	cmd.WaitDelay = 10 * time.Second
	cred, err := credential(u)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	// Kill the tool's whole process group: pg_dumpall runs psql.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd, nil
}

// credential is nil when the agent already runs as u, the drop to u when
// it is root, and an error otherwise.
func credential(u *user.User) (*syscall.Credential, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s has a non-numeric uid/gid %s/%s", u.Username, u.Uid, u.Gid)
	}
	me := os.Geteuid()
	if uint64(me) == uid {
		return nil, nil
	}
	if me != 0 {
		return nil, fmt.Errorf("the agent runs as uid %d, not root, so it cannot run the tool as %s (uid %d)", me, u.Username, uid)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, nil
}

// stderrTail keeps the last lines a tool wrote to stderr, bounded.
type stderrTail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 4 << 10

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	if len(s.buf) > 2*tailMax {
		s.buf = append(s.buf[:0], s.buf[len(s.buf)-tailMax:]...)
	}
	return len(p), nil
}

// line is the tail as one line: the last non-empty lines (at most 3, the
// ones that say what failed), trimmed and joined with " ".
func (s *stderrTail) line() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return oneLine(string(s.buf), 3)
}

func oneLine(text string, max int) string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Got errno 32 on write") {
			continue
		}
		lines = append(lines, l)
	}
	// From the last line that says what failed (mariadb echoes the
	// statement before its ERROR line; pg tools write "tool: error:").
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "ERROR ") || strings.Contains(lines[i], "error:") {
			lines = lines[i:]
			break
		}
	}
	if len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	out := strings.Join(lines, " ")
	if len(out) > 600 {
		out = "…" + out[len(out)-600:]
	}
	return out
}

// exitError words a tool's failure for the operator: what ran, how it
// ended, and what it said last. err is cmd.Wait's.
func exitError(what string, err error, stderr string) error {
	var ee *exec.ExitError
	var how string
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			how = fmt.Sprintf("was killed by signal %s", signalName(ws.Signal()))
		} else {
			how = fmt.Sprintf("exited with status %d", ee.ExitCode())
		}
	default:
		how = "failed: " + err.Error()
	}
	if stderr != "" {
		return fmt.Errorf("%s %s: %s", what, how, stderr)
	}
	return fmt.Errorf("%s %s", what, how)
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGPIPE:
		return "PIPE"
	case syscall.SIGSEGV:
		return "SEGV"
	}
	return sig.String()
}

// run runs t to completion with stdin and returns its stdout; failures
// carry the stderr tail.
func (t tool) run(ctx context.Context, stdin io.Reader) (string, error) {
	cmd, err := t.command(ctx)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	var errb stderrTail
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), exitError(t.name, err, errb.line())
	}
	return out.String(), nil
}
