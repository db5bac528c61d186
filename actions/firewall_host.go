package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-iptables/iptables"

	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/facts"
	"github.com/holiday-ops/holiday/internal/units"
)

// The firewall's host side, run by the agent as root.

// FirewallDir holds, on the host, what a lockdown firewall needs to be
// undone without the control node: the saved rules, the backend, the
// dead-man's arming token and a copy of the agent binary it runs.
var FirewallDir = "/var/lib/holiday/firewall"

// UndoFile is the one-line console undo, for the operator at the console.
var UndoFile = "/var/lib/holiday/UNDO"

// firewallLockFile serializes the firewall's apply, disarm, revert and
// the dead-man on the host.
var firewallLockFile = "/run/holiday-firewall.lock"

// deadmanLog is where the dead-man says what it did (outside FirewallDir,
// which a successful revert removes).
var deadmanLog = "/var/lib/holiday/firewall-deadman.log"

const deadmanUnit = "holiday-firewall-deadman"

// deadmanMark is in the environment of the SysV dead-man process, so a
// disarm finds it in /proc.
const deadmanMark = "HOLIDAY_FIREWALL_DEADMAN=armed"

func firewallTools(backend string) (save4, save6, restore4, restore6, ipt4, ipt6 string) {
	b := "nft"
	if backend == "legacy" {
		b = "legacy"
	}
	return "iptables-" + b + "-save", "ip6tables-" + b + "-save",
		"iptables-" + b + "-restore", "ip6tables-" + b + "-restore",
		"iptables-" + b, "ip6tables-" + b
}

func runTool(ctx context.Context, stdin string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, name, args...)
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	if stdin != "" {
		c.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// detectBackend says which iptables backend filters: the one with rules;
// with none, the one plain iptables points to. Rules in both is refused.
// It reads the same facts lockdown's admission (and `holiday plan`)
// judge, so the host's own guard cannot disagree with them.
func detectBackend(ctx context.Context) (string, error) {
	f := facts.Collect(ctx, facts.Args{Only: []string{"firewall"}})
	for _, p := range f.Errors {
		return "", fmt.Errorf("reading the firewall: %s: %s", p.Collector, p.Error)
	}
	fw := f.Firewall
	switch {
	case len(fw.Backends) == 1:
		return fw.Backends[0], nil
	case len(fw.Backends) > 1:
		return "", fmt.Errorf("rules in both iptables-legacy and iptables-nft (%s): refusing rather than guess which one filters", strings.Join(fw.Tables, ", "))
	case fw.Default != "":
		return fw.Default, nil
	}
	return "nft", nil
}

func firewallObserve(ctx context.Context, op *agent.Op) (any, error) {
	backend, err := detectBackend(ctx)
	if err != nil {
		return nil, err
	}
	p := FirewallPrior{Backend: backend, Init: string(units.Detect())}
	s4, s6, _, _, _, _ := firewallTools(backend)
	if p.Save4, err = runTool(ctx, "", s4); err != nil {
		return nil, err
	}
	if p.Save6, err = runTool(ctx, "", s6); err != nil {
		return nil, err
	}
	var a firewallObserveArgs
	if len(op.Args) > 0 {
		if err := jsonUnmarshal(op.Args, &a); err != nil {
			return nil, err
		}
	}
	has := func(chain string) bool {
		return strings.Contains(p.Save4, ":"+chain+" ") || strings.Contains(p.Save6, ":"+chain+" ")
	}
	switch {
	case has(FirewallOutChain):
		return nil, fmt.Errorf("this host is already isolated by holiday (%s): undo that first (holiday isolate --undo)", FirewallOutChain)
	case has(FirewallChain) && a.OnLockdown:
		if err := onLockdown(ctx, &p); err != nil {
			return nil, err
		}
	case has(FirewallChain):
		return nil, fmt.Errorf("a holiday lockdown firewall (%s) is already on this host: restore the run that put it there first", FirewallChain)
	}
	return p, nil
}

// layerDir is where isolation on top of a lockdown firewall keeps what
// undoes it: the locked-down saves, isolate's rules (the boot-time
// re-apply's while isolated), the lockdown's rules, its own arming token
// and a copy of the agent its dead-man runs.
func layerDir() string { return filepath.Join(FirewallDir, "isolate") }

// isLayerDir tells a layer's directory from a lockdown's.
func isLayerDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "lockdown.v4"))
	return err == nil
}

// onLockdown fills in p for isolate on top of the lockdown firewall in
// place: that lockdown must be holiday's (its files in FirewallDir),
// confirmed, not isolated already, and still holding (INPUT jumps to its
// chain first, which holds its rules): isolation rides on that jump.
func onLockdown(ctx context.Context, p *FirewallPrior) error {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("isolating on top of the lockdown firewall: "+format+"; nothing changed", args...)
	}
	b, err := os.ReadFile(filepath.Join(FirewallDir, "backend"))
	r4, err4 := os.ReadFile(filepath.Join(FirewallDir, "rules.v4"))
	r6, err6 := os.ReadFile(filepath.Join(FirewallDir, "rules.v6"))
	if err := errors.Join(err, err4, err6); err != nil {
		return refuse("%s is there but holiday's record of it in %s is not (%v): restore the run that put it there first", FirewallChain, FirewallDir, err)
	}
	if _, err := os.Stat(filepath.Join(FirewallDir, "armed")); err == nil {
		return refuse("the lockdown firewall is not confirmed yet (its dead-man is armed)")
	}
	if _, err := os.Stat(layerDir()); err == nil {
		return refuse("%s already holds an isolation: undo it first (holiday isolate --undo)", layerDir())
	}
	if backend := strings.TrimSpace(string(b)); backend != p.Backend {
		return refuse("the lockdown was applied with iptables-%s, the host now filters with iptables-%s", backend, p.Backend)
	}
	for _, f := range []struct{ fam, rules string }{{"ip6", string(r6)}, {"ip4", string(r4)}} {
		ipt, err := newIPT(p.Backend, f.fam)
		if err != nil {
			return refuse("%v", err)
		}
		if err := verifyChain(ipt, f.fam, "INPUT", FirewallChain, f.rules); err != nil {
			return refuse("the lockdown firewall no longer holds (%v): fix or restore it first", err)
		}
	}
	p.OnLockdown, p.Lockdown4, p.Lockdown6 = true, string(r4), string(r6)
	return nil
}

// applyLayer puts isolation on top of the lockdown firewall, with the
// lockdown's safety protocol: what undoes it kept on the host first, the
// dead-man armed (it puts the lockdown firewall back), then IPv6 and
// IPv4, each one transaction that goes straight from the lockdown rules
// to isolate's (IPv6 put back if IPv4 fails). The lockdown's boot-time
// re-apply finds the layer and re-applies isolation while it is there.
func applyLayer(ctx context.Context, a firewallApplyArgs, d *FirewallDone) error {
	p, dir := a.Prior, layerDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The token first: a layer left half-written (a crash) is one the
	// boot-time re-apply drops and the lockdown's verify ignores.
	if err := writeFileSync(filepath.Join(dir, "armed"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return err
	}
	for name, data := range map[string]string{"saved.v4": p.Save4, "saved.v6": p.Save6, "backend": p.Backend,
		"rules.v4": a.Rules4, "rules.v6": a.Rules6, "lockdown.v4": p.Lockdown4, "lockdown.v6": p.Lockdown6} {
		if err := writeFileSync(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	// The dead-man's copy, and the boot-time re-apply's (which must know
	// the layer): this agent.
	for _, bin := range []string{filepath.Join(dir, "holiday"), filepath.Join(FirewallDir, "holiday")} {
		if err := copyExecutable(bin); err != nil {
			return fmt.Errorf("keeping a copy of the agent for the dead-man: %w", err)
		}
	}
	if err := armDeadman(ctx, d, p.Init, dir); err != nil {
		os.RemoveAll(dir) // nothing applied: no layer
		return fmt.Errorf("arming the dead-man: %w", err)
	}
	up := IsolateOnLockdown(FirewallRules{V4: a.Rules4, V6: a.Rules6})
	down := LockdownAgain(FirewallRules{V4: p.Lockdown4, V6: p.Lockdown6})
	_, _, r4, r6, _, _ := firewallTools(p.Backend)
	if _, err := runTool(ctx, up.V6, r6, "--noflush", "-w"); err != nil {
		return fmt.Errorf("IPv6 not isolated, still under the lockdown firewall: %w", err)
	}
	d.Applied = append(d.Applied, "ip6")
	if _, err := runTool(ctx, up.V4, r4, "--noflush", "-w"); err != nil {
		if _, rerr := runTool(ctx, down.V6, r6, "--noflush", "-w"); rerr != nil {
			return fmt.Errorf("IPv4 not isolated (%v), and putting IPv6 back under the lockdown firewall failed: %v", err, rerr)
		}
		d.Applied = nil
		return fmt.Errorf("IPv4 not isolated, IPv6 put back under the lockdown firewall: %w", err)
	}
	d.Applied = append(d.Applied, "ip4")
	d.OnLockdown = true
	return nil
}

// revertLayer takes isolation off a locked-down host and puts the
// lockdown firewall back exactly: in each family one transaction back to
// the lockdown's rules, then the save must equal the locked-down one. If
// the transaction fails, the locked-down save itself is restored (a full
// restore of its tables, atomic: never more open than the lockdown). If
// the lockdown under it was restored meanwhile (its revert takes both
// chains away), there is nothing to put back: isolation went with it.
// Empty p: the layer's own copy on the host (dead-man, boot).
func revertLayer(ctx context.Context, p FirewallPrior) error {
	dir := layerDir()
	if p.Backend == "" {
		b, err := os.ReadFile(filepath.Join(dir, "backend"))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		p.Backend = strings.TrimSpace(string(b))
		var errs []error
		for name, dst := range map[string]*string{"saved.v4": &p.Save4, "saved.v6": &p.Save6, "lockdown.v4": &p.Lockdown4, "lockdown.v6": &p.Lockdown6} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			errs = append(errs, err)
			*dst = string(b)
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	disarm(ctx)
	if _, err := os.Stat(filepath.Join(FirewallDir, "rules.v4")); errors.Is(err, os.ErrNotExist) {
		// The lockdown's revert ran: no holiday chain is left, and
		// putting the lockdown back would close a reopened host.
		return os.RemoveAll(dir)
	}
	down := LockdownAgain(FirewallRules{V4: p.Lockdown4, V6: p.Lockdown6})
	s4, s6, r4, r6, _, _ := firewallTools(p.Backend)
	var errs []error
	for _, f := range []struct{ family, save, restore, rules, saved string }{{"ip6", s6, r6, down.V6, p.Save6}, {"ip4", s4, r4, down.V4, p.Save4}} {
		now, err := runTool(ctx, "", f.save)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var aerr error
		if strings.Contains(now, ":"+FirewallOutChain+" ") {
			_, aerr = runTool(ctx, f.rules, f.restore, "--noflush", "-w")
			if now, err = runTool(ctx, "", f.save); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if NormalizeSave(now) == NormalizeSave(f.saved) {
			continue
		}
		if aerr == nil {
			errs = append(errs, fmt.Errorf("%s: back under the lockdown firewall, but the rules differ from the ones saved when isolation began (changed meanwhile?):\n%s", f.family, saveDiff(NormalizeSave(f.saved), NormalizeSave(now))))
			continue
		}
		if _, err := runTool(ctx, f.saved, f.restore, "-w"); err != nil {
			errs = append(errs, fmt.Errorf("%s: back to the lockdown rules: %v; restoring the locked-down save: %v", f.family, aerr, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func withFirewallLock(f func() error) error {
	l, err := os.OpenFile(firewallLockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	return f()
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// undoLine is the console undo: holiday's own revert if its copy of the
// binary is there, else the bare deletion of the jumps and chains.
func undoLine(backend string) string {
	_, _, _, _, i4, i6 := firewallTools(backend)
	bare := fmt.Sprintf("for t in %s %s; do while $t -w -D INPUT -j %s 2>/dev/null; do :; done; $t -w -F %s; $t -w -X %s; while $t -w -D OUTPUT -j %s 2>/dev/null; do :; done; $t -w -F %s 2>/dev/null; $t -w -X %s 2>/dev/null; done",
		i4, i6, FirewallChain, FirewallChain, FirewallChain, FirewallOutChain, FirewallOutChain, FirewallOutChain)
	return fmt.Sprintf("%s agent --firewall-revert %s || { %s; }", filepath.Join(FirewallDir, "holiday"), FirewallDir, bare)
}

func firewallApply(ctx context.Context, op *agent.Op) (any, error) {
	var a firewallApplyArgs
	if err := jsonUnmarshal(op.Args, &a); err != nil {
		return nil, err
	}
	p := a.Prior
	d := FirewallDone{Backend: p.Backend, Rules4: a.Rules4, Rules6: a.Rules6, DeadmanSecs: a.DeadmanSecs}
	if p.Backend != "legacy" && p.Backend != "nft" {
		return nil, fmt.Errorf("unknown firewall backend %q", p.Backend)
	}
	if d.DeadmanSecs <= 0 {
		d.DeadmanSecs = DefaultDeadmanSecs
	}
	if p.OnLockdown {
		err := withFirewallLock(func() error { return applyLayer(ctx, a, &d) })
		if err != nil {
			d.Error = err.Error()
			return d, err
		}
		return d, nil
	}
	err := withFirewallLock(func() error {
		// Keep what undoes it on the host, before anything changes.
		if err := os.MkdirAll(FirewallDir, 0o700); err != nil {
			return err
		}
		for name, data := range map[string]string{"saved.v4": p.Save4, "saved.v6": p.Save6, "backend": p.Backend, "rules.v4": a.Rules4, "rules.v6": a.Rules6} {
			if err := writeFileSync(filepath.Join(FirewallDir, name), []byte(data), 0o600); err != nil {
				return err
			}
		}
		if err := copyExecutable(filepath.Join(FirewallDir, "holiday")); err != nil {
			return fmt.Errorf("keeping a copy of the agent for the dead-man: %w", err)
		}
		d.Undo = undoLine(p.Backend)
		if err := writeFileSync(UndoFile, []byte(d.Undo+"\n"), 0o600); err != nil {
			return err
		}
		// Dead-man first.
		if err := writeFileSync(filepath.Join(FirewallDir, "armed"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
			return err
		}
		if err := armDeadman(ctx, &d, p.Init, FirewallDir); err != nil {
			os.Remove(filepath.Join(FirewallDir, "armed"))
			return fmt.Errorf("arming the dead-man: %w", err)
		}
		_, _, r4, r6, _, _ := firewallTools(p.Backend)
		if _, err := runTool(ctx, a.Rules6, r6, "--noflush", "-w"); err != nil {
			return fmt.Errorf("IPv6 not applied, nothing changed: %w", err)
		}
		d.Applied = append(d.Applied, "ip6")
		if _, err := runTool(ctx, a.Rules4, r4, "--noflush", "-w"); err != nil {
			if rerr := deleteHoliday(p.Backend, "ip6"); rerr != nil {
				return fmt.Errorf("IPv4 not applied (%v), and rolling IPv6 back failed: %v", err, rerr)
			}
			d.Applied = nil
			return fmt.Errorf("IPv4 not applied, IPv6 rolled back: %w", err)
		}
		d.Applied = append(d.Applied, "ip4")
		// Across a reboot while locked down (DESIGN §6.7).
		boot, err := installBoot(ctx, p.Init)
		d.Boot = boot
		if err != nil {
			return fmt.Errorf("installing the boot-time re-apply: %w", err)
		}
		return nil
	})
	if err != nil {
		d.Error = err.Error()
		// The result carries what was done (Applied, the dead-man), the
		// control node reverts from it.
		return d, err
	}
	return d, nil
}

func copyExecutable(dst string) error {
	src, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// armDeadman starts what runs Revert after d.DeadmanSecs unless the
// armed file is gone by then: a transient timer on systemd, a setsid
// process (not a child of the SSH session) on SysV.
func armDeadman(ctx context.Context, d *FirewallDone, init, dir string) error {
	bin := filepath.Join(dir, "holiday")
	d.ArmedAt = time.Now().UTC()
	if init == string(units.Systemd) {
		disarmSystemd(ctx) // a leftover of an earlier run
		_, err := runTool(ctx, "", "systemd-run", "--unit="+deadmanUnit, "--description=holiday lockdown firewall dead-man",
			fmt.Sprintf("--on-active=%ds", d.DeadmanSecs), "--timer-property=AccuracySec=1s", "--timer-property=RemainAfterElapse=no",
			"--property=Type=oneshot", "--collect",
			bin, "agent", "--firewall-deadman", dir)
		if err != nil {
			return err
		}
		d.DeadmanUnit = deadmanUnit + ".timer"
		return nil
	}
	c := exec.Command("/bin/sh", "-c", fmt.Sprintf("sleep %d; exec %s agent --firewall-deadman %s", d.DeadmanSecs, shellQuote(bin), shellQuote(dir)))
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	c.Stdin, c.Stdout, c.Stderr = devnull, devnull, devnull
	c.Dir = "/"
	c.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", deadmanMark}
	if err := c.Start(); err != nil {
		return err
	}
	d.DeadmanPID = c.Process.Pid
	c.Process.Release()
	return nil
}

func disarmSystemd(ctx context.Context) {
	if units.Detect() != units.Systemd {
		return
	}
	runTool(ctx, "", "systemctl", "stop", deadmanUnit+".timer")
	runTool(ctx, "", "systemctl", "reset-failed", deadmanUnit+".timer", deadmanUnit+".service")
}

// disarm removes the armed file (what the dead-man checks, under the
// lock) and then stops the timer or process. It reports whether the
// dead-man was still armed.
func disarm(ctx context.Context) (bool, error) {
	was := false
	// The lockdown's token, or the isolation's on top of it: one is
	// armed at a time.
	for _, dir := range []string{FirewallDir, layerDir()} {
		err := os.Remove(filepath.Join(dir, "armed"))
		was = was || err == nil
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
	}
	disarmSystemd(ctx)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte("\x00"+deadmanMark+"\x00")) && !bytes.HasPrefix(env, []byte(deadmanMark+"\x00")) {
			continue
		}
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	return was, nil
}

func firewallDisarm(ctx context.Context, op *agent.Op) (any, error) {
	var was bool
	err := withFirewallLock(func() error {
		var err error
		was, err = disarm(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if !was {
		return nil, errors.New("the dead-man had already fired: the host reverted its firewall by itself")
	}
	return map[string]bool{"disarmed": true}, nil
}

func newIPT(backend, family string) (*iptables.IPTables, error) {
	_, _, _, _, i4, i6 := firewallTools(backend)
	bin, proto := i4, iptables.ProtocolIPv4
	if family == "ip6" {
		bin, proto = i6, iptables.ProtocolIPv6
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	return iptables.New(iptables.IPFamily(proto), iptables.Path(path), iptables.Timeout(30))
}

// deleteHoliday deletes holiday's jumps and chains in one family:
// HOLIDAY-IN from INPUT and (isolate's) HOLIDAY-OUT from OUTPUT.
func deleteHoliday(backend, family string) error {
	ipt, err := newIPT(backend, family)
	if err != nil {
		return err
	}
	if err := deleteChain(ipt, "OUTPUT", FirewallOutChain); err != nil {
		return err
	}
	return deleteChain(ipt, "INPUT", FirewallChain)
}

func deleteChain(ipt *iptables.IPTables, from, chain string) error {
	for i := 0; i < 100; i++ {
		ok, err := ipt.Exists("filter", from, "-j", chain)
		if err != nil {
			if e, isE := err.(*iptables.Error); isE && e.IsNotExist() {
				break
			}
			return err
		}
		if !ok {
			break
		}
		if err := ipt.Delete("filter", from, "-j", chain); err != nil {
			return err
		}
	}
	ok, err := ipt.ChainExists("filter", chain)
	if err != nil || !ok {
		return err
	}
	return ipt.ClearAndDeleteChain("filter", chain)
}

// revertFirewall deletes holiday's jumps and chains in both families and
// checks the saves equal the saved ones; if deleting failed, it sets the
// built-in policies to ACCEPT and restores the saved rules (DESIGN §6.5).
func revertFirewall(ctx context.Context, p FirewallPrior) error {
	if p.Backend == "" {
		b, err := os.ReadFile(filepath.Join(FirewallDir, "backend"))
		if errors.Is(err, os.ErrNotExist) {
			return nil // never applied here (or already reverted)
		}
		if err != nil {
			return err
		}
		p.Backend = strings.TrimSpace(string(b))
		s4, err4 := os.ReadFile(filepath.Join(FirewallDir, "saved.v4"))
		s6, err6 := os.ReadFile(filepath.Join(FirewallDir, "saved.v6"))
		if err := errors.Join(err4, err6); err != nil {
			return err
		}
		p.Save4, p.Save6 = string(s4), string(s6)
	}
	disarm(ctx)
	s4, s6, r4, r6, _, _ := firewallTools(p.Backend)
	var errs []error
	for _, f := range []struct{ family, save, restore, saved string }{{"ip6", s6, r6, p.Save6}, {"ip4", s4, r4, p.Save4}} {
		derr := deleteHoliday(p.Backend, f.family)
		now, err := runTool(ctx, "", f.save)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if derr == nil && NormalizeSave(now) == NormalizeSave(f.saved) {
			dropCreatedTable(ctx, p.Backend, f.family, f.saved, now)
			continue
		}
		if derr == nil {
			// Deleted, yet different: someone changed the host's own
			// rules during the break. Theirs; say so, change nothing.
			errs = append(errs, fmt.Errorf("%s: holiday's chain is gone, but the rules differ from the ones saved at lockdown (changed during the break?):\n%s", f.family, saveDiff(NormalizeSave(f.saved), NormalizeSave(now))))
			continue
		}
		// The fallback: policies to ACCEPT, then the saved rules.
		if ferr := restoreSaved(ctx, f.restore, f.saved, now); ferr != nil {
			errs = append(errs, fmt.Errorf("%s: deleting holiday's chain: %v; restoring the saved rules: %v", f.family, derr, ferr))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := removeBoot(ctx); err != nil {
		return fmt.Errorf("removing the boot-time re-apply: %w", err)
	}
	if err := os.Remove(UndoFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.RemoveAll(FirewallDir)
}

// dropCreatedTable deletes, on the nft backend, the empty filter table
// that applying created on a host whose save had none (iptables-nft leaves
// it behind; legacy tables are the kernel's and stay).
func dropCreatedTable(ctx context.Context, backend, family, saved, now string) {
	if backend != "nft" || strings.Contains(saved, "*filter") || !strings.Contains(now, "*filter") {
		return
	}
	fam := "ip"
	if family == "ip6" {
		fam = "ip6"
	}
	runTool(ctx, "", "nft", "delete", "table", fam, "filter")
}

// restoreSaved sets every built-in chain's policy in the tables now
// present to ACCEPT, then restores saved (which sets its own policies).
func restoreSaved(ctx context.Context, restore, saved, now string) error {
	var accept strings.Builder
	for _, line := range strings.Split(now, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			accept.WriteString(line + "\n")
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) >= 2 && f[1] != "-" {
				fmt.Fprintf(&accept, ":%s ACCEPT [0:0]\n", f[0])
			}
		case line == "COMMIT":
			accept.WriteString("COMMIT\n")
		}
	}
	if _, err := runTool(ctx, accept.String(), restore, "--noflush", "-w"); err != nil {
		return err
	}
	if strings.TrimSpace(saved) == "" {
		return nil
	}
	_, err := runTool(ctx, saved, restore, "-w")
	return err
}

func saveDiff(a, b string) string {
	am, bm := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		am[l] = true
	}
	for _, l := range strings.Split(b, "\n") {
		bm[l] = true
	}
	var d []string
	for _, l := range strings.Split(a, "\n") {
		if !bm[l] {
			d = append(d, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !am[l] {
			d = append(d, "+ "+l)
		}
	}
	return strings.Join(d, "\n")
}

func firewallRevert(ctx context.Context, op *agent.Op) (any, error) {
	var a firewallRevertArgs
	if err := jsonUnmarshal(op.Args, &a); err != nil {
		return nil, err
	}
	revert := revertFirewall
	if a.Prior.OnLockdown {
		revert = revertLayer
	}
	err := withFirewallLock(func() error { return revert(ctx, a.Prior) })
	if err != nil {
		return nil, err
	}
	return map[string]bool{"reverted": true}, nil
}

func firewallVerify(ctx context.Context, op *agent.Op) (any, error) {
	var a firewallVerifyArgs
	if err := jsonUnmarshal(op.Args, &a); err != nil {
		return nil, err
	}
	if !strings.Contains(a.Rules4, ":"+FirewallOutChain+" ") {
		// The lockdown's step, with isolation on top of it: what holds
		// now is isolation's chain, behind the same jump.
		r4, err4 := os.ReadFile(filepath.Join(layerDir(), "rules.v4"))
		r6, err6 := os.ReadFile(filepath.Join(layerDir(), "rules.v6"))
		if _, armed := os.Stat(filepath.Join(layerDir(), "armed")); err4 == nil && err6 == nil && armed != nil {
			a.Rules4, a.Rules6 = string(r4), string(r6)
		}
	}
	var errs []error
	for _, fam := range a.Applied {
		rules := a.Rules4
		if fam == "ip6" {
			rules = a.Rules6
		}
		ipt, err := newIPT(a.Backend, fam)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := verifyChain(ipt, fam, "INPUT", FirewallChain, rules); err != nil {
			errs = append(errs, err)
		}
		if strings.Contains(rules, ":"+FirewallOutChain+" ") {
			if err := verifyChain(ipt, fam, "OUTPUT", FirewallOutChain, rules); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(a.Applied) < 2 {
		errs = append(errs, fmt.Errorf("only %v of both families was applied", a.Applied))
	}
	return nil, errors.Join(errs...)
}

// verifyChain: from's first rule jumps to chain, which holds as many
// rules as were applied, ending in DROP.
func verifyChain(ipt *iptables.IPTables, fam, from, chain, rules string) error {
	want := 0
	for _, l := range strings.Split(rules, "\n") {
		if strings.HasPrefix(l, "-A "+chain+" ") {
			want++
		}
	}
	in, err := ipt.List("filter", from)
	if err != nil {
		return err
	}
	var first string
	for _, l := range in {
		if strings.HasPrefix(l, "-A ") {
			first = l
			break
		}
	}
	if first != "-A "+from+" -j "+chain {
		return fmt.Errorf("%s: %s no longer jumps to %s first (first rule: %q)", fam, from, chain, first)
	}
	ch, err := ipt.List("filter", chain)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", fam, chain, err)
	}
	got := 0
	for _, l := range ch {
		if strings.HasPrefix(l, "-A ") {
			got++
		}
	}
	if got != want || len(ch) == 0 || ch[len(ch)-1] != "-A "+chain+" -j DROP" {
		return fmt.Errorf("%s: %s holds %d rules, lockdown put %d ending in DROP", fam, chain, got, want)
	}
	return nil
}

// FirewallDeadman is the dead-man's and the console undo's entry point
// (`holiday agent --firewall-deadman DIR` / `--firewall-revert DIR`): run
// exactly Revert from what the host kept in dir. With onlyIfArmed (the
// dead-man), nothing happens once the control node disarmed it.
func FirewallDeadman(ctx context.Context, dir string, onlyIfArmed bool, log io.Writer) error {
	if isLayerDir(dir) {
		return layerDeadman(ctx, dir, onlyIfArmed, log)
	}
	FirewallDir = dir
	logf := deadmanLogger(log, "")
	return withFirewallLock(func() error {
		if onlyIfArmed {
			if _, err := os.Stat(filepath.Join(dir, "armed")); err != nil {
				logf("dead-man: disarmed, nothing to do")
				return nil
			}
			logf("dead-man: not disarmed in time; reverting the lockdown firewall")
		}
		err := revertFirewall(ctx, FirewallPrior{})
		if err != nil {
			logf("revert failed: %v", err)
			return err
		}
		logf("reverted: the rules are as saved at lockdown")
		return nil
	})
}

// deadmanLogger logs one timestamped line (after prefix) to log and
// appends it to the host's dead-man log, which outlives the process: what
// the dead-man and the boot unit did is read there afterwards.
func deadmanLogger(log io.Writer, prefix string) func(format string, args ...any) {
	return func(format string, args ...any) {
		line := time.Now().UTC().Format(time.RFC3339) + " " + prefix + fmt.Sprintf(format, args...) + "\n"
		io.WriteString(log, line)
		if f, err := os.OpenFile(deadmanLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			f.WriteString(line)
			f.Close()
		}
	}
}

// layerDeadman is FirewallDeadman for isolation on top of a lockdown
// (dir is its layerDir): back to the lockdown firewall, not further.
func layerDeadman(ctx context.Context, dir string, onlyIfArmed bool, log io.Writer) error {
	FirewallDir = filepath.Dir(dir)
	logf := deadmanLogger(log, "")
	return withFirewallLock(func() error {
		if onlyIfArmed {
			if _, err := os.Stat(filepath.Join(dir, "armed")); err != nil {
				logf("dead-man: disarmed, nothing to do")
				return nil
			}
			logf("dead-man: not disarmed in time; taking isolation off, back to the lockdown firewall")
		}
		if err := revertLayer(ctx, FirewallPrior{}); err != nil {
			logf("revert failed: %v", err)
			return err
		}
		logf("reverted: the lockdown firewall is as it was before isolation")
		return nil
	})
}
