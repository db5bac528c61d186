package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/holiday-ops/holiday/internal/units"
)

// The lockdown firewall across a reboot (DESIGN §6.7): while the host is
// locked down, a boot-time unit (systemd) or init script (SysV) runs
// `holiday agent --firewall-boot DIR`, which re-applies holiday's chains
// from the rules the firewall step keeps in FirewallDir, after the host's
// own rules are loaded and before sshd starts. Revert removes it.

// BootUnitPath and BootScriptPath are where the boot-time re-apply is
// installed on systemd and SysV hosts.
var (
	BootUnitPath   = "/etc/systemd/system/holiday-firewall.service"
	BootScriptPath = "/etc/init.d/holiday-firewall"
)

const bootUnitName = "holiday-firewall.service"

// inBootUnit: this process is the boot unit's own ExecStart.
var inBootUnit bool

// knownLoaders are units that load a host's own rules at boot; the boot
// unit is ordered after them (and after whatever else the host orders
// before network-pre.target), so their iptables-restore cannot flush
// holiday's chain.
var knownLoaders = []string{"netfilter-persistent.service", "iptables.service", "ip6tables.service", "iptables-restore.service", "ip6tables-restore.service", "ferm.service"}

func bootCommand() string {
	return filepath.Join(FirewallDir, "holiday") + " agent --firewall-boot " + FirewallDir
}

// installBoot installs and enables the boot-time re-apply; it returns
// what it installed.
func installBoot(ctx context.Context, init string) (string, error) {
	if init == string(units.Systemd) {
		after := map[string]bool{"local-fs.target": true}
		for _, u := range knownLoaders {
			after[u] = true
		}
		if out, err := runTool(ctx, "", "systemctl", "show", "-p", "After", "--value", "network-pre.target"); err == nil {
			for _, u := range strings.Fields(out) {
				if strings.HasSuffix(u, ".service") && u != bootUnitName {
					after[u] = true
				}
			}
		}
		var as []string
		for u := range after {
			as = append(as, u)
		}
		sort.Strings(as)
		unit := fmt.Sprintf(`# holiday: re-applies the lockdown firewall at boot while the host is locked
# down; holiday restore removes this file.
[Unit]
Description=holiday lockdown firewall (re-applied at boot)
DefaultDependencies=no
Wants=network-pre.target
After=%s
Before=network-pre.target shutdown.target ssh.service ssh.socket sshd.service
Conflicts=shutdown.target
ConditionPathExists=%s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%s

[Install]
WantedBy=multi-user.target
`, strings.Join(as, " "), filepath.Join(FirewallDir, "rules.v4"), bootCommand())
		if err := writeFileSync(BootUnitPath, []byte(unit), 0o644); err != nil {
			return "", err
		}
		if _, err := runTool(ctx, "", "systemctl", "daemon-reload"); err != nil {
			return BootUnitPath, err
		}
		if _, err := runTool(ctx, "", "systemctl", "enable", "--quiet", bootUnitName); err != nil {
			return BootUnitPath, err
		}
		return BootUnitPath, nil
	}
	script := fmt.Sprintf(`#!/bin/sh
### BEGIN INIT INFO
# Provides:          holiday-firewall
# Required-Start:    $local_fs
# Should-Start:      netfilter-persistent iptables
# Required-Stop:
# X-Start-Before:    ssh
# Default-Start:     2 3 4 5
# Default-Stop:
# Short-Description: holiday lockdown firewall (re-applied at boot)
### END INIT INFO
# holiday restore removes this script and its links.
case "$1" in
start) [ -f %[1]s ] && exec %[2]s ;;
stop|restart|force-reload|status) exit 0 ;;
*) echo "Usage: $0 start" >&2; exit 3 ;;
esac
`, filepath.Join(FirewallDir, "rules.v4"), bootCommand())
	if err := writeFileSync(BootScriptPath, []byte(script), 0o755); err != nil {
		return "", err
	}
	for _, l := range sysvBootLinks() {
		os.Remove(l)
		if err := os.Symlink("../init.d/"+filepath.Base(BootScriptPath), l); err != nil {
			return BootScriptPath, err
		}
	}
	return BootScriptPath, nil
}

// sysvBootLinks are the rc links of the boot script, in the runlevels
// 2–5 that exist. A runlevel's S links run in name order, so the link's
// name must sort after every link of the host's own rule loaders (their
// iptables-restore would flush holiday's chain) and before ssh's:
// S<NN>holiday-firewall, NN ssh's number, when that already sorts after
// the loaders; else the last loader's link name with "-holiday-firewall"
// appended (the lab's S01lab-firewall, as ssh's S01ssh, gives
// S01lab-firewall-holiday-firewall). A loader that sorts after ssh wins:
// the lockdown firewall then comes back after sshd starts, as the host's
// own rules do, rather than being flushed.
func sysvBootLinks() []string {
	var links []string
	for _, rl := range []string{"2", "3", "4", "5"} {
		dir := "/etc/rc" + rl + ".d"
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		num := "01"
		if m, _ := filepath.Glob(filepath.Join(dir, "S[0-9][0-9]ssh")); len(m) == 1 {
			num = filepath.Base(m[0])[1:3]
		}
		name := "S" + num + filepath.Base(BootScriptPath)
		if last := lastLoaderLink(dir); last != "" && last > name {
			name = last + "-" + filepath.Base(BootScriptPath)
		}
		links = append(links, filepath.Join(dir, name))
	}
	return links
}

// loaderName matches the init scripts that load a host's own rules by
// their name (netfilter-persistent, iptables-persistent, ferm, nftables,
// shorewall, the lab's lab-firewall, …).
var loaderName = regexp.MustCompile(`firewall|iptables|netfilter|ferm|nftables|shorewall`)

// lastLoaderLink is the name of the last S link in dir whose script loads
// rules (by its name, or by calling iptables-restore itself); "" if none.
func lastLoaderLink(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "S[0-9][0-9]*"))
	sort.Strings(m)
	last := ""
	for _, l := range m {
		base := filepath.Base(l)
		if strings.HasSuffix(base, filepath.Base(BootScriptPath)) {
			continue
		}
		script, _ := os.ReadFile(l)
		if loaderName.MatchString(base[3:]) || bytes.Contains(script, []byte("iptables-restore")) {
			last = base
		}
	}
	return last
}

// removeBoot undoes installBoot; idempotent.
func removeBoot(ctx context.Context) error {
	var errs []error
	if _, err := os.Stat(BootUnitPath); err == nil {
		// Active (exited) since the boot it ran in: stopped, or it stays
		// loaded as not-found. Not from inside itself (the boot-time
		// revert of an unconfirmed lockdown).
		if !inBootUnit {
			runTool(ctx, "", "systemctl", "stop", bootUnitName)
		}
		if _, err := runTool(ctx, "", "systemctl", "disable", "--quiet", bootUnitName); err != nil {
			errs = append(errs, err)
		}
		if err := os.Remove(BootUnitPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		if _, err := runTool(ctx, "", "systemctl", "daemon-reload"); err != nil {
			errs = append(errs, err)
		}
	}
	for _, rl := range []string{"0", "1", "2", "3", "4", "5", "6", "S"} {
		m, _ := filepath.Glob(filepath.Join("/etc/rc"+rl+".d", "[SK][0-9][0-9]*"+filepath.Base(BootScriptPath)))
		for _, l := range m {
			if err := os.Remove(l); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(BootScriptPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// FirewallBoot is the boot-time entry point (`holiday agent
// --firewall-boot DIR`): re-apply holiday's chains from what the host
// kept in dir. A lockdown whose dead-man was still armed (never confirmed
// before the reboot) is reverted instead: the timer that would have done
// it did not survive the boot.
func FirewallBoot(ctx context.Context, dir string, log io.Writer) error {
	FirewallDir = dir
	inBootUnit = true
	logf := deadmanLogger(log, "boot: ")
	return withFirewallLock(func() error {
		if _, err := os.Stat(filepath.Join(dir, "armed")); err == nil {
			logf("the lockdown firewall was never confirmed before the reboot; reverting it")
			if err := revertFirewall(ctx, FirewallPrior{}); err != nil {
				logf("revert failed: %v", err)
				return err
			}
			logf("reverted: the rules are as saved at lockdown")
			return nil
		}
		b, err := os.ReadFile(filepath.Join(dir, "backend"))
		if err != nil {
			logf("%v", err)
			return err
		}
		backend := strings.TrimSpace(string(b))
		// Isolation on top of the lockdown: its rules while it holds;
		// one never confirmed before the reboot is dropped (its dead-man
		// did not survive the boot either), leaving the lockdown's.
		from, what := dir, "the lockdown firewall"
		if _, err := os.Stat(filepath.Join(layerDir(), "armed")); err == nil {
			logf("the isolation on top of the lockdown firewall was never confirmed before the reboot; back to the lockdown firewall")
			if err := os.RemoveAll(layerDir()); err != nil {
				logf("%v", err)
			}
		} else if _, err := os.Stat(filepath.Join(layerDir(), "rules.v4")); err == nil {
			from, what = layerDir(), "isolation (on top of the lockdown firewall)"
		}
		_, _, r4, r6, _, _ := firewallTools(backend)
		var errs []error
		for _, f := range []struct{ family, restore, file string }{{"ip6", r6, "rules.v6"}, {"ip4", r4, "rules.v4"}} {
			rules, err := os.ReadFile(filepath.Join(from, f.file))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := deleteHoliday(backend, f.family); err != nil {
				errs = append(errs, err)
				continue
			}
			if _, err := runTool(ctx, string(rules), f.restore, "--noflush", "-w"); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			logf("re-applying %s: %v", what, err)
			return err
		}
		logf("re-applied %s (%s, both families)", what, backend)
		return nil
	})
}
