package plans

import (
	"fmt"
	"github.com/holiday-ops/holiday/internal/names"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
)

func (v *validator) validate() {
	p := v.p
	if p.Version != 0 && p.Version != 1 {
		v.errorf("version", "unsupported version %d; this holiday reads version 1", p.Version)
	}
	if p.Name != "" && !validName(p.Name) {
		v.errorf("name", "%q: use letters, digits, '.', '-' and '_' (it labels snapshots)", clip(p.Name))
	}
	if w := p.Window; w != nil && !w.Start.IsZero() && !w.End.IsZero() && !w.End.After(w.Start) {
		v.errorf("window.end", "the window ends (%s) before it starts (%s)", w.End.Format("2006-01-02 15:04 -07:00"), w.Start.Format("2006-01-02 15:04 -07:00"))
	}
	if p.Management != nil && len(p.Management) == 0 {
		v.errorf("management", "empty; list the ranges operators and monitoring reach hosts from (bastion, VPN, on-call), so lockdown never cuts them off")
	}
	if r := p.Repository; r != nil {
		v.repository(r, "repository")
		if r.CopyTo != nil {
			v.repository(r.CopyTo, "repository.copy_to")
			if r.CopyTo.CopyTo != nil {
				v.errorf("repository.copy_to.copy_to", "a second copy cannot have its own copy_to")
			}
			if r.CopyTo.URL != "" && r.CopyTo.URL == r.URL {
				v.errorf("repository.copy_to.url", "the second copy is the same repository as the first")
			}
		}
	}
	if s := p.SSH; s != nil {
		v.port(s.Port, "ssh.port")
		v.fileExists(s.Identity, "ssh.identity")
		v.fileExists(s.KnownHosts, "ssh.known_hosts")
		if s.Jump != "" && strings.ContainsAny(s.Jump, " \t") {
			v.errorf("ssh.jump", "%q: want [user@]host[:port]", clip(s.Jump))
		}
		if s.AgentPath != "" && !path.IsAbs(s.AgentPath) {
			v.errorf("ssh.agent_path", "%q: want an absolute path on the hosts", clip(s.AgentPath))
		}
	}
	if p.Defaults != nil {
		v.hostFields(p.Defaults, "defaults", false)
	}
	for _, name := range sortedGroupNames(p.Groups) {
		gp := "groups." + name
		if !validGroupName(name) {
			v.errorf(gp, "group name %q: use letters, digits and _ (as Ansible does)", clip(name))
		}
		if g := p.Groups[name]; g != nil {
			v.hostFields(g, gp, false)
		}
	}
	for i, h := range p.HostEntries {
		if h == nil {
			continue
		}
		hp := entryPath(p, i)
		if h.Name != "" && !validName(h.Name) {
			v.errorf(hp+".name", "%q: host names may hold only letters, digits, '.', '-' and '_'", clip(h.Name))
		}
		v.hostFields(&h.HostFields, hp, true)
	}
	seen := map[string]string{}
	for i, dv := range p.Devices {
		if dv == nil {
			continue
		}
		dp := devicePath(p, i)
		if dv.Name != "" {
			if !validName(dv.Name) {
				v.errorf(dp+".name", "%q: device names may hold only letters, digits, '.', '-' and '_'", clip(dv.Name))
			} else if first, dup := seen[dv.Name]; dup {
				v.errorf(dp+".name", "duplicate device name %s (first at %s); names must be unique", dv.Name, first)
			} else {
				seen[dv.Name] = fmt.Sprintf("line %d", v.p.at(dp).Line)
			}
		}
		v.address(dv.Address, dp+".address")
		v.port(dv.Port, dp+".port")
		v.envName(dv.PasswordEnv, dp+".password_env")
		v.fileExists(dv.PasswordFile, dp+".password_file")
		v.fileExists(dv.Identity, dp+".identity")
		switch {
		case dv.PasswordEnv != "" && dv.PasswordFile != "":
			v.errorf(dp+".password_file", "set password_env or password_file, not both")
		case dv.PasswordEnv == "" && dv.PasswordFile == "" && dv.Identity == "":
			v.errorf(dp, "no way to log in: set password_env, password_file or identity")
		}
		v.envName(dv.EnablePasswordEnv, dp+".enable_password_env")
		v.fileExists(dv.EnablePasswordFile, dp+".enable_password_file")
		if dv.EnablePasswordEnv != "" && dv.EnablePasswordFile != "" {
			v.errorf(dp+".enable_password_file", "set enable_password_env or enable_password_file, not both")
		}
	}
	if p.Repository == nil && p.needsRepository() {
		v.errorf("repository", "missing; hosts and devices are backed up, so the plan needs repository: {url: ..., password_file: ...}")
	}
	if a := p.Alerts; a != nil {
		if a.Webhook != "" {
			if u, err := url.Parse(a.Webhook); err == nil && u.User != nil {
				// Don't echo it: the URL holds a password.
				v.errorf("alerts.webhook", "credentials in the URL are literal secrets, not allowed in plans; use a webhook that takes none, or a URL without user:password@")
			} else if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.errorf("alerts.webhook", "%q is not an http(s) URL", clip(a.Webhook))
			}
		}
		if e := a.Email; e != nil {
			for i, to := range e.To {
				if !strings.Contains(to, "@") || strings.ContainsAny(to, " \t") {
					v.errorf(fmt.Sprintf("alerts.email.to[%d]", i), "%q is not an email address", clip(to))
				}
			}
			if e.SMTP != "" {
				if host, port, err := net.SplitHostPort(e.SMTP); err != nil || host == "" {
					v.errorf("alerts.email.smtp", "%q: want host:port, like mail.example.com:587", clip(e.SMTP))
				} else if _, ok := parsePort(port); !ok {
					v.errorf("alerts.email.smtp", "%q: %q is not a port", clip(e.SMTP), port)
				}
			}
			v.envName(e.PasswordEnv, "alerts.email.password_env")
			v.fileExists(e.PasswordFile, "alerts.email.password_file")
			if e.PasswordEnv != "" && e.PasswordFile != "" {
				v.errorf("alerts.email.password_file", "set password_env or password_file, not both")
			}
			if (e.PasswordEnv != "" || e.PasswordFile != "") && e.User == "" {
				v.errorf("alerts.email", "a password is set but no user; add user:")
			}
		}
	}
}

// needsRepository reports whether anything in the plan is backed up.
func (p *Plan) needsRepository() bool {
	if len(p.Devices) > 0 {
		return true
	}
	has := func(f *HostFields) bool { return f != nil && f.Backup != nil && !f.Backup.None }
	if has(p.Defaults) {
		return true
	}
	for _, g := range p.Groups {
		if has(g) {
			return true
		}
	}
	for _, h := range p.HostEntries {
		if h != nil && has(&h.HostFields) {
			return true
		}
	}
	return false
}

func (v *validator) repository(r *Repository, rp string) {
	if r.URL != "" {
		if strings.HasPrefix(r.URL, "s3:") {
			u, err := url.Parse(strings.TrimPrefix(r.URL, "s3:"))
			if err == nil && u.User != nil {
				// Don't echo it: the URL holds the access key and secret.
				v.errorf(rp+".url", "credentials in the URL are literal secrets, not allowed in plans; give S3 credentials through the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or an AWS profile")
			} else if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
				v.errorf(rp+".url", "%q: want s3:https://host/bucket[/prefix]", clip(r.URL))
			}
		} else if strings.Contains(r.URL, "://") || strings.HasPrefix(r.URL, "sftp:") || strings.HasPrefix(r.URL, "rest:") {
			v.errorf(rp+".url", "%q: want a local path or s3:https://host/bucket[/prefix]", clip(r.URL))
		} else if !path.IsAbs(r.URL) {
			v.errorf(rp+".url", "%q: want an absolute path (or s3:https://host/bucket/prefix)", clip(r.URL))
		}
	}
	if r.S3 != nil {
		v.repositoryS3(r, rp+".s3")
	}
	if ol := r.ObjectLock; ol != nil {
		if r.URL != "" && !strings.HasPrefix(r.URL, "s3:") {
			v.errorf(rp+".object_lock", "Object Lock is an S3 feature; a local repository cannot have it (use url: s3:https://host/bucket/prefix)")
		}
		if _, set := v.p.pos[rp+".object_lock.days"]; set && (ol.Days < 1 || ol.Days > maxLockDays) {
			v.errorf(rp+".object_lock.days", "%d: want 1 to %d days", ol.Days, maxLockDays)
		}
	}
	v.envName(r.PasswordEnv, rp+".password_env")
	v.fileExists(r.PasswordFile, rp+".password_file")
	switch {
	case r.PasswordEnv != "" && r.PasswordFile != "":
		v.errorf(rp+".password_file", "set password_env or password_file, not both")
	case r.PasswordEnv == "" && r.PasswordFile == "":
		v.errorf(rp, "no password source: add password_env: VAR or password_file: PATH")
	}
}

// maxLockDays bounds object_lock.days: a typo (365000) in compliance
// mode would make the bucket's data undeletable for a millennium.
const maxLockDays = 3650

func (v *validator) repositoryS3(r *Repository, sp string) {
	s := r.S3
	if r.URL != "" && !strings.HasPrefix(r.URL, "s3:") {
		v.errorf(sp, "only for an s3: repository url; remove it or use url: s3:https://host/bucket/prefix")
	}
	v.envName(s.AccessKeyIDEnv, sp+".access_key_id_env")
	v.envName(s.SecretAccessKeyEnv, sp+".secret_access_key_env")
	v.fileExists(s.AccessKeyIDFile, sp+".access_key_id_file")
	v.fileExists(s.SecretAccessKeyFile, sp+".secret_access_key_file")
	v.fileExists(s.CredentialsFile, sp+".credentials_file")
	if s.AccessKeyIDEnv != "" && s.AccessKeyIDFile != "" {
		v.errorf(sp+".access_key_id_file", "set access_key_id_env or access_key_id_file, not both")
	}
	if s.SecretAccessKeyEnv != "" && s.SecretAccessKeyFile != "" {
		v.errorf(sp+".secret_access_key_file", "set secret_access_key_env or secret_access_key_file, not both")
	}
	id := s.AccessKeyIDEnv != "" || s.AccessKeyIDFile != ""
	secret := s.SecretAccessKeyEnv != "" || s.SecretAccessKeyFile != ""
	switch {
	case id && !secret:
		v.errorf(sp, "an access key ID without a secret: add secret_access_key_env: VAR or secret_access_key_file: PATH")
	case secret && !id:
		v.errorf(sp, "a secret access key without its ID: add access_key_id_env: VAR or access_key_id_file: PATH")
	case id && s.CredentialsFile != "":
		v.errorf(sp+".credentials_file", "set the access key fields or credentials_file, not both")
	}
	if s.Profile != "" && id {
		v.errorf(sp+".profile", "a profile needs credentials_file (or the SDK's own files), not the access key fields")
	}
}

func (v *validator) port(port int, pp string) {
	if port != 0 && (port < 1 || port > 65535) {
		v.errorf(pp, "%d is not a port (1-65535)", port)
	}
}

func (v *validator) envName(name, ep string) {
	if name == "" {
		return
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			v.errorf(ep, "%q is not an environment variable name (letters, digits and _, like REPO_PASS)", clip(name))
			return
		}
	}
}

func (v *validator) fileExists(name, fp string) {
	if name == "" {
		return
	}
	if !v.opt.CheckFiles {
		return
	}
	if strings.HasPrefix(name, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		name = home + name[1:]
	}
	if _, err := os.Stat(name); err != nil {
		v.errorf(fp, "%s: %v", name, unwrapPathError(err))
	}
}

// address checks an IP address or DNS name.
func (v *validator) address(a, ap string) {
	if a == "" {
		return
	}
	if _, err := netip.ParseAddr(a); err == nil {
		return
	}
	if !validHostname(a) {
		v.errorf(ap, "%q is not an IP address or host name", clip(a))
	}
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// hostFields checks one layer of host fields; isHost is false for
// defaults and groups, which may not hold per-host fields.
func (v *validator) hostFields(f *HostFields, fp string, isHost bool) {
	if !isHost {
		if f.Address != "" {
			v.errorf(fp+".address", "address belongs on each host, not in %s", strings.SplitN(fp, ".", 2)[0])
		}
		if f.Address6 != "" {
			v.errorf(fp+".address6", "address6 belongs on each host, not in %s", strings.SplitN(fp, ".", 2)[0])
		}
	}
	v.address(f.Address, fp+".address")
	if f.Address6 != "" {
		if a, err := netip.ParseAddr(f.Address6); err != nil || !a.Is6() || a.Is4In6() {
			v.errorf(fp+".address6", "%q is not an IPv6 address", clip(f.Address6))
		}
	}
	v.port(f.Port, fp+".port")
	if b := f.Backup; b != nil {
		for i, s := range b.Sources {
			if s != nil {
				v.backupSource(s, fmt.Sprintf("%s.backup[%d]", fp, i))
			}
		}
	}
	seen := map[string]bool{}
	for i, u := range f.Stop {
		sp := fmt.Sprintf("%s.stop[%d]", fp, i)
		if !validUnit(u) {
			v.errorf(sp, "%q is not a service name", clip(u))
		} else if seen[u] {
			v.errorf(sp, "%s is listed twice", u)
		}
		seen[u] = true
	}
	seenRoot := map[string]bool{}
	for i, w := range f.WebRoots {
		wp := fmt.Sprintf("%s.web_roots[%d]", fp, i)
		switch {
		case !strings.HasPrefix(w, "/"):
			v.errorf(wp, "%q is not an absolute path (like /var/www)", clip(w))
		case path.Clean(w) == "/":
			v.errorf(wp, "/ is the whole system, not a web root; name the document root (like /var/www)")
		case path.Clean(w) != w:
			v.errorf(wp, "%q is not a clean path; write %s", clip(w), path.Clean(w))
		case seenRoot[w]:
			v.errorf(wp, "%s is listed twice", w)
		}
		seenRoot[w] = true
	}
	if fw := f.Firewall; fw != nil {
		for i, a := range fw.Allow {
			ap := fmt.Sprintf("%s.firewall.allow[%d]", fp, i)
			if a == nil {
				continue
			}
			if len(a.TCP) == 0 && len(a.UDP) == 0 {
				v.errorf(ap, "an allow needs tcp: or udp: ports")
			}
			if a.From != nil && len(a.From) == 0 {
				v.errorf(ap+".from", "empty; leave from: out to allow any source, or list sources")
			}
		}
	}
	if pw := f.Power; pw != nil {
		pp := fp + ".power"
		if pw.Off && pw.On == "" {
			v.errorf(pp, "power off needs on: manual, wol or ipmi, so restore knows how the host comes back")
		}
		if pw.On == "manual" && pw.Off && pw.Contact == "" {
			v.errorf(pp, "on: manual needs contact: (who switches it on, e.g. \"IT desk, ext. 1234\")")
		}
		if pw.On == "wol" {
			if pw.MAC == "" {
				v.errorf(pp, "on: wol needs mac: (the host's MAC address)")
			} else if hw, err := net.ParseMAC(pw.MAC); err != nil || len(hw) != 6 {
				v.errorf(pp+".mac", "%q is not a MAC address like 52:54:00:12:34:56", clip(pw.MAC))
			}
		}
		if pw.On == "ipmi" {
			if pw.IPMIAddress == "" || pw.IPMIUser == "" || (pw.IPMIPasswordEnv == "" && pw.IPMIPasswordFile == "") {
				v.errorf(pp, "on: ipmi needs ipmi_address, ipmi_user and ipmi_password_env or ipmi_password_file")
			}
		}
		v.address(pw.IPMIAddress, pp+".ipmi_address")
		v.envName(pw.IPMIPasswordEnv, pp+".ipmi_password_env")
		v.fileExists(pw.IPMIPasswordFile, pp+".ipmi_password_file")
		if pw.IPMIPasswordEnv != "" && pw.IPMIPasswordFile != "" {
			v.errorf(pp+".ipmi_password_file", "set ipmi_password_env or ipmi_password_file, not both")
		}
	}
	if hk := f.Hooks; hk != nil {
		for i, c := range hk.Before {
			if strings.TrimSpace(c) == "" {
				v.errorf(fmt.Sprintf("%s.hooks.before[%d]", fp, i), "empty command")
			}
		}
		for i, c := range hk.After {
			if strings.TrimSpace(c) == "" {
				v.errorf(fmt.Sprintf("%s.hooks.after[%d]", fp, i), "empty command")
			}
		}
	}
}

func (v *validator) backupSource(s *BackupSource, sp string) {
	var kinds []string
	if s.Files != nil {
		kinds = append(kinds, "files")
	}
	if s.Disk != "" {
		kinds = append(kinds, "disk")
	}
	if s.Postgres != nil {
		kinds = append(kinds, "postgres")
	}
	if s.MySQL != nil {
		kinds = append(kinds, "mysql")
	}
	switch {
	case len(kinds) == 0:
		v.errorf(sp, "a backup source needs one of files:, disk:, postgres: or mysql:")
	case len(kinds) > 1:
		v.errorf(sp, "a backup source is one of files:, disk:, postgres: or mysql:, not %s; make each its own list item", strings.Join(kinds, " and "))
	}
	if s.Exclude != nil && s.Files == nil {
		v.errorf(sp+".exclude", "exclude applies to files: only")
	}
	if s.Freeze && s.Disk == "" {
		v.errorf(sp+".freeze", "freeze applies to disk: only")
	}
	if s.BlockSize != 0 && s.Disk == "" {
		v.errorf(sp+".block_size", "block_size applies to disk: only")
	}
	if s.Files != nil && len(s.Files) == 0 {
		v.errorf(sp+".files", "empty; list the paths to back up")
	}
	for i, f := range s.Files {
		if !path.IsAbs(f) {
			v.errorf(fmt.Sprintf("%s.files[%d]", sp, i), "%q: want an absolute path", clip(f))
		}
	}
	if s.Disk != "" && !strings.HasPrefix(s.Disk, "/dev/") {
		v.errorf(sp+".disk", "%q: want a block device path like /dev/vda", clip(s.Disk))
	}
	if s.BlockSize != 0 && s.BlockSize < 1<<20 {
		v.errorf(sp+".block_size", "at least 1MiB (smaller blocks make disk images slow and the index huge)")
	}
	if pg := s.Postgres; pg != nil {
		if pg.All && len(pg.Databases) > 0 {
			v.errorf(sp+".postgres", "set databases: or all: true, not both")
		}
		if !pg.All && len(pg.Databases) == 0 && !pg.Globals {
			v.errorf(sp+".postgres", "nothing to dump: list databases:, or set all: true or globals: true")
		}
		v.databaseNames(sp+".postgres", pg.Databases, false)
		if pg.Compress != nil && (*pg.Compress < 0 || *pg.Compress > 9) {
			v.errorf(sp+".postgres.compress", "%d: want pg_dump's level, 0 (none: the repository compresses) to 9", *pg.Compress)
		}
		if pg.User != "" && !names.OSUser(pg.User) {
			v.errorf(sp+".postgres.user", "%q: want an OS user name (letters, digits, '_', '-', '.'; not starting with '-')", clip(pg.User))
		}
	}
	if my := s.MySQL; my != nil {
		if my.All && len(my.Databases) > 0 {
			v.errorf(sp+".mysql", "set databases: or all: true, not both")
		}
		if !my.All && len(my.Databases) == 0 {
			v.errorf(sp+".mysql", "nothing to dump: list databases: or set all: true")
		}
		v.databaseNames(sp+".mysql", my.Databases, true)
	}
}

// databaseNames refuses names no dump tool can be given safely (the rule
// backup/dbdump applies on the host: internal/names).
func (v *validator) databaseNames(sp string, dbs []string, mysql bool) {
	for i, n := range dbs {
		switch p := names.DatabaseProblem(n, mysql); {
		case p == "":
		case n == "":
			v.errorf(fmt.Sprintf("%s.databases[%d]", sp, i), "%s", p)
		default:
			v.errorf(fmt.Sprintf("%s.databases[%d]", sp, i), "%q: %s", clip(n), p)
		}
	}
}

// validUnit accepts systemd unit names and SysV script names.
func validUnit(u string) bool {
	if u == "" || len(u) > 255 || strings.HasPrefix(u, "-") {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@:\\", r)) {
			return false
		}
	}
	return true
}

func sortedGroupNames(m map[string]*HostFields) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
