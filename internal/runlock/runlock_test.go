package runlock

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

func TestLocalBusyReleaseStale(t *testing.T) {
	dir := t.TempDir()
	a := Me("20261206T020000Z-aaaaaa", "lockdown")
	l, stale, err := Local(dir, "sys1", a)
	if err != nil || stale != nil {
		t.Fatalf("first lock: %v, stale %v", err, stale)
	}
	// A second run (another open file description: another process as
	// far as flock goes) is refused with the first one's record.
	b := Me("20261206T020001Z-bbbbbb", "restore")
	_, _, err = Local(dir, "sys1", b)
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: want busy, got %v", err)
	}
	if be.Holder.Run != a.Run || be.Holder.Command != "lockdown" || be.Holder.PID != os.Getpid() || be.Holder.User == "" || be.Holder.ControlNode == "" {
		t.Fatalf("busy names %+v, want the first run's record", be.Holder)
	}
	for _, want := range []string{"lockdown run 20261206T020000Z-aaaaaa", "from control node", "started"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("busy message %q lacks %q", err, want)
		}
	}
	// Another host is free.
	if o, _, err := Local(dir, "sys2", b); err != nil {
		t.Fatalf("other host: %v", err)
	} else {
		o.Release()
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, stale, err := Local(dir, "sys1", b)
	if err != nil || stale != nil {
		t.Fatalf("after release: %v, stale %v (a released lock leaves no record)", err, stale)
	}
	l2.Release()
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestStaleRecordTakenOver(t *testing.T) {
	pid := deadPID(t)
	for _, tc := range []struct {
		name   string
		holder Holder
		why    string
	}{
		{"process gone", Holder{Run: "r1", Command: "lockdown", BootID: BootID(), PID: pid}, "process"},
		{"rebooted", Holder{Run: "r2", Command: "restore", BootID: "another-boot", PID: os.Getpid()}, "rebooted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, _ := json.Marshal(tc.holder)
			if err := os.MkdirAll(filepath.Join(dir, "locks"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "locks", "h.lock"), b, 0o600); err != nil {
				t.Fatal(err)
			}
			l, stale, err := Local(dir, "h", Me("r3", "lockdown"))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			if stale == nil || stale.Holder.Run != tc.holder.Run || !strings.Contains(stale.Why, tc.why) {
				t.Fatalf("stale = %+v, want %s's record, why containing %q", stale, tc.holder.Run, tc.why)
			}
			if !strings.Contains(stale.String(), "took over a stale lock left by") {
				t.Errorf("stale message: %s", stale)
			}
		})
	}
}

func TestWait(t *testing.T) {
	busy := &BusyError{Holder: Holder{Run: "x"}}
	n := 0
	waited := 0
	err := Wait(context.Background(), 3*time.Second, func() error {
		n++
		if n < 2 {
			return busy
		}
		return nil
	}, func(*BusyError) { waited++ })
	if err != nil || n != 2 || waited != 1 {
		t.Fatalf("Wait: err %v after %d tries, %d waits", err, n, waited)
	}
	// No wait asked: the busy error comes back at once.
	n = 0
	if err := Wait(context.Background(), 0, func() error { n++; return busy }, nil); !errors.Is(err, ErrBusy) || n != 1 {
		t.Fatalf("Wait 0: %v after %d tries", err, n)
	}
	// A deadline that passes returns the last busy error.
	start := time.Now()
	if err := Wait(context.Background(), 100*time.Millisecond, func() error { return busy }, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("Wait past deadline: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Wait overran its deadline: %v", d)
	}
}

func init() { agent.Register(Handler()) }

// hostSession runs the run-lock operation in an in-process agent and
// returns the control end and a hang-up func.
func hostSession(t *testing.T, me Holder) (*agentproto.Conn, func(), chan error) {
	t.Helper()
	ar, cw := io.Pipe()
	cr, aw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := agent.Serve(context.Background(), ar, aw, agent.Config{})
		aw.Close()
		done <- err
	}()
	c := agentproto.NewConn(cr, cw)
	if _, err := agentproto.ClientHello(c, agentproto.Hello{}); err != nil {
		t.Fatal(err)
	}
	args, _ := json.Marshal(me)
	if err := c.WriteJSON(agentproto.FrameRequest, agentproto.Request{Op: OpName, Args: args}); err != nil {
		t.Fatal(err)
	}
	// Hanging up also drains what the agent still writes (an SSH
	// channel would discard it), so the agent never blocks on a pipe.
	return c, func() { cw.Close(); go io.Copy(io.Discard, cr) }, done
}

// answer reads the first answer of a run-lock session: held (a message)
// or busy (the result).
func answer(t *testing.T, c *agentproto.Conn) hostMsg {
	t.Helper()
	ft, p, err := c.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	var m hostMsg
	switch ft {
	case agentproto.FrameMessage:
		json.Unmarshal(p, &m)
	case agentproto.FrameResult:
		var r agentproto.Result
		json.Unmarshal(p, &r)
		if r.Error != nil {
			t.Fatalf("run-lock failed: %v", r.Error)
		}
		json.Unmarshal(r.Value, &m)
	}
	return m
}

func TestHostOp(t *testing.T) {
	HostPath = filepath.Join(t.TempDir(), "run.lock")
	a := Holder{Run: "run-a", Command: "lockdown", ControlNode: "ctl-a", User: "ops", Started: time.Now()}
	b := Holder{Run: "run-b", Command: "restore", ControlNode: "ctl-b", User: "oncall", Started: time.Now()}

	ca, hangA, doneA := hostSession(t, a)
	if m := answer(t, ca); !m.Held || m.Stale != nil {
		t.Fatalf("first run: %+v, want held", m)
	}
	// A second control node is told who holds it; its session ends cleanly.
	cb, hangB, doneB := hostSession(t, b)
	m := answer(t, cb)
	if m.Busy == nil || m.Busy.Run != "run-a" || m.Busy.ControlNode != "ctl-a" || m.Busy.User != "ops" || m.Busy.PID != os.Getpid() || m.Busy.BootID == "" {
		t.Fatalf("second run: %+v, want busy with run-a's record (pid and boot id filled in by the host)", m)
	}
	hangB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	// Release: the lock is free, with no record left.
	if err := ca.WriteJSON(agentproto.FrameMessage, hostMsg{Release: true}); err != nil {
		t.Fatal(err)
	}
	var r agentproto.Result
	if err := ca.ReadJSON(agentproto.FrameResult, &r); err != nil || r.Error != nil {
		t.Fatalf("release: %v %v", err, r.Error)
	}
	hangA()
	<-doneA
	if b, _ := os.ReadFile(HostPath); len(b) != 0 {
		t.Fatalf("a released lock keeps a record: %s", b)
	}
	// The control node goes away mid-run (EOF): the agent drops the lock.
	cb, hangB, doneB = hostSession(t, b)
	if m := answer(t, cb); !m.Held {
		t.Fatalf("after release: %+v, want held", m)
	}
	hangB()
	<-doneB
	cc, hangC, doneC := hostSession(t, a)
	if m := answer(t, cc); !m.Held || m.Stale != nil {
		t.Fatalf("after the holder's session ended: %+v, want held without a stale record", m)
	}
	hangC()
	<-doneC
}
