package units

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Changing many units at once. Each function returns every name's error
// (absent: it went well); the key "" holds a failure no name can be
// blamed for.
//
// On systemd a start or stop of many units is ONE `systemctl` call:
// systemctl queues a job for each, PID 1 runs them at once and orders
// them by the units' Before=/After= (a socket and its service, a
// PartOf= unit and its parent), and systemctl waits for all of them. A
// job that fails does not stop the others; systemctl names the unit in
// its message. Enable, disable, mask and unmask of many units are one
// call each too (one daemon-reload instead of one per unit); when that
// call fails, each unit is tried alone to find which one it was (they
// are idempotent).
//
// On SysV the scripts run at once, each after the ones its LSB header
// orders it behind (StopPreds, StartPreds); enable and disable
// (update-rc.d, which rewrites the rc directories) run one after another.

// StopAll stops names (canonical) together.
func StopAll(ctx context.Context, init Init, names []string) map[string]error {
	if init == Systemd {
		return systemctlAll(ctx, "stop", nil, names)
	}
	return RunOrdered(ctx, names, StopPreds(names), func(ctx context.Context, n string) error { return runInit(ctx, n, "stop") })
}

// StartAll starts names (canonical) together.
func StartAll(ctx context.Context, init Init, names []string) map[string]error {
	if init == Systemd {
		return systemctlAll(ctx, "start", nil, names)
	}
	return RunOrdered(ctx, names, StartPreds(names), func(ctx context.Context, n string) error { return runInit(ctx, n, "start") })
}

// DisableAll disables names; runtime selects systemd's --runtime.
func DisableAll(ctx context.Context, init Init, names []string, runtime bool) map[string]error {
	return filesAll(ctx, init, "disable", names, runtime)
}

// EnableAll enables names; runtime selects systemd's --runtime.
func EnableAll(ctx context.Context, init Init, names []string, runtime bool) map[string]error {
	return filesAll(ctx, init, "enable", names, runtime)
}

// MaskAll masks systemd units (runtime: under /run).
func MaskAll(ctx context.Context, names []string, runtime bool) map[string]error {
	return filesAll(ctx, Systemd, "mask", names, runtime)
}

// UnmaskAll unmasks systemd units.
func UnmaskAll(ctx context.Context, names []string, runtime bool) map[string]error {
	return filesAll(ctx, Systemd, "unmask", names, runtime)
}

func filesAll(ctx context.Context, init Init, verb string, names []string, runtime bool) map[string]error {
	errs := map[string]error{}
	if len(names) == 0 {
		return errs
	}
	if init != Systemd {
		for _, n := range names {
			if err := run(ctx, "update-rc.d", n, verb); err != nil {
				errs[n] = err
			}
		}
		return errs
	}
	var flags []string
	if runtime {
		flags = []string{"--runtime"}
	}
	if len(names) == 1 || systemctlErr(ctx, verb, flags, names) != nil {
		for _, n := range names {
			if err := systemctlErr(ctx, verb, flags, []string{n}); err != nil {
				errs[n] = err
			}
		}
	}
	return errs
}

func systemctlErr(ctx context.Context, verb string, flags, names []string) error {
	args := append(append([]string{verb}, flags...), "--")
	return run(ctx, "systemctl", append(args, names...)...)
}

// systemctlAll runs one `systemctl VERB -- names…` and blames each line
// of a failure on the names it mentions.
func systemctlAll(ctx context.Context, verb string, flags, names []string) map[string]error {
	errs := map[string]error{}
	if len(names) == 0 {
		return errs
	}
	args := append(append([]string{verb}, flags...), "--")
	args = append(args, names...)
	c := exec.CommandContext(ctx, "systemctl", args...)
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	c.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	code, err := exitCode(c)
	if err != nil {
		errs[""] = fmt.Errorf("systemctl %s: %w", verb, err)
		return errs
	}
	if code == 0 {
		return errs
	}
	msgs := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		for _, n := range names {
			if mentionsUnit(l, n) {
				msgs[n] = append(msgs[n], strings.TrimSpace(l))
			}
		}
	}
	for n, m := range msgs {
		errs[n] = fmt.Errorf("systemctl %s %s: %s", verb, n, strings.Join(m, "; "))
	}
	if len(msgs) == 0 {
		errs[""] = fmt.Errorf("systemctl %s: exit status %d: %s", verb, code, strings.TrimSpace(lastLines(out.String(), 5)))
	}
	return errs
}

// mentionsUnit reports whether line names unit as a whole word.
func mentionsUnit(line, unit string) bool {
	for i := 0; ; {
		k := strings.Index(line[i:], unit)
		if k < 0 {
			return false
		}
		k += i
		end := k + len(unit)
		if (k == 0 || !unitChar(line[k-1])) && (end == len(line) || !unitChar(line[end])) {
			return true
		}
		i = k + 1
	}
}

func unitChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("@._:-\\", c) >= 0
}

// StatesOf returns the state of each of names (StatesEach). A name the
// host does not have is returned as State returns it, without error.
func StatesOf(ctx context.Context, init Init, names []string) (map[string]Unit, error) {
	us, errs := StatesEach(ctx, init, names)
	m := map[string]Unit{}
	for i, n := range names {
		if errs[i] != nil && !errors.Is(errs[i], ErrNotFound) {
			return m, errs[i]
		}
		m[n] = us[i]
	}
	return m, nil
}

// StatesEach returns State of each of names, with its error: on systemd
// one `systemctl show` of them all and their is-enabled words asked at
// once; on SysV their status scripts at once.
func StatesEach(ctx context.Context, init Init, names []string) ([]Unit, []error) {
	us := make([]Unit, len(names))
	errs := make([]error, len(names))
	if len(names) == 0 {
		return us, errs
	}
	var props []map[string]string
	var words []string
	if init == Systemd && len(names) > 1 {
		canon := make([]string, len(names))
		for i, n := range names {
			canon[i] = Canonical(init, n)
		}
		out, _, err := Output(ctx, "systemctl", append([]string{"show", "--no-pager", "-p", showProps, "--"}, canon...)...)
		if err == nil {
			// One block per unit, in the order asked, blank lines
			// between.
			for _, b := range strings.Split(strings.TrimSpace(out), "\n\n") {
				props = append(props, parseProps(b))
			}
			if len(props) != len(names) {
				props = nil
			}
		}
		// And their is-enabled words in one call: one line per unit,
		// in order — unless a unit has no file (is-enabled stops at it,
		// or prints nothing): then each is asked alone.
		if props != nil {
			out, _, err := Output(ctx, "systemctl", append([]string{"is-enabled", "--"}, canon...)...)
			if l := strings.Split(strings.TrimSpace(out), "\n"); err == nil && len(l) == len(names) {
				words = l
			}
		}
	}
	sem := make(chan struct{}, sysvListParallel)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if props != nil {
				var word *string
				if words != nil {
					word = &words[i]
				}
				us[i], errs[i] = systemdStateFrom(ctx, Canonical(init, n), props[i], word)
				return
			}
			us[i], errs[i] = State(ctx, init, n)
		}()
	}
	wg.Wait()
	return us, errs
}

// UnitOfPID returns the systemd unit whose cgroup holds process pid
// (nginx.service), or "" (not under systemd, PID 1, a scope or slice).
func UnitOfPID(pid int) string {
	b, err := os.ReadFile(filepath.Join(ProcRoot, "proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		// cgroup v2: "0::/system.slice/nginx.service"; v1: "1:name=systemd:/…".
		_, path, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		_, path, ok = strings.Cut(path, ":")
		if !ok || path == "" {
			continue
		}
		for _, part := range strings.Split(path, "/") {
			if strings.HasSuffix(part, ".service") || strings.HasSuffix(part, ".socket") {
				return part
			}
		}
	}
	return ""
}

// Quick returns the running state and enablement of names cheaply (no
// relations: TriggeredBy, Stoppers, Also are empty): on systemd from one
// ListAround, asking State only of the names the list has no enablement
// for (template instances, units without a file); on SysV StatesOf.
func Quick(ctx context.Context, init Init, names []string) (map[string]Unit, error) {
	if init != Systemd {
		return StatesOf(ctx, init, names)
	}
	list, err := ListAround(ctx, init, names)
	if err != nil {
		return nil, err
	}
	return PickOrAsk(ctx, init, list, names)
}

// PickOrAsk returns the states of names from list (ListAround's, which
// must have been asked about names) where it has them in full — a SysV
// script whose status was asked, a systemd unit with its enablement —
// and asks State for the others.
func PickOrAsk(ctx context.Context, init Init, list []Unit, names []string) (map[string]Unit, error) {
	m := map[string]Unit{}
	var ask []string
	for _, n := range names {
		if u, ok := pick(init, list, n); ok {
			m[n] = u
		} else {
			ask = append(ask, n)
		}
	}
	got, err := StatesOf(ctx, init, ask)
	for n, u := range got {
		m[n] = u
	}
	return m, err
}

func pick(init Init, list []Unit, name string) (Unit, bool) {
	i := sort.Search(len(list), func(i int) bool { return list[i].Name >= name })
	if i == len(list) || list[i].Name != name {
		return Unit{}, false
	}
	u := list[i]
	if init == SysV {
		return u, u.Status != StatusNotAsked
	}
	if u.Enablement == "" {
		return Unit{}, false
	}
	if u.Load == "" {
		// In list-unit-files, not loaded: what State says of it.
		u.Load = "loaded"
		if u.Masked {
			u.Load = "masked"
		}
	}
	return u, true
}

// SocketPorts returns the TCP ports systemd socket units listen on (their
// Listen= property: "127.0.0.1:7801 (Stream)", "[::]:22 (Stream)",
// "7777 (Stream)"), by unit. Such a port is held by PID 1, so the
// listening sockets' processes can't tell which unit it is.
func SocketPorts(ctx context.Context, names []string) map[string][]int {
	m := map[string][]int{}
	if len(names) == 0 {
		return m
	}
	out, _, err := Output(ctx, "systemctl", append([]string{"show", "--no-pager", "-p", "Listen", "--"}, names...)...)
	if err != nil {
		return m
	}
	blocks := strings.Split(strings.TrimSpace(out), "\n\n")
	if len(blocks) != len(names) {
		return m
	}
	for i, b := range blocks {
		for _, l := range strings.Split(b, "\n") {
			v, ok := strings.CutPrefix(strings.TrimSpace(l), "Listen=")
			if !ok {
				continue
			}
			addr, kind, _ := strings.Cut(v, " ")
			if kind != "(Stream)" {
				continue
			}
			if k := strings.LastIndex(addr, ":"); k >= 0 {
				addr = addr[k+1:]
			}
			if p, err := strconv.Atoi(addr); err == nil {
				m[names[i]] = append(m[names[i]], p)
			}
		}
	}
	return m
}
