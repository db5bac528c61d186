package actions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/units"
)

// KindPower is the power action's kind; its only target is "off".
const KindPower = "power"

func init() {
	RegisterKind(KindPower, func(target string) (Action, error) {
		if target != "off" {
			return nil, fmt.Errorf("power: unknown target %q", target)
		}
		return Power{}, nil
	})
}

// Power switches the host off as the last step of its lockdown (slot
// power, after every other step and after the journal — the control
// node's copy, fsynced, which is off the host — holds the intent).
//
// The agent answers first and powers the host off a few seconds later
// from a detached process (setsid, not a child of the SSH session), so
// the result and the run's end reach the journal while the host is still
// up. Revert has nothing to switch on — a host restore can reach is on —
// so it only clears the test marker; a host restore cannot reach whose
// journal holds this step is reported as "powered-off" with how it comes
// back (PowerPrior), not as a failure.
//
// Test hook: with HOLIDAY_TEST_POWEROFF=record in the control node's
// environment, the agent does everything but the poweroff itself: the
// detached process writes PowerTestMarker on the host instead. The lab's
// hosts can't be powered off and brought back by a test (a SysV lab host
// is a pid namespace that `poweroff -f` would end for good; only
// lab/up.sh brings one back), so the real poweroff command is NOT
// exercised by the lab tests.
type Power struct {
	// Plan is the host's plan entry's power section (nil when restoring
	// from the journal alone: the prior record has it).
	On, Contact, MAC, IPMIAddress, IPMIUser string
}

// PowerTestMarker is written on the host instead of powering off when the
// control node runs with HOLIDAY_TEST_POWEROFF=record.
var PowerTestMarker = "/var/lib/holiday/poweroff-test"

// PowerPrior is the power action's Observe record: how the host comes
// back, for restore to print. It holds no IPMI password (the plan names
// only where that comes from).
type PowerPrior struct {
	On          string `json:"on"` // manual, wol or ipmi
	Contact     string `json:"contact,omitempty"`
	MAC         string `json:"mac,omitempty"`
	IPMIAddress string `json:"ipmi_address,omitempty"`
	IPMIUser    string `json:"ipmi_user,omitempty"`
	Init        string `json:"init,omitempty"`
	BootID      string `json:"boot_id,omitempty"` // the host's boot before lockdown
}

// PowerDone is the power action's Apply record.
type PowerDone struct {
	Command   string    `json:"command"`           // what the detached process runs
	Test      bool      `json:"test,omitempty"`    // HOLIDAY_TEST_POWEROFF=record: marker only
	DelaySecs int       `json:"delay_s"`           // after the agent's answer
	At        time.Time `json:"scheduled_at"`      // the host's clock
	BootID    string    `json:"boot_id,omitempty"` // the boot that is being powered off
	PID       int       `json:"pid,omitempty"`     // the detached process
	Error     string    `json:"error,omitempty"`   // scheduling failed
}

// HowBack is one line saying how the host is switched on again.
func (p PowerPrior) HowBack() string {
	var parts []string
	switch p.On {
	case "wol":
		parts = append(parts, "Wake-on-LAN to "+p.MAC)
	case "ipmi":
		s := "IPMI power on at " + p.IPMIAddress
		if p.IPMIUser != "" {
			s += " (user " + p.IPMIUser + ")"
		}
		parts = append(parts, s)
	default:
		parts = append(parts, "by hand")
	}
	if p.Contact != "" {
		parts = append(parts, "contact: "+p.Contact)
	}
	return strings.Join(parts, "; ")
}

type powerArgs struct {
	Test  bool `json:"test,omitempty"`
	Delay int  `json:"delay_s,omitempty"`
}

// Observe records how the host comes back, from the plan, and the host's
// boot ID.
func (p Power) Observe(ctx context.Context, h *Host) (Record, error) {
	pr := PowerPrior{On: p.On, Contact: p.Contact, MAC: p.MAC, IPMIAddress: p.IPMIAddress, IPMIUser: p.IPMIUser}
	if h.Plan != nil && h.Plan.Power != nil {
		pw := h.Plan.Power
		pr = PowerPrior{On: string(pw.On), Contact: pw.Contact, MAC: pw.MAC, IPMIAddress: pw.IPMIAddress, IPMIUser: pw.IPMIUser}
	}
	var st powerState
	if err := h.Agent.Call(ctx, "power-observe", powerArgs{}, &st); err != nil {
		return Record{}, err
	}
	pr.Init, pr.BootID = st.Init, st.BootID
	return NewRecord(KindPower, "off", pr)
}

// Apply schedules the poweroff on the host (an agent op of the power
// class: the agent refuses it on the control node's own machine).
func (Power) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	var d PowerDone
	if err := h.Agent.Call(ctx, "power-off", powerArgs{Test: powerTestMode()}, &d); err != nil {
		rec, _ := NewRecord(KindPower, "off", PowerDone{Error: err.Error()})
		return rec, err
	}
	rec, err := NewRecord(KindPower, "off", d)
	if err == nil && d.Error != "" {
		err = errors.New(d.Error)
	}
	return rec, err
}

// Verify: right after Apply the poweroff is scheduled, which is all that
// can hold yet. Later (holiday status), a host that answers at all was
// switched on again during the break — drift — unless the test marker
// says the poweroff was only recorded.
func (Power) Verify(ctx context.Context, h *Host, done Record) error {
	var d PowerDone
	if err := done.Decode(&d); err != nil {
		return err
	}
	var st powerState
	if err := h.Agent.Call(ctx, "power-observe", powerArgs{}, &st); err != nil {
		return err
	}
	if st.BootID == d.BootID && time.Since(d.At) < time.Duration(d.DelaySecs+60)*time.Second {
		return nil // scheduled, not yet due
	}
	if d.Test && st.Marker {
		return nil
	}
	return fmt.Errorf("the host is on (powered off at lockdown, boot %s now): someone switched it on", short(st.BootID))
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// Revert: a host that restore reaches is on. A poweroff still waiting
// out its delay (restore right after lockdown, or after a control node
// that died between scheduling it and journaling that) is cancelled; the
// test marker is cleared.
func (Power) Revert(ctx context.Context, h *Host, prior, done Record) error {
	return h.Agent.Call(ctx, "power-revert", powerArgs{}, nil)
}

// --- host side ---

type powerState struct {
	Init   string `json:"init"`
	BootID string `json:"boot_id"`
	Marker bool   `json:"test_marker,omitempty"`
}

func bootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

func powerObserve(ctx context.Context, op *agent.Op) (any, error) {
	_, err := os.Stat(PowerTestMarker)
	return powerState{Init: string(units.Detect()), BootID: bootID(), Marker: err == nil}, nil
}

// powerOffDelay is how long the detached process waits after the agent
// answered: long enough for the control node to journal the result and
// push the journal copy, short enough that the operator sees it happen.
const powerOffDelay = 5

// PowerOffCommand is the shell command that switches the host off, by
// init system. A variable so that nothing else needs changing for a host
// kind that wants another.
func PowerOffCommand(init units.Init) string {
	if init == units.Systemd {
		return "systemctl poweroff"
	}
	// SysV: shutdown(8) tells init; `poweroff` is the fallback (on a
	// SysV host with systemd-sysv installed it is systemctl's, which
	// talks to /run/initctl).
	return "if command -v shutdown >/dev/null; then shutdown -h now; else poweroff; fi"
}

func powerOff(ctx context.Context, op *agent.Op) (any, error) {
	var a powerArgs
	if err := jsonUnmarshal(op.Args, &a); err != nil {
		return nil, err
	}
	d := PowerDone{Test: a.Test, DelaySecs: powerOffDelay, At: time.Now().UTC(), BootID: bootID()}
	if a.Delay > 0 {
		d.DelaySecs = a.Delay
	}
	d.Command = PowerOffCommand(units.Detect())
	script := d.Command
	if a.Test {
		// The test hook: everything but the poweroff itself.
		if err := os.MkdirAll(filepath.Dir(PowerTestMarker), 0o700); err != nil {
			return nil, err
		}
		script = fmt.Sprintf("printf '%%s\\n' %s > %s", shellQuote("would run: "+d.Command), shellQuote(PowerTestMarker))
	}
	full := fmt.Sprintf("sleep %d; %s", d.DelaySecs, script)
	c := exec.Command("/bin/sh", "-c", full)
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
	c.Dir = "/"
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", pendingMark()}
	if err := c.Start(); err != nil {
		d.Error = err.Error()
		return d, nil
	}
	d.PID = c.Process.Pid
	c.Process.Release() // not waited for: it outlives this agent
	return d, nil
}

// pendingMark is in the environment of the detached process that waits
// out the delay: a revert finds it there (/proc/PID/environ) and cancels
// a poweroff still pending, whether or not the control node lived to
// journal its PID. It names the machine, should a /proc show another's.
func pendingMark() string {
	id, err := agent.MachineID()
	if err != nil || id == "" {
		id = "unknown"
	}
	return "HOLIDAY_PENDING_POWEROFF=" + id
}

func powerRevert(ctx context.Context, op *agent.Op) (any, error) {
	cancelled, err := cancelPendingPoweroff()
	if err != nil {
		return nil, err
	}
	if err := os.Remove(PowerTestMarker); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return map[string]any{"on": true, "cancelled": cancelled}, nil
}

// cancelPendingPoweroff kills (with its process group) every process
// that still waits to power the host off, and returns their PIDs.
func cancelPendingPoweroff() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	mark := pendingMark()
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), mark) {
			continue
		}
		// Setsid made it a group leader: the group holds its sleep too.
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return killed, fmt.Errorf("cancelling the pending poweroff (pid %d): %w", pid, err)
		}
		killed = append(killed, pid)
	}
	return killed, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// noteApplied records on the host's result how it comes back.
func (Power) noteApplied(hr *HostResult, prior, done Record) {
	var pp PowerPrior
	if prior.Decode(&pp) == nil {
		hr.PowerOn = &pp
	}
}
