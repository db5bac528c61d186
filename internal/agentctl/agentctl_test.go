package agentctl_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/internal/sshx/sshdtest"
)

var (
	buildOnce  sync.Once
	buildDir   string
	binA, binB agentctl.Binary // two builds of the same code, different hashes
	buildErr   error
)

// builds compiles the holiday binary once per test run, statically, and a
// second build with another version string (an "old agent").
func builds(t *testing.T) (agentctl.Binary, agentctl.Binary) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "holiday-agent-build-")
		if buildErr != nil {
			return
		}
		for i, v := range []string{"test-a", "test-b"} {
			out := filepath.Join(buildDir, "holiday-"+v)
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+v, "-o", out,
				"github.com/holiday-ops/holiday/cmd/holiday")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if o, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build: %v: %s", err, o)
				return
			}
			b, err := agentctl.LoadBinary(out)
			if err != nil {
				buildErr = err
				return
			}
			if i == 0 {
				binA = b
			} else {
				binB = b
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binA, binB
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type env struct {
	srv  *sshdtest.Server
	dir  string
	key  sshdtest.Key
	kh   string
	logs *bytes.Buffer
	log  *slog.Logger
	adir string // agent dir on the "host"
}

func newEnv(t *testing.T) *env {
	sshdtest.Require(t)
	srv := sshdtest.Start(t, sshdtest.Config{})
	dir := t.TempDir()
	e := &env{srv: srv, dir: dir, key: sshdtest.NewKey(t, dir, "id_ed25519", ""), logs: &bytes.Buffer{}}
	e.kh = sshdtest.WriteKnownHosts(t, dir, srv.KnownHostsLine("ed25519"))
	e.log = slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, syncWriter{e.logs}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The agent dir lives outside the test's own private temp dirs so
	// that root-owned 0700 dirs in it are like /var/lib/holiday.
	adir, err := os.MkdirTemp("", "holiday-var-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(adir, 0o755)
	t.Cleanup(func() { os.RemoveAll(adir) })
	e.adir = filepath.Join(adir, "agent")
	return e
}

var logMu sync.Mutex

type syncWriter struct{ b *bytes.Buffer }

func (w syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.b.Write(p)
}

func (e *env) dial(t *testing.T, user string) *sshx.Conn {
	t.Helper()
	e.srv.Authorize(t, user, e.key.Public)
	c, err := sshx.Dial(ctxT(t), sshx.Target{Name: "web1", Host: e.srv.Host, Port: e.srv.Port, User: user},
		sshx.Options{Logger: e.log, KnownHosts: []string{e.kh}, IdentityFiles: []string{e.key.Path}, NoAgent: true, ConfigFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) opts(b agentctl.Binary) agentctl.Options {
	return agentctl.Options{Logger: e.log, Binaries: map[string]agentctl.Binary{"x86_64": b, "aarch64": b}, Dir: e.adir}
}

func TestDeployRootCachedAndReplaced(t *testing.T) {
	a, b := builds(t)
	e := newEnv(t)
	c := e.dial(t, "root")

	// First run uploads.
	ag, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
	if err != nil {
		t.Fatal(err)
	}
	info := ag.Info()
	if !info.Uploaded || info.Sudo || info.AgentUID != 0 || info.AgentBuild != a.SHA256 {
		t.Fatalf("first deploy: %+v", info)
	}
	t.Logf("upload of %d bytes over loopback: %s (probe %s)", a.Size, info.UploadTime, info.ProbeTime)
	want := filepath.Join(e.adir, a.SHA256, "holiday")
	if info.Path != want {
		t.Fatalf("path %s, want %s", info.Path, want)
	}
	assertPrivate(t, want, 0)
	st1, _ := os.Stat(want)

	var facts agent.BasicFacts
	if err := ag.Call(ctxT(t), "facts-basic", nil, &facts); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	mid, _ := os.ReadFile("/etc/machine-id")
	if facts.Hostname != host || facts.MachineID != strings.TrimSpace(string(mid)) || facts.EUID != 0 ||
		facts.ControlAddr != "127.0.0.1" || facts.Machine == "" || facts.Kernel == "" || facts.OSRelease["ID"] == "" {
		t.Fatalf("facts: %+v", facts)
	}

	// Second run: cached, no upload, file untouched.
	time.Sleep(10 * time.Millisecond)
	ag2, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
	if err != nil {
		t.Fatal(err)
	}
	if ag2.Info().Uploaded {
		t.Fatal("second deploy uploaded again")
	}
	st2, _ := os.Stat(want)
	if !st2.ModTime().Equal(st1.ModTime()) || !os.SameFile(st1, st2) {
		t.Fatal("cached agent was rewritten")
	}
	t.Logf("warm deploy (probe + ping): probe %s", ag2.Info().ProbeTime)
	// The upload left the stamp that spares later probes the hash; a
	// missing stamp only costs the hash, not an upload.
	if st, err := os.Stat(want + agentproto.StampSuffix); err != nil || st.Mode().Perm() != 0o600 || st.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Fatalf("stamp after the upload: %v, %v; want mode 0600, root's", st, err)
	}
	if err := os.Remove(want + agentproto.StampSuffix); err != nil {
		t.Fatal(err)
	}
	ag3, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
	if err != nil {
		t.Fatal(err)
	}
	if ag3.Info().Uploaded || ag3.Info().AgentBuild != a.SHA256 {
		t.Fatalf("deploy without the stamp: %+v", ag3.Info())
	}
	// Lazy: no ping session for a cached build; the first call's hello
	// checks it.
	lazy := e.opts(a)
	lazy.Lazy = true
	ag4, err := agentctl.Deploy(ctxT(t), c, lazy)
	if err != nil {
		t.Fatal(err)
	}
	if ag4.Info().Uploaded || ag4.Info().AgentBuild != "" {
		t.Fatalf("lazy deploy of a cached agent pinged or uploaded: %+v", ag4.Info())
	}
	if err := ag4.Call(ctxT(t), "facts-basic", nil, &facts); err != nil {
		t.Fatal(err)
	}
	const n = 10
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := ag2.Call(ctxT(t), "facts-basic", nil, &facts); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("facts-basic call on the kept session, mean of %d: %s", n, time.Since(start)/n)
	// An operation that fails on the host leaves the session usable.
	var re *agentproto.RemoteError
	if err := ag2.Call(ctxT(t), "no-such-op", nil, nil); !errors.As(err, &re) || re.Code != "unknown-op" {
		t.Fatalf("unknown op: %v, want the agent's unknown-op", err)
	}
	if err := ag2.Call(ctxT(t), "facts-basic", nil, &facts); err != nil {
		t.Fatalf("the call after a failed one: %v", err)
	}
	start = time.Now()
	for i := 0; i < n; i++ {
		ag2.Release()
		if err := ag2.Call(ctxT(t), "facts-basic", nil, &facts); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("facts-basic call on a new session (session + agent start + hello + op), mean of %d: %s", n, time.Since(start)/n)

	// Agents kept for the next operation run the cached binary, which
	// then can't be written (ETXTBSY): end them first.
	for _, x := range []*agentctl.Agent{ag, ag2, ag3, ag4} {
		x.Release()
	}
	for _, tc := range []struct {
		name    string
		corrupt func() error
	}{
		{"truncated", func() error { return os.Truncate(want, 1000) }},
		{"one byte flipped", func() error {
			f, err := os.OpenFile(want, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{0xff}, 5000)
			return err
		}},
		{"another build in its place", func() error {
			data, err := os.ReadFile(b.Path)
			if err != nil {
				return err
			}
			return os.WriteFile(want, data, 0o700)
		}},
		{"a shell script in its place", func() error { return os.WriteFile(want, []byte("#!/bin/sh\necho pwned\n"), 0o700) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.corrupt(); err != nil {
				t.Fatalf("corrupting the cached agent: %v", err)
			}
			ag, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
			if err != nil {
				t.Fatal(err)
			}
			defer ag.Release()
			if !ag.Info().Uploaded || ag.Info().Replaced == "" || ag.Info().AgentBuild != a.SHA256 {
				t.Fatalf("corrupted agent not replaced: %+v", ag.Info())
			}
			t.Logf("replaced: %s", ag.Info().Replaced)
			if err := ag.Call(ctxT(t), "ping", nil, nil); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("streams both ways", func(t *testing.T) {
		s, err := ag.Start(ctxT(t), "echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		payload := bytes.Repeat([]byte("holiday!"), 3<<20/8) // 3 MiB
		errc := make(chan error, 1)
		go func() {
			w := s.DataWriter()
			_, err := w.Write(payload)
			if err == nil {
				err = w.Close()
			}
			errc <- err
		}()
		var got []byte
		for {
			typ, p, err := s.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if typ == agentproto.FrameEOF {
				break
			}
			got = append(got, p...)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		var res map[string]int64
		if err := s.Result(&res); err != nil || res["bytes"] != int64(len(payload)) || !bytes.Equal(got, payload) {
			t.Fatalf("echo: %v %v, %d bytes back", res, err, len(got))
		}
	})

	t.Run("unknown op", func(t *testing.T) {
		err := ag.Call(ctxT(t), "no-such-op", nil, nil)
		var re *agentproto.RemoteError
		if !errors.As(err, &re) || re.Code != "unknown-op" {
			t.Fatalf("%v", err)
		}
		t.Logf("%v", err)
	})
}

func TestPreinstalled(t *testing.T) {
	a, b := builds(t)
	e := newEnv(t)
	c := e.dial(t, "root")
	t.Run("same protocol, other build", func(t *testing.T) {
		o := e.opts(a)
		o.Preinstalled = b.Path
		ag, err := agentctl.Deploy(ctxT(t), c, o)
		if err != nil {
			t.Fatal(err)
		}
		if ag.Info().Uploaded || ag.Info().AgentBuild != b.SHA256 {
			t.Fatalf("%+v", ag.Info())
		}
	})
	t.Run("foreign program", func(t *testing.T) {
		fake := filepath.Join(e.dir, "fake-agent")
		os.WriteFile(fake, []byte("#!/bin/sh\necho 'holiday 0.1: unknown command'\n"), 0o755)
		o := e.opts(a)
		o.Preinstalled = fake
		_, err := agentctl.Deploy(ctxT(t), c, o)
		if !errors.Is(err, agentproto.ErrForeign) {
			t.Fatalf("want ErrForeign, got %v", err)
		}
		t.Logf("%v", err)
	})
	t.Run("missing", func(t *testing.T) {
		o := e.opts(a)
		o.Preinstalled = "/nonexistent/holiday"
		_, err := agentctl.Deploy(ctxT(t), c, o)
		if err == nil {
			t.Fatal("deploy with a missing preinstalled agent succeeded")
		}
		t.Logf("%v", err)
	})
}

func TestFresh(t *testing.T) {
	a, _ := builds(t)
	e := newEnv(t)
	c := e.dial(t, "root")
	o := e.opts(a)
	o.Fresh = true
	var paths []string
	for i := 0; i < 2; i++ {
		ag, err := agentctl.Deploy(ctxT(t), c, o)
		if err != nil {
			t.Fatal(err)
		}
		if !ag.Info().Uploaded {
			t.Fatal("fresh deploy did not upload")
		}
		paths = append(paths, ag.Info().Path)
		if err := ag.Call(ctxT(t), "ping", nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := ag.Close(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Dir(ag.Info().Path)); !os.IsNotExist(err) {
			t.Fatalf("fresh agent dir left behind: %v", err)
		}
	}
	if paths[0] == paths[1] {
		t.Fatalf("fresh deploys reused %s", paths[0])
	}
}

// TestPrepare: the session Prepare opens (the agent started, its hello
// done) is the one the next operation runs on, not one started with
// StartOwn; after a Release it is not, and the agent works on.
func TestPrepare(t *testing.T) {
	a, _ := builds(t)
	e := newEnv(t)
	c := e.dial(t, "root")
	ag, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Release()
	ping := func() int {
		t.Helper()
		s, err := ag.Start(ctxT(t), "ping", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Result(nil); err != nil {
			t.Fatal(err)
		}
		return s.Peer.PID
	}
	prepared, err := ag.Prepare(ctxT(t))
	if err != nil || prepared.PID == 0 || prepared.Build != a.SHA256 {
		t.Fatalf("Prepare: %+v, %v", prepared, err)
	}
	// an operation that keeps its session (the run lock) gets one of its
	// own and leaves the prepared one to the next
	own, err := ag.StartOwn(ctxT(t), "ping", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Result(nil); err != nil || own.Peer.PID == prepared.PID {
		t.Errorf("StartOwn ran in agent %d (%v), the prepared one is %d", own.Peer.PID, err, prepared.PID)
	}
	defer own.Close()
	if pid := ping(); pid != prepared.PID {
		t.Errorf("the operation after Prepare ran in agent %d, not in the prepared %d", pid, prepared.PID)
	}
	// the ping's session waits for the next operation: Prepare keeps it
	again, err := ag.Prepare(ctxT(t))
	if err != nil || again.PID != prepared.PID {
		t.Errorf("Prepare beside an idle session: %+v, %v; want agent %d", again, err, prepared.PID)
	}
	ag.Release()
	if pid := ping(); pid == prepared.PID {
		t.Errorf("agent %d ran an operation after Release", pid)
	}
}

func TestSudo(t *testing.T) {
	a, _ := builds(t)
	e := newEnv(t)
	sshdtest.AddUser(t, "hxops", true)
	sshdtest.AddUser(t, "hxnosudo", false)

	t.Run("non-root with NOPASSWD sudo and env_reset", func(t *testing.T) {
		if out, _ := exec.Command("sudo", "-l", "-U", "hxops").CombinedOutput(); !bytes.Contains(out, []byte("env_reset")) {
			t.Fatalf("sudo defaults lack env_reset; the test would prove nothing:\n%s", out)
		}
		c := e.dial(t, "hxops")
		ag, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
		if err != nil {
			t.Fatal(err)
		}
		info := ag.Info()
		if !info.Sudo || info.LoginUser != "hxops" || info.AgentUID != 0 || !info.Uploaded {
			t.Fatalf("%+v", info)
		}
		assertPrivate(t, info.Path, 0)
		var facts agent.BasicFacts
		if err := ag.Call(ctxT(t), "facts-basic", nil, &facts); err != nil {
			t.Fatal(err)
		}
		if facts.EUID != 0 || facts.ControlAddr != "127.0.0.1" {
			t.Fatalf("through sudo: euid %d, control addr %q", facts.EUID, facts.ControlAddr)
		}
		// Proof that sudo really drops SSH_CONNECTION here.
		out, err := c.Output(ctxT(t), `sudo -n sh -c 'echo "[$SSH_CONNECTION]"'`)
		if err != nil || strings.TrimSpace(string(out)) != "[]" {
			t.Fatalf("sudo kept SSH_CONNECTION (%q, %v); the test would prove nothing", out, err)
		}
		ag2, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
		if err != nil || ag2.Info().Uploaded {
			t.Fatalf("second deploy via sudo: %v, uploaded=%v", err, ag2 != nil && ag2.Info().Uploaded)
		}
	})
	t.Run("no sudo", func(t *testing.T) {
		c := e.dial(t, "hxnosudo")
		_, err := agentctl.Deploy(ctxT(t), c, e.opts(a))
		if !errors.Is(err, agentctl.ErrNoSudo) {
			t.Fatalf("want ErrNoSudo, got %v", err)
		}
		t.Logf("%v", err)
	})
	t.Run("become none", func(t *testing.T) {
		c := e.dial(t, "hxnosudo")
		o := e.opts(a)
		o.Become, o.Dir = agentctl.BecomeNone, ""
		ag, err := agentctl.Deploy(ctxT(t), c, o)
		if err != nil {
			t.Fatal(err)
		}
		if ag.Info().AgentUID == 0 || ag.Info().Sudo || !strings.HasPrefix(ag.Info().Path, "/home/hxnosudo/.holiday/agent/") {
			t.Fatalf("%+v", ag.Info())
		}
	})
}

func assertPrivate(t *testing.T, path string, uid uint32) {
	t.Helper()
	for _, p := range []string{path, filepath.Dir(path)} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != 0o700 || sys.Uid != uid {
			t.Fatalf("%s: mode %v uid %d, want 0700 uid %d", p, st.Mode().Perm(), sys.Uid, uid)
		}
	}
}

// TestUploadArrivedDamaged: bytes whose SHA-256 is not the build's are
// refused before they replace anything, and leave nothing behind.
func TestUploadArrivedDamaged(t *testing.T) {
	a, _ := builds(t)
	e := newEnv(t)
	c := e.dial(t, "root")
	bad := a
	bad.SHA256 = strings.Repeat("0", 64) // what arrives is a's bytes
	_, err := agentctl.Deploy(ctxT(t), c, e.opts(bad))
	if err == nil || !strings.Contains(err.Error(), "upload arrived damaged") {
		t.Fatalf("deploy of damaged bytes: %v, want the upload refused", err)
	}
	ents, _ := os.ReadDir(filepath.Join(e.adir, bad.SHA256))
	if len(ents) != 0 {
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		t.Fatalf("the refused upload left %v behind", names)
	}
}
