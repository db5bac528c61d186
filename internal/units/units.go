// Package units reads and controls services on the host it runs on (the
// agent's side): systemd units through systemctl, SysV init scripts through
// `service` and the /etc/rc?.d links. It reports states in the init
// system's own words — systemd's ActiveState, SubState and the word
// `systemctl is-enabled` prints (enabled, static, indirect,
// enabled-runtime, masked, …), SysV's `service NAME status` exit code and
// the exact rc links — so a caller can put back exactly what it found.
//
// It also reads the host's listening TCP sockets from /proc/net/tcp{,6}
// and /proc/*/fd (never from ss or netstat, which an intruder may have
// replaced).
//
// It imports nothing of holiday's.
package units

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Init is a host's init system.
type Init string

// The init systems units knows.
const (
	Systemd Init = "systemd"
	SysV    Init = "sysv"
)

// Detect returns the init system of the host this runs on: systemd when
// /run/systemd/system exists (sd_booted(3)'s test), otherwise SysV.
func Detect() Init {
	if st, err := os.Stat("/run/systemd/system"); err == nil && st.IsDir() {
		return Systemd
	}
	return SysV
}

// Unit is one unit's (or SysV service's) state.
type Unit struct {
	Name string `json:"name"` // systemd: full unit name (nginx.service); SysV: script name
	Init Init   `json:"init"`

	// systemd
	Load   string `json:"load,omitempty"`   // LoadState: loaded, not-found, masked, …
	Active string `json:"active,omitempty"` // ActiveState: active, inactive, failed, activating, …
	Sub    string `json:"sub,omitempty"`    // SubState: running, dead, listening, exited, waiting, …
	// Enablement is `systemctl is-enabled`'s word (enabled, disabled,
	// static, indirect, generated, enabled-runtime, masked, masked-runtime,
	// alias, transient, linked, not-found…). For SysV: "enabled" when a
	// start link exists in rc2–rc5, "disabled" when only kill links do,
	// "none" when the script has no links.
	Enablement string `json:"enablement"`
	Masked     bool   `json:"masked,omitempty"`
	// TriggeredBy are the .socket, .timer and .path units that can start
	// this one (systemd's TriggeredBy=).
	TriggeredBy []string `json:"triggered_by,omitempty"`
	// Stoppers are units a stop of this one also stops (RequiredBy=,
	// BoundBy=, ConsistsOf=); Also are the units `systemctl disable`
	// disables with it (Also=).
	Stoppers []string `json:"stoppers,omitempty"`
	Also     []string `json:"also,omitempty"`

	// SysV
	// Status is `service NAME status`'s exit code (LSB: 0 running,
	// 1–3 not running, 4 unknown).
	Status int `json:"status,omitempty"`
	// RCLinks are the rc links pointing at the script, as
	// "rc2.d/S01nginx -> ../init.d/nginx", sorted.
	RCLinks []string `json:"rc_links,omitempty"`
}

// Running reports whether the unit runs (systemd: active, activating,
// reloading or deactivating; SysV: status exit code 0).
func (u Unit) Running() bool {
	if u.Init == SysV {
		return u.Status == 0
	}
	switch u.Active {
	case "active", "activating", "reloading", "deactivating":
		return true
	}
	return false
}

// Exists reports whether the host knows the unit at all.
func (u Unit) Exists() bool {
	if u.Init == SysV {
		return u.Enablement != "not-found"
	}
	return u.Load != "not-found" && u.Load != "" || u.Masked
}

// ErrNotFound is returned (wrapped) for a unit the host does not have.
var ErrNotFound = errors.New("no such unit or service")

// Canonical returns the name systemd knows a plan's service name by:
// "nginx" → "nginx.service"; names with a unit suffix are kept.
func Canonical(init Init, name string) string {
	if init != Systemd {
		return strings.TrimSuffix(name, ".service")
	}
	for _, suf := range []string{".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount", ".swap", ".slice", ".scope", ".device"} {
		if strings.HasSuffix(name, suf) {
			return name
		}
	}
	return name + ".service"
}

// Output runs a command and returns its stdout, with its exit code; a
// command that could not run at all is an error.
func Output(ctx context.Context, name string, args ...string) (string, int, error) {
	var out, errb bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = &out, &errb
	c.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	code, err := exitCode(c)
	if err != nil {
		return "", -1, fmt.Errorf("%s: %w", name, err)
	}
	return out.String(), code, nil
}

// exitCode runs c and returns its exit status; err only when it could
// not run at all.
func exitCode(c *exec.Cmd) (int, error) {
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// initScript runs SysV script name with action the way service(8) does
// on a host without systemd — from /, in an environment of only PATH,
// TERM and the locale — but without service's own shell, basename and env
// processes: a status asked of every related script at each step, on
// every host of a fleet at once, made those a third of the cost.
func initScript(ctx context.Context, name, action string) (string, int, error) {
	if name == "" || strings.ContainsRune(name, '/') || strings.HasPrefix(name, ".") {
		return "", -1, fmt.Errorf("bad init script name %q", name)
	}
	var out bytes.Buffer
	c := exec.CommandContext(ctx, filepath.Join(InitDir, name), action)
	c.Stdout, c.Stderr = &out, &out
	c.Dir = "/"
	c.Env = initEnv()
	code, err := exitCode(c)
	if err != nil {
		return "", -1, fmt.Errorf("%s %s: %w", filepath.Join(InitDir, name), action, err)
	}
	return out.String(), code, nil
}

// runInit runs an init script action that must succeed.
func runInit(ctx context.Context, name, action string) error {
	out, code, err := initScript(ctx, name, action)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("%s %s: exit status %d: %s", filepath.Join(InitDir, name), action, code, strings.TrimSpace(lastLines(out, 5)))
	}
	return nil
}

// initEnv is the environment service(8) gives init scripts.
func initEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "TERM" || k == "LANG" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") {
			env = append(env, kv)
		}
	}
	return env
}

// run runs a command that must succeed.
func run(ctx context.Context, name string, args ...string) error {
	var errb bytes.Buffer
	c := exec.CommandContext(ctx, name, args...)
	c.Stdout, c.Stderr = &errb, &errb
	c.Env = append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0")
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(lastLines(errb.String(), 5)))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// State returns one unit's state. A unit the host does not have is
// returned with Enablement "not-found" and ErrNotFound.
func State(ctx context.Context, init Init, name string) (Unit, error) {
	if init == Systemd {
		return systemdState(ctx, Canonical(init, name))
	}
	return sysvState(ctx, Canonical(init, name))
}

// List returns every unit the host has, sorted by name: for systemd the
// union of `systemctl list-units --all` and `list-unit-files` (without
// TriggeredBy and the other relations, which need one call per unit); for
// SysV every script in /etc/init.d with its status and rc links.
func List(ctx context.Context, init Init) ([]Unit, error) {
	if init == Systemd {
		return systemdList(ctx)
	}
	return sysvList(ctx)
}

// --- systemd ---

// showProps are the properties State reads with `systemctl show`.
const showProps = "LoadState,ActiveState,SubState,UnitFileState,TriggeredBy,RequiredBy,BoundBy,ConsistsOf,Also"

func systemdState(ctx context.Context, name string) (Unit, error) {
	out, _, err := Output(ctx, "systemctl", "show", "--no-pager", "-p", showProps, "--", name)
	if err != nil {
		return Unit{}, err
	}
	return systemdStateFrom(ctx, name, parseProps(out), nil)
}

// systemdStateFrom completes State from name's `systemctl show`
// properties p with its is-enabled word (asked when word is nil).
func systemdStateFrom(ctx context.Context, name string, p map[string]string, word *string) (Unit, error) {
	u := Unit{Name: name, Init: Systemd, Load: p["LoadState"], Active: p["ActiveState"], Sub: p["SubState"]}
	u.TriggeredBy = fields(p["TriggeredBy"])
	u.Stoppers = fields(p["RequiredBy"] + " " + p["BoundBy"] + " " + p["ConsistsOf"])
	u.Also = fields(p["Also"])
	if word == nil {
		out, _, err := Output(ctx, "systemctl", "is-enabled", "--", name)
		if err != nil {
			return u, err
		}
		word = &out
	}
	u.Enablement = firstLine(*word)
	if u.Enablement == "" {
		// is-enabled prints nothing for units without a unit file
		// (e.g. transient or generated-and-gone); fall back to show's.
		u.Enablement = p["UnitFileState"]
	}
	u.Masked = u.Load == "masked" || strings.HasPrefix(u.Enablement, "masked")
	if u.Load == "not-found" && !u.Masked {
		if u.Enablement == "" {
			u.Enablement = "not-found"
		}
		return u, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return u, nil
}

func parseProps(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

func fields(s string) []string {
	f := strings.Fields(s)
	sort.Strings(f)
	return f
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(l)
}

func systemdList(ctx context.Context) ([]Unit, error) {
	return systemdListFiles(ctx, nil)
}

// systemdListAround: every loaded unit, enablement only of names and
// their templates.
func systemdListAround(ctx context.Context, names []string) ([]Unit, error) {
	var pats []string
	for _, n := range names {
		pats = appendNew(pats, n)
		if at := strings.Index(n, "@"); at > 0 {
			if dot := strings.LastIndex(n, "."); dot > at {
				pats = appendNew(pats, n[:at+1]+n[dot:])
			}
		}
	}
	if pats == nil {
		pats = []string{} // none: no list-unit-files at all
	}
	return systemdListFiles(ctx, pats)
}

// systemdListFiles lists every loaded unit with the enablement of the
// unit files matching patterns (nil: all; empty: none).
func systemdListFiles(ctx context.Context, patterns []string) ([]Unit, error) {
	// The two lists are independent reads: at once.
	var files string
	var fcode int
	var ferr error
	var wg sync.WaitGroup
	if patterns == nil || len(patterns) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			files, fcode, ferr = Output(ctx, "systemctl", append([]string{"list-unit-files", "--no-legend", "--plain", "--no-pager", "--full", "--"}, patterns...)...)
		}()
	}
	out, code, err := Output(ctx, "systemctl", "list-units", "--all", "--no-legend", "--plain", "--no-pager", "--full")
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("systemctl list-units: exit %d", code)
	}
	byName := map[string]*Unit{}
	get := func(n string) *Unit {
		u, ok := byName[n]
		if !ok {
			u = &Unit{Name: n, Init: Systemd}
			byName[n] = u
		}
		return u
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		u := get(f[0])
		u.Load, u.Active, u.Sub = f[1], f[2], f[3]
		u.Masked = u.Load == "masked"
	}
	if ferr != nil {
		return nil, ferr
	}
	// With patterns, exit 1 and no output: nothing matched.
	if fcode != 0 && !(patterns != nil && fcode == 1 && strings.TrimSpace(files) == "") {
		return nil, fmt.Errorf("systemctl list-unit-files: exit %d", fcode)
	}
	out = files
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		u := get(f[0])
		u.Enablement = f[1]
		if strings.HasPrefix(f[1], "masked") {
			u.Masked = true
		}
		if u.Load == "" {
			u.Active, u.Sub = "inactive", "dead"
		}
	}
	list := make([]Unit, 0, len(byName))
	for _, u := range byName {
		list = append(list, *u)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// Start, Stop, Enable, Disable, Mask and Unmask change a unit. On SysV,
// Enable and Disable are update-rc.d's; Mask and Unmask are errors.
func Start(ctx context.Context, init Init, name string) error {
	name = Canonical(init, name)
	if init == Systemd {
		return run(ctx, "systemctl", "start", "--", name)
	}
	return runInit(ctx, name, "start")
}

// Stop stops a unit (see Start).
func Stop(ctx context.Context, init Init, name string) error {
	name = Canonical(init, name)
	if init == Systemd {
		return run(ctx, "systemctl", "stop", "--", name)
	}
	return runInit(ctx, name, "stop")
}

// Enable enables a unit (see Start). runtime selects systemd's
// --runtime (for enabled-runtime units).
func Enable(ctx context.Context, init Init, name string, runtime bool) error {
	name = Canonical(init, name)
	if init == Systemd {
		if runtime {
			return run(ctx, "systemctl", "enable", "--runtime", "--", name)
		}
		return run(ctx, "systemctl", "enable", "--", name)
	}
	return run(ctx, "update-rc.d", name, "enable")
}

// Disable disables a unit (see Start).
func Disable(ctx context.Context, init Init, name string, runtime bool) error {
	name = Canonical(init, name)
	if init == Systemd {
		if runtime {
			return run(ctx, "systemctl", "disable", "--runtime", "--", name)
		}
		return run(ctx, "systemctl", "disable", "--", name)
	}
	return run(ctx, "update-rc.d", name, "disable")
}

// Mask masks a systemd unit (runtime: under /run).
func Mask(ctx context.Context, name string, runtime bool) error {
	if runtime {
		return run(ctx, "systemctl", "mask", "--runtime", "--", name)
	}
	return run(ctx, "systemctl", "mask", "--", name)
}

// Unmask unmasks a systemd unit.
func Unmask(ctx context.Context, name string, runtime bool) error {
	if runtime {
		return run(ctx, "systemctl", "unmask", "--runtime", "--", name)
	}
	return run(ctx, "systemctl", "unmask", "--", name)
}

// --- SysV ---

// InitDir and RCDirs are where SysV scripts and their links live.
var (
	InitDir = "/etc/init.d"
	RCDirs  = []string{"/etc/rc0.d", "/etc/rc1.d", "/etc/rc2.d", "/etc/rc3.d", "/etc/rc4.d", "/etc/rc5.d", "/etc/rc6.d", "/etc/rcS.d"}
)

func sysvState(ctx context.Context, name string) (Unit, error) {
	u := Unit{Name: name, Init: SysV}
	if _, err := os.Stat(filepath.Join(InitDir, name)); err != nil {
		u.Enablement = "not-found"
		u.Status = 4
		return u, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	links, err := RCLinks(name)
	if err != nil {
		return u, err
	}
	u.RCLinks = links
	u.Enablement = sysvEnablement(links)
	_, code, err := initScript(ctx, name, "status")
	if err != nil {
		return u, err
	}
	u.Status = code
	if code == 0 {
		u.Active = "active"
	} else {
		u.Active = "inactive"
	}
	return u, nil
}

func sysvEnablement(links []string) string {
	if len(links) == 0 {
		return "none"
	}
	for _, l := range links {
		for _, rl := range []string{"rc2.d/S", "rc3.d/S", "rc4.d/S", "rc5.d/S", "rcS.d/S"} {
			if strings.HasPrefix(l, rl) {
				return "enabled"
			}
		}
	}
	return "disabled"
}

// RCLinks returns the rc links that point at init script name, as
// "rc2.d/S01nginx -> ../init.d/nginx", sorted.
func RCLinks(name string) ([]string, error) {
	var links []string
	for _, d := range RCDirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			n := e.Name()
			if len(n) < 4 || (n[0] != 'S' && n[0] != 'K') || n[3:] != name {
				continue
			}
			target, err := os.Readlink(filepath.Join(d, n))
			if err != nil {
				continue
			}
			if filepath.Base(target) != name {
				continue
			}
			links = append(links, filepath.Base(d)+"/"+n+" -> "+target)
		}
	}
	sort.Strings(links)
	return links, nil
}

// SetRCLinks makes the rc links of script name exactly links (as RCLinks
// returns them): the only way to put back the exact sequence numbers a
// host had, which update-rc.d would recompute.
func SetRCLinks(name string, links []string) error {
	have, err := RCLinks(name)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, l := range links {
		want[l] = true
	}
	for _, l := range have {
		if want[l] {
			delete(want, l)
			continue
		}
		p, _, _ := strings.Cut(l, " -> ")
		if err := os.Remove(filepath.Join(filepath.Dir(RCDirs[0]), p)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, l := range links {
		if !want[l] {
			continue
		}
		p, target, ok := strings.Cut(l, " -> ")
		if !ok || strings.Contains(p, "..") {
			return fmt.Errorf("bad rc link %q", l)
		}
		if err := os.Symlink(target, filepath.Join(filepath.Dir(RCDirs[0]), p)); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

// sysvListParallel bounds the status scripts sysvList runs at once.
const sysvListParallel = 8

func sysvList(ctx context.Context) ([]Unit, error) {
	ents, err := os.ReadDir(InitDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || n == "README" || n == "skeleton" || n == "rc" || n == "rcS" || strings.HasSuffix(n, ".dpkg-dist") || strings.HasSuffix(n, ".dpkg-old") {
			continue
		}
		if st, err := os.Stat(filepath.Join(InitDir, n)); err != nil || st.Mode()&0o111 == 0 || st.IsDir() {
			continue
		}
		names = append(names, n)
	}
	// Each script's status is a shell process (init-functions, pidofproc):
	// ~15-30 ms apiece, so a host's dozen or two scripts one after another
	// dominated a service step. They only read, so ask them in parallel.
	list := make([]Unit, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, sysvListParallel)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			list[i], errs[i] = sysvState(ctx, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// StatusNotAsked marks a SysV unit in ListFor's answer whose status
// script was not run.
const StatusNotAsked = -1

// ListFor is List made cheap for diffing around a change of one unit
// (name): ListAround of name alone on SysV, List on systemd.
func ListFor(ctx context.Context, init Init, name string) ([]Unit, error) {
	if init != SysV {
		return List(ctx, init)
	}
	return ListAround(ctx, init, []string{name})
}

// ListAround is List made cheap for diffing around a stop and disable of
// names (and their Also= units, which the caller includes).
//
// On SysV every script's rc links are read (the files, which is cheap),
// but `service X status` — a shell with the LSB init-functions, 15–30 ms
// of CPU apiece, which on a busy control node's fleet run was most of a
// service step — runs only for names and for the scripts whose LSB header
// names one of them (Required-/Should-Start/Stop, X-Start-Before,
// X-Stop-After): LSB has no stop dependencies, so only a script that knows
// of a stopped one might be affected by its stop. The others carry Status
// StatusNotAsked.
//
// On systemd every loaded unit's running state is listed (list-units
// --all, cheap), but enablement only for names and the templates of those
// that are instances: `systemctl list-unit-files` of every file costs
// PID 1 ~0.5 s on a small host, and a disable changes only the install
// links of the units it names. The other units carry an empty Enablement,
// before and after alike.
func ListAround(ctx context.Context, init Init, names []string) ([]Unit, error) {
	if init != SysV {
		return systemdListAround(ctx, names)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	ents, err := os.ReadDir(InitDir)
	if err != nil {
		return nil, err
	}
	var list []Unit
	var ask []int
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") || n == "README" || n == "skeleton" || n == "rc" || n == "rcS" || strings.HasSuffix(n, ".dpkg-dist") || strings.HasSuffix(n, ".dpkg-old") {
			continue
		}
		p := filepath.Join(InitDir, n)
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 || st.IsDir() {
			continue
		}
		links, err := RCLinks(n)
		if err != nil {
			return nil, err
		}
		u := Unit{Name: n, Init: SysV, RCLinks: links, Enablement: sysvEnablement(links), Status: StatusNotAsked}
		if want[n] {
			ask = append(ask, len(list))
		} else if b, err := os.ReadFile(p); err == nil {
			h := parseLSB(string(b))
			for _, m := range names {
				if h.mentions(m) {
					ask = append(ask, len(list))
					break
				}
			}
		}
		list = append(list, u)
	}
	// They only read: ask in parallel, as sysvList does.
	errs := make([]error, len(ask))
	sem := make(chan struct{}, sysvListParallel)
	var wg sync.WaitGroup
	for k, i := range ask {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			u, err := sysvState(ctx, list[i].Name)
			if err != nil && !errors.Is(err, ErrNotFound) {
				errs[k] = err
				return
			}
			list[i] = u
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// HeaderNames reports whether SysV script's LSB header names unit in an
// ordering field (Required-/Should-Start/Stop, X-Start-Before,
// X-Stop-After).
func HeaderNames(script, unit string) bool {
	return lsbMentions(filepath.Join(InitDir, script), unit)
}

// lsbMentions reports whether the LSB header of script p names unit.
func lsbMentions(p, unit string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	return parseLSB(string(b)).mentions(unit)
}
