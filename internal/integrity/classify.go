package integrity

import (
	"path/filepath"
	"strings"
)

// Category is what a watched path is for; it decides how a change to it
// is judged.
type Category string

const (
	CatAccounts Category = "accounts" // passwd, group, shadow: judged per account
	CatSudoers  Category = "sudoers"  // who may become root
	CatSSHD     Category = "sshd"     // sshd's configuration
	CatCron     Category = "cron"     // persistence
	CatAt       Category = "at"       // persistence
	CatSystemd  Category = "systemd"  // persistence: units, timers, enabled links
	CatRC       Category = "rc"       // persistence: SysV scripts and links
	CatPreload  Category = "ld.so.preload"
	CatLdConf   Category = "ld.so.conf" // library search path
	CatPAM      Category = "pam"
	CatProfile  Category = "profile" // runs at every login
	CatBinary   Category = "binary"  // system binaries and libraries
	CatWeb      Category = "web"
	CatEtc      Category = "etc"
)

// persistence are the categories whose unexplained change is an
// indicator: code that runs later, or who gets in.
var persistence = map[Category]bool{
	CatSudoers: true, CatSSHD: true, CatCron: true, CatAt: true, CatSystemd: true, CatRC: true,
	CatPreload: true, CatLdConf: true, CatPAM: true, CatProfile: true,
}

// etcChurn are files in /etc rewritten in normal operation.
var etcChurn = map[string]string{
	"/etc/adjtime":     "the hardware clock's drift file",
	"/etc/mtab":        "the mount table",
	"/etc/resolv.conf": "the resolver, rewritten by DHCP or resolvconf",
	"/etc/.pwd.lock":   "the account database's lock file",
	"/etc/passwd-":     "the backup copy shadow-utils keeps",
	"/etc/group-":      "the backup copy shadow-utils keeps",
	"/etc/shadow-":     "the backup copy shadow-utils keeps",
	"/etc/gshadow-":    "the backup copy shadow-utils keeps",
	"/etc/subuid-":     "the backup copy shadow-utils keeps",
	"/etc/subgid-":     "the backup copy shadow-utils keeps",
}

// Classify returns the category of a watched path; webRoots are the
// plan's.
func Classify(p string, webRoots []string) Category {
	for _, w := range webRoots {
		w = filepath.Clean(w)
		if p == w || strings.HasPrefix(p, w+"/") {
			return CatWeb
		}
	}
	under := func(dirs ...string) bool {
		for _, d := range dirs {
			if p == d || strings.HasPrefix(p, d+"/") {
				return true
			}
		}
		return false
	}
	base := filepath.Base(p)
	switch {
	case under("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"):
		return CatAccounts
	case under("/etc/sudoers", "/etc/sudoers.d", "/etc/doas.conf"):
		return CatSudoers
	case under("/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d"):
		return CatSSHD
	case under("/etc/crontab", "/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly",
		"/etc/cron.monthly", "/etc/cron.yearly", "/var/spool/cron/crontabs", "/var/spool/cron/tabs", "/etc/anacrontab"):
		return CatCron
	case under("/var/spool/cron/atjobs", "/var/spool/at", "/var/spool/cron/atspool"):
		return CatAt
	case under("/etc/systemd/system", "/etc/systemd/user", "/usr/lib/systemd/system", "/usr/lib/systemd/user",
		"/lib/systemd/system", "/lib/systemd/user", "/usr/local/lib/systemd", "/etc/systemd/system.conf",
		"/usr/lib/systemd/system-generators", "/etc/systemd/system-generators", "/usr/lib/systemd/user-generators"),
		strings.Contains(p, "/.config/systemd/user"):
		return CatSystemd
	case under("/etc/init.d", "/etc/rc.local", "/etc/inittab") || (strings.HasPrefix(p, "/etc/rc") && strings.HasSuffix(filepath.Dir(p), ".d")):
		return CatRC
	case p == "/etc/ld.so.preload":
		return CatPreload
	case under("/etc/ld.so.conf", "/etc/ld.so.conf.d"):
		return CatLdConf
	case under("/etc/pam.d", "/etc/pam.conf", "/etc/security") ||
		(strings.Contains(p, "/security/pam_") && strings.HasSuffix(p, ".so")):
		return CatPAM
	case under("/etc/profile", "/etc/profile.d", "/etc/bash.bashrc", "/etc/environment", "/etc/zsh", "/etc/bash_completion.d", "/etc/X11/Xsession.d") ||
		(strings.HasPrefix(p, "/") && isHomeFile(p, base)):
		return CatProfile
	case strings.HasPrefix(p, "/etc/"):
		return CatEtc
	}
	for _, d := range SystemDirs {
		if under(d) {
			return CatBinary
		}
	}
	return CatEtc
}

func isHomeFile(p, base string) bool {
	for _, h := range HomeFiles {
		if strings.HasSuffix(p, "/"+h) || strings.Contains(p, "/"+h+"/") {
			return true
		}
	}
	return false
}

// netfilterModule reports modules the kernel loads on demand when
// firewall rules use them (iptables, nftables, conntrack, ipset): loading
// one is what a lockdown firewall does, not what an intruder needs.
func netfilterModule(name string) bool {
	for _, p := range []string{"nf_", "nft_", "xt_", "ipt_", "ip6t_", "ebt_", "arpt_", "ip_set", "iptable_", "ip6table_", "x_tables", "nfnetlink", "ip_tables", "ip6_tables", "arp_tables", "ebtable", "br_netfilter"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// privilegedGroups are the groups whose new members can become root or
// read what root reads.
var privilegedGroups = map[string]bool{
	"root": true, "sudo": true, "wheel": true, "admin": true, "adm": true, "shadow": true, "disk": true,
	"docker": true, "lxd": true, "libvirt": true,
}

// loginShell reports a shell someone can log in with.
func loginShell(s string) bool {
	b := filepath.Base(s)
	return s != "" && b != "nologin" && b != "false" && b != "sync" && b != "shutdown" && b != "halt"
}

// suspiciousExe reports an executable path a legitimate service does not
// run from.
func suspiciousExe(exe string) string {
	switch {
	case strings.HasPrefix(exe, "/memfd:"):
		return "a memfd (fileless) executable"
	case strings.HasSuffix(exe, " (deleted)"):
		return "a deleted executable"
	}
	for _, d := range []string{"/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/", "/dev/mqueue/"} {
		if strings.HasPrefix(exe, d) {
			return "an executable in " + strings.TrimSuffix(d, "/")
		}
	}
	return ""
}
