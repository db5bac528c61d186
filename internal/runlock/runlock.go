// Package runlock keeps two runs from changing one host at once (DESIGN
// §5): two writers on one journal is the one thing the journal's chain
// cannot survive, and two runs interleaving stop/start on the same units
// leave a host in neither run's state.
//
// A run that changes a host (lockdown, restore, rollback, isolate) holds
// two exclusive locks on it for its whole duration:
//
//   - on the control node, a file per host in the state directory
//     (Local): two runs from one control node exclude each other before
//     either connects;
//   - on the host itself, held by an agent session that lives as long as
//     the run (Host, the "run-lock" operation): two control nodes exclude
//     each other.
//
// Both are flock(2) locks on a file that also names the holder (run,
// command, control node, user, start time, and on the host the boot id and
// the holding agent's PID). The kernel drops a flock when its holder dies,
// so a lock whose process is gone is free; the holder record it left
// behind is then reported as taken over (with why it is stale: another
// boot, or its PID gone). A busy lock is refused with the holder's record,
// in a *BusyError.
//
// It imports nothing of holiday's above internal/.
package runlock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Holder is who holds (or held) a lock.
type Holder struct {
	Run         string    `json:"run"`
	Command     string    `json:"command"`      // lockdown, restore, rollback, …
	ControlNode string    `json:"control_node"` // the control node's hostname
	User        string    `json:"user"`         // who ran it there
	Started     time.Time `json:"started"`
	// Filled in where the lock is taken.
	BootID string `json:"boot_id,omitempty"`
	PID    int    `json:"pid,omitempty"`
}

// Me returns a Holder for a run of command started now by this process.
func Me(run, command string) Holder {
	h := Holder{Run: run, Command: command, Started: time.Now().UTC()}
	h.ControlNode, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	} else {
		h.User = strconv.Itoa(os.Getuid())
	}
	return h
}

// String names the holder for an operator: run, command, where, who, when.
func (h Holder) String() string {
	s := fmt.Sprintf("%s run %s", orUnknown(h.Command), orUnknown(h.Run))
	s += fmt.Sprintf(" from control node %s as %s", orUnknown(h.ControlNode), orUnknown(h.User))
	if !h.Started.IsZero() {
		s += fmt.Sprintf(", started %s (%s ago)", h.Started.UTC().Format("2006-01-02 15:04:05 UTC"), time.Since(h.Started).Round(time.Second))
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// BusyError says another run holds the lock.
type BusyError struct {
	Where  string // "on the host" or "on this control node"
	Holder Holder
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("busy: %s holds this host %s", e.Holder, e.Where)
}

// Hint is what the operator can do about it.
func (e *BusyError) Hint() string {
	return "one run per host at a time: wait for it to finish, or pass --wait DURATION to queue behind it"
}

// ErrBusy matches every *BusyError with errors.Is.
var ErrBusy = errors.New("busy")

// Is makes errors.Is(err, ErrBusy) true for a *BusyError.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Stale describes a holder record found in a lock that was free: its run
// ended without releasing it (killed, crashed, the machine rebooted).
type Stale struct {
	Holder Holder `json:"holder"`
	Why    string `json:"why"`
}

func (s *Stale) String() string {
	return fmt.Sprintf("took over a stale lock left by %s (%s)", s.Holder, s.Why)
}

// Lock is a held lock file.
type Lock struct {
	f *os.File
}

// Release empties the holder record and drops the lock. Safe to call
// twice.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Empty first: a record left in a free lock reads as stale.
	terr := f.Truncate(0)
	if terr == nil {
		terr = f.Sync()
	}
	cerr := f.Close() // drops the flock
	return errors.Join(terr, cerr)
}

// take flocks path without waiting and, if it got it, writes me as the
// holder. A busy lock returns the current holder's record in a BusyError
// (where says which side). A free lock that still names a holder returns
// it as stale (whyStale says why that holder is gone).
func take(path, where string, me Holder, whyStale func(Holder) string) (*Lock, *Stale, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("run lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("run lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h, _ := readHolder(f)
			return nil, nil, &BusyError{Where: where, Holder: h}
		}
		return nil, nil, fmt.Errorf("run lock %s: %w", path, err)
	}
	var stale *Stale
	if old, err := readHolder(f); err == nil && old.Run != "" {
		stale = &Stale{Holder: old, Why: whyStale(old)}
	}
	b, _ := json.Marshal(me)
	if err := writeAll(f, append(b, '\n')); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("run lock %s: %w", path, err)
	}
	return &Lock{f: f}, stale, nil
}

func readHolder(f *os.File) (Holder, error) {
	var h Holder
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, 0)
	if n == 0 {
		return h, err
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(b[:n]))), &h); err != nil {
		return h, err
	}
	return h, nil
}

func writeAll(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// Local takes this control node's lock on host in stateDir: the file
// stateDir/locks/<host>.lock. A lock held by another process of this
// machine is a *BusyError.
func Local(stateDir, host string, me Holder) (*Lock, *Stale, error) {
	me.PID = os.Getpid()
	me.BootID = BootID()
	path := filepath.Join(stateDir, "locks", host+".lock")
	return take(path, "on this control node ("+path+")", me, whyGone)
}

// whyGone says why a holder record in a free lock is stale.
func whyGone(h Holder) string {
	switch {
	case h.BootID != "" && h.BootID != BootID():
		return "the machine has rebooted since"
	case h.PID > 0 && !alive(h.PID):
		return fmt.Sprintf("its process %d is gone", h.PID)
	case h.PID > 0:
		return fmt.Sprintf("its process %d no longer holds the lock", h.PID)
	}
	return "its holder is gone"
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// BootID is this machine's boot id ("" if unknown).
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Wait calls try until it does not return a busy error or d has passed
// (d 0: once). onWait is told about each busy answer before waiting.
func Wait(ctx context.Context, d time.Duration, try func() error, onWait func(*BusyError)) error {
	deadline := time.Now().Add(d)
	for {
		err := try()
		var be *BusyError
		if !errors.As(err, &be) || d <= 0 || time.Now().After(deadline) {
			return err
		}
		if onWait != nil {
			onWait(be)
		}
		wait := min(2*time.Second, time.Until(deadline))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(max(wait, 10*time.Millisecond)):
		}
	}
}
