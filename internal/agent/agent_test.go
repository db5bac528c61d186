package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/internal/agentproto"
)

func init() {
	Register(Handler{Name: "test-firewall", Class: ClassFirewall, Run: func(ctx context.Context, op *Op) (any, error) {
		return "applied", nil
	}})
}

// session runs Serve in-process and returns the control end, and a
// func that closes the control's side (the agent then sees EOF).
func session(t *testing.T, cfg Config) (*agentproto.Conn, func(), chan error) {
	ar, cw := io.Pipe()
	cr, aw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Serve(context.Background(), ar, aw, cfg)
		aw.Close()
		done <- err
	}()
	return agentproto.NewConn(cr, cw), func() { cw.Close() }, done
}

func call(t *testing.T, cfg Config, hello agentproto.Hello, op string) (agentproto.Hello, agentproto.Result) {
	t.Helper()
	c, hangUp, done := session(t, cfg)
	peer, err := agentproto.ClientHello(c, hello)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteJSON(agentproto.FrameRequest, agentproto.Request{Op: op}); err != nil {
		t.Fatal(err)
	}
	var r agentproto.Result
	if err := c.ReadJSON(agentproto.FrameResult, &r); err != nil {
		t.Fatal(err)
	}
	hangUp()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return peer, r
}

// TestSessionTakesOpsInTurn: one hello, several requests each answered by
// its result (a failing one included), and a clean end at EOF between
// requests; an EOF before any request is an error.
func TestSessionTakesOpsInTurn(t *testing.T) {
	c, hangUp, done := session(t, Config{})
	if _, err := agentproto.ClientHello(c, agentproto.Hello{}); err != nil {
		t.Fatal(err)
	}
	for i, op := range []string{"ping", "no-such-op", "facts-basic", "ping"} {
		if err := c.WriteJSON(agentproto.FrameRequest, agentproto.Request{Op: op}); err != nil {
			t.Fatal(err)
		}
		var r agentproto.Result
		if err := c.ReadJSON(agentproto.FrameResult, &r); err != nil {
			t.Fatalf("request %d (%s): %v", i, op, err)
		}
		if (r.Error != nil) != (op == "no-such-op") {
			t.Fatalf("request %d (%s): %+v", i, op, r)
		}
	}
	hangUp()
	if err := <-done; err != nil {
		t.Fatalf("EOF between requests: %v, want a clean end", err)
	}

	c, hangUp, done = session(t, Config{})
	if _, err := agentproto.ClientHello(c, agentproto.Hello{}); err != nil {
		t.Fatal(err)
	}
	hangUp()
	if err := <-done; err == nil {
		t.Fatal("EOF before any request ended the session cleanly, want an error")
	}
}

func TestControlNodeGuard(t *testing.T) {
	dir := t.TempDir()
	hostID := filepath.Join(dir, "machine-id")
	os.WriteFile(hostID, []byte("aaaa1111\n"), 0o644)
	for _, tc := range []struct {
		name, controlID string
		files           []string
		refused         bool
	}{
		{"same machine", "aaaa1111", []string{hostID}, true},
		{"another machine", "bbbb2222", []string{hostID}, false},
		{"control sent no id", "", []string{hostID}, true},
		{"host has no id", "bbbb2222", []string{filepath.Join(dir, "missing")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := call(t, Config{MachineIDFiles: tc.files}, agentproto.Hello{ControlMachineID: tc.controlID}, "test-firewall")
			if tc.refused != (r.Error != nil) {
				t.Fatalf("refused=%v, want %v: %+v", r.Error != nil, tc.refused, r.Error)
			}
			if tc.refused && (r.Error.Code != "refused" || !strings.Contains(r.Error.Message, "control node")) {
				t.Fatalf("refusal: %+v", r.Error)
			}
			if r.Error != nil {
				t.Logf("%s", r.Error.Message)
			}
		})
	}
	// Read operations are not guarded.
	_, r := call(t, Config{MachineIDFiles: []string{hostID}}, agentproto.Hello{ControlMachineID: "aaaa1111"}, "ping")
	if r.Error != nil {
		t.Fatalf("ping refused: %v", r.Error)
	}
}

func TestHelloCarriesControlAddr(t *testing.T) {
	peer, r := call(t, Config{SSHConnection: "10.0.0.7 51234 10.0.1.10 22"}, agentproto.Hello{}, "facts-basic")
	if peer.ControlAddr != "10.0.0.7" {
		t.Fatalf("control addr %q", peer.ControlAddr)
	}
	var f BasicFacts
	if err := json.Unmarshal(r.Value, &f); err != nil || f.ControlAddr != "10.0.0.7" || f.Kernel == "" || f.Machine == "" {
		t.Fatalf("facts: %+v %v", f, err)
	}
	if peer.Build == "" {
		t.Fatal("hello has no build hash")
	}
}

func TestUnknownOp(t *testing.T) {
	_, r := call(t, Config{}, agentproto.Hello{}, "no-such-op")
	if r.Error == nil || r.Error.Code != "unknown-op" {
		t.Fatalf("%+v", r)
	}
}

func TestVersionMismatchEndsSession(t *testing.T) {
	c, _, done := session(t, Config{})
	c.WriteJSON(agentproto.FrameHello, agentproto.Hello{Magic: agentproto.Magic, Protocol: agentproto.Version + 1})
	var h agentproto.Hello
	if err := c.ReadJSON(agentproto.FrameHello, &h); err != nil {
		t.Fatal(err)
	}
	var ve *agentproto.VersionError
	if err := <-done; !errors.As(err, &ve) {
		t.Fatalf("agent went on after a version mismatch: %v", err)
	}
}

func TestParseOSRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "os-release")
	os.WriteFile(p, []byte("# c\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nPRETTY_NAME='A \\\"q\\\"'\n"), 0o644)
	m, err := ParseOSRelease(p)
	if err != nil || m["NAME"] != "Debian GNU/Linux" || m["VERSION_ID"] != "12" || m["ID"] != "debian" || m["PRETTY_NAME"] != `A "q"` {
		t.Fatalf("%v %v", m, err)
	}
}

// TestSelfHashStamp: the agent trusts its directory's name as its build
// while the stamp matches the running file, and hashes itself otherwise.
func TestSelfHashStamp(t *testing.T) {
	content := []byte("an agent binary")
	sum := sha256.Sum256(content)
	real := hex.EncodeToString(sum[:])
	named := strings.Repeat("ab", 32) // what the directory claims
	dir := filepath.Join(t.TempDir(), named)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "holiday")
	if err := os.WriteFile(exe, content, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "exe") // stands for /proc/self/exe
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	stamp := func() {
		f, err := os.Open(exe)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := agentproto.StatStamp(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe+agentproto.StampSuffix, []byte(st+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"no stamp: hashed", func() {}, real},
		{"matching stamp: the directory's name", stamp, named},
		{"written after the stamp: hashed", func() {
			stamp()
			time.Sleep(10 * time.Millisecond)
			if err := os.WriteFile(exe, content, 0o700); err != nil { // same bytes, new ctime
				t.Fatal(err)
			}
		}, real},
		{"garbage stamp: hashed", func() { os.WriteFile(exe+agentproto.StampSuffix, []byte("1 2 3 4.5"), 0o600) }, real},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(exe + agentproto.StampSuffix)
			tc.setup()
			got, err := selfHash(link)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("selfHash = %.12s…, want %.12s…", got, tc.want)
			}
		})
	}
}

// TestGrowPipe: the agent's stdout, a pipe to sshd, is grown; anything
// else is left alone.
func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	growPipe(w)
	if n, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0); err != nil || n != pipeSize {
		t.Errorf("pipe size %d (%v), want %d", n, err, pipeSize)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	growPipe(f)          // a file: nothing to grow, nothing fails
	growPipe(io.Discard) // not even a file
}
