package integrity

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/exitcode"
)

// Class is how a difference is judged.
type Class string

const (
	// Indicator: a sign of compromise; the host is not reopened.
	Indicator Class = "indicator"
	// Drift: a change someone must look at (a package upgrade, a changed
	// config), not by itself a sign of compromise.
	Drift Class = "drift"
	// Churn: what a running system changes by itself (logs that grew or
	// rotated, caches, journals); listed, never alarming.
	Churn Class = "churn"
)

// Finding is one difference, naming the file, process or account.
type Finding struct {
	Class   Class     `json:"class"`
	Kind    string    `json:"kind"`   // e.g. new-uid0-account, changed-binary, new-listener
	Object  string    `json:"object"` // the file, process, account or socket
	Detail  string    `json:"detail"`
	Package string    `json:"package,omitempty"`
	Time    time.Time `json:"time,omitzero"` // when it happened, as far as the host tells (mtime, log line, process start)
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s %s: %s", f.Kind, f.Object, f.Detail)
	if f.Package != "" {
		s += " (package " + f.Package + ")"
	}
	return s
}

// Result is a check of one host against its baseline.
type Result struct {
	Host     string    `json:"host"`
	Baseline time.Time `json:"baseline"`
	Checked  time.Time `json:"checked"`
	Findings []Finding `json:"findings"`
	Problems []Problem `json:"problems,omitempty"`
	Took     string    `json:"took,omitempty"`
}

// Count returns the number of findings of a class.
func (r *Result) Count(c Class) int {
	n := 0
	for _, f := range r.Findings {
		if f.Class == c {
			n++
		}
	}
	return n
}

// Of returns the findings of a class, in order.
func (r *Result) Of(c Class) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Class == c {
			out = append(out, f)
		}
	}
	return out
}

// Verdict is the one-line outcome. It never says "clean": the check ran
// on the host's own kernel, which a rootkit may have changed.
func (r *Result) Verdict() string {
	switch {
	case r.Count(Indicator) > 0:
		return fmt.Sprintf("%d compromise indicator(s) found", r.Count(Indicator))
	case r.Count(Drift) > 0:
		return fmt.Sprintf("no indicators found; %d drift finding(s) to review", r.Count(Drift))
	}
	return "no indicators found"
}

// ExitCode is the shared exit code for this result: 5 indicators, 4 drift
// only, 0 otherwise.
func (r *Result) ExitCode() int {
	switch {
	case r.Count(Indicator) > 0:
		return exitcode.Compromise
	case r.Count(Drift) > 0:
		return exitcode.Drift
	}
	return exitcode.OK
}

// FirstIndicator returns the earliest time an indicator carries, or zero.
func (r *Result) FirstIndicator() time.Time {
	var t time.Time
	for _, f := range r.Findings {
		if f.Class == Indicator && !f.Time.IsZero() && (t.IsZero() || f.Time.Before(t)) {
			t = f.Time
		}
	}
	return t
}

// ErrFormat is returned for a baseline of another format version.
var ErrFormat = fmt.Errorf("baseline format is not %d", FormatVersion)

// Compare judges now against base. Every difference becomes a finding;
// live facts (processes, logins, cross-view) are judged by themselves.
func Compare(base, now *State) (*Result, error) {
	if base.Format != FormatVersion {
		return nil, fmt.Errorf("baseline of %s taken %s: format %d: %w", base.Host, base.Taken.Format(time.RFC3339), base.Format, ErrFormat)
	}
	c := &comparer{base: base, now: now, r: &Result{Host: now.Host, Baseline: base.Taken, Checked: now.Taken, Problems: now.Errors, Took: now.Took}}
	c.packages()
	c.accounts()
	c.keys()
	c.files()
	c.special()
	c.listeners()
	c.modules()
	c.logs()
	c.tmpExecs()
	c.processes()
	c.logins()
	c.crossView()
	sort.SliceStable(c.r.Findings, func(i, j int) bool {
		a, b := c.r.Findings[i], c.r.Findings[j]
		if a.Class != b.Class {
			return classRank[a.Class] < classRank[b.Class]
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Object < b.Object
	})
	return c.r, nil
}

var classRank = map[Class]int{Indicator: 0, Drift: 1, Churn: 2}

type comparer struct {
	base, now *State
	r         *Result
	changed   map[string]string // package → "old → new" for packages changed in the window
}

func (c *comparer) add(f Finding) { c.r.Findings = append(c.r.Findings, f) }

func (c *comparer) packages() {
	c.changed = map[string]string{}
	if c.base.Packages == nil || c.now.Packages == nil {
		return
	}
	for name, v := range c.now.Packages {
		old, had := c.base.Packages[name]
		switch {
		case !had:
			c.changed[name] = "installed " + v
		case old != v:
			c.changed[name] = old + " → " + v
		}
	}
	for name, old := range c.base.Packages {
		if _, has := c.now.Packages[name]; !has {
			c.changed[name] = "removed (was " + old + ")"
		}
	}
	for name, what := range c.changed {
		if c.now.DpkgLogged != nil {
			if v, logged := c.now.DpkgLogged[name]; !logged || v != c.now.Packages[name] {
				// The database says it changed; dpkg did not write that
				// down. An edited database would "explain" a trojan.
				c.add(Finding{Class: Indicator, Kind: "package-db-edited", Object: name, Package: name,
					Detail: "dpkg's database says package " + what + ", but " + DpkgLog + " records no such change"})
				delete(c.changed, name)
				continue
			}
		}
		c.add(Finding{Class: Drift, Kind: "package-changed", Object: name, Detail: "package " + what, Package: name})
	}
}

// explained says whether a change to a file is put down to a package
// changed in the window.
func (c *comparer) explained(f File, old File) string {
	for _, p := range []string{f.Package, old.Package} {
		if p != "" {
			if _, ok := c.changed[p]; ok {
				return p
			}
		}
	}
	return ""
}

func (c *comparer) accounts() {
	old := map[string]Account{}
	for _, a := range c.base.Accounts {
		old[a.Name] = a
	}
	inGroup := groupsOf(c.now.Groups)
	for _, a := range c.now.Accounts {
		o, had := old[a.Name]
		switch {
		case a.UID == 0 && (!had || o.UID != 0):
			c.add(Finding{Class: Indicator, Kind: "new-uid0-account", Object: a.Name,
				Detail: fmt.Sprintf("account %s has uid 0 (shell %s, home %s)", a.Name, a.Shell, a.Home)})
		case !had && loginShell(a.Shell):
			c.add(Finding{Class: Indicator, Kind: "new-account", Object: a.Name,
				Detail: fmt.Sprintf("new account %s (uid %d) with login shell %s", a.Name, a.UID, a.Shell)})
		case !had:
			c.add(Finding{Class: Drift, Kind: "new-account", Object: a.Name,
				Detail: fmt.Sprintf("new account %s (uid %d) without a login shell", a.Name, a.UID)})
		case !loginShell(o.Shell) && loginShell(a.Shell):
			c.add(Finding{Class: Indicator, Kind: "account-shell", Object: a.Name,
				Detail: fmt.Sprintf("account %s can log in now: shell %s → %s", a.Name, o.Shell, a.Shell)})
		case o != a:
			c.add(Finding{Class: Drift, Kind: "account-changed", Object: a.Name,
				Detail: fmt.Sprintf("account %s changed: uid %d→%d home %s→%s shell %s→%s", a.Name, o.UID, a.UID, o.Home, a.Home, o.Shell, a.Shell)})
		}
		if had && c.base.Shadow != nil && c.now.Shadow != nil && c.base.Shadow[a.Name] != c.now.Shadow[a.Name] {
			cl := Drift
			if a.UID == 0 || privilegedMember(inGroup[a.Name]) {
				cl = Indicator
			}
			c.add(Finding{Class: cl, Kind: "password-changed", Object: a.Name,
				Detail: fmt.Sprintf("the password of %s changed", a.Name)})
		}
		delete(old, a.Name)
	}
	for name := range old {
		c.add(Finding{Class: Drift, Kind: "account-removed", Object: name, Detail: "account " + name + " was removed"})
	}
	oldG := map[string]Group{}
	for _, g := range c.base.Groups {
		oldG[g.Name] = g
	}
	for _, g := range c.now.Groups {
		o, had := oldG[g.Name]
		if g.GID == 0 && had && o.GID != 0 || g.GID == 0 && !had {
			c.add(Finding{Class: Indicator, Kind: "new-gid0-group", Object: g.Name, Detail: "group " + g.Name + " has gid 0"})
		}
		was := map[string]bool{}
		for _, m := range o.Members {
			was[m] = true
		}
		for _, m := range g.Members {
			if was[m] {
				continue
			}
			cl := Drift
			if privilegedGroups[g.Name] {
				cl = Indicator
			}
			c.add(Finding{Class: cl, Kind: "group-member", Object: m, Detail: fmt.Sprintf("%s was added to group %s", m, g.Name)})
		}
	}
}

func groupsOf(gs []Group) map[string][]string {
	m := map[string][]string{}
	for _, g := range gs {
		for _, u := range g.Members {
			m[u] = append(m[u], g.Name)
		}
	}
	return m
}

func privilegedMember(groups []string) bool {
	for _, g := range groups {
		if privilegedGroups[g] {
			return true
		}
	}
	return false
}

func (c *comparer) keys() {
	type k struct{ file, sum string }
	old := map[k]AuthKey{}
	for _, a := range c.base.Keys {
		old[k{a.File, a.SHA256}] = a
	}
	for _, a := range c.now.Keys {
		o, had := old[k{a.File, a.SHA256}]
		switch {
		case !had:
			c.add(Finding{Class: Indicator, Kind: "new-authorized-key", Object: a.File, Time: c.mtime(a.File),
				Detail: fmt.Sprintf("new %s key %s for %s (comment %q)", a.Type, a.SHA256, a.User, a.Comment)})
		case o.Options != a.Options:
			c.add(Finding{Class: Indicator, Kind: "changed-authorized-key", Object: a.File, Time: c.mtime(a.File),
				Detail: fmt.Sprintf("key %s for %s: options %q → %q", a.SHA256, a.User, o.Options, a.Options)})
		}
		delete(old, k{a.File, a.SHA256})
	}
	for _, a := range old {
		c.add(Finding{Class: Drift, Kind: "removed-authorized-key", Object: a.File,
			Detail: fmt.Sprintf("%s key %s of %s removed", a.Type, a.SHA256, a.User)})
	}
}

func (c *comparer) mtime(p string) time.Time { return c.now.Files[p].MTime }

// isKeysFile reports a file the keys comparison already covers.
func (c *comparer) isKeysFile(p string) bool {
	for _, ks := range [][]AuthKey{c.base.Keys, c.now.Keys} {
		for _, k := range ks {
			if k.File == p {
				return true
			}
		}
	}
	return strings.HasSuffix(p, "/.ssh/authorized_keys") || strings.HasSuffix(p, "/.ssh/authorized_keys2")
}

func (c *comparer) files() {
	web := c.now.WebRoot
	if len(web) == 0 {
		web = c.base.WebRoot
	}
	paths := map[string]bool{}
	for p := range c.base.Files {
		paths[p] = true
	}
	for p := range c.now.Files {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		o, had := c.base.Files[p]
		f, has := c.now.Files[p]
		if had && has && sameFile(o, f) {
			continue
		}
		if c.isKeysFile(p) {
			continue
		}
		c.file(p, Classify(p, web), o, had, f, has)
	}
}

func sameFile(a, b File) bool {
	return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID && a.SHA256 == b.SHA256 && a.Link == b.Link
}

func describe(o File, had bool, f File, has bool) (kind, detail string) {
	switch {
	case !had:
		if f.Link != "" {
			return "new", "new link → " + f.Link
		}
		return "new", fmt.Sprintf("new file (%s, uid %d, %d bytes)", f.Mode, f.UID, f.Size)
	case !has:
		return "removed", "removed"
	case o.Link != f.Link:
		return "changed", fmt.Sprintf("link %s → %s", o.Link, f.Link)
	case o.SHA256 != f.SHA256:
		return "changed", fmt.Sprintf("content changed (sha256 %s → %s)", short(o.SHA256), short(f.SHA256))
	}
	return "changed", fmt.Sprintf("owner or mode changed (%s uid %d gid %d → %s uid %d gid %d)", o.Mode, o.UID, o.GID, f.Mode, f.UID, f.GID)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (c *comparer) file(p string, cat Category, o File, had bool, f File, has bool) {
	what, detail := describe(o, had, f, has)
	t := f.MTime
	if !has {
		t = time.Time{}
	}
	fd := Finding{Object: p, Detail: detail, Time: t}
	if pkg := c.explained(f, o); pkg != "" {
		fd.Class, fd.Kind, fd.Package = Drift, what+"-"+string(cat)+"-by-package", pkg
		fd.Detail += "; package " + pkg + " " + c.changed[pkg]
		c.add(fd)
		return
	}
	switch cat {
	case CatAccounts:
		return // judged per account
	case CatWeb:
		switch {
		case has && f.Webshell != "":
			fd.Class, fd.Kind = Indicator, "webshell"
			fd.Detail += "; matches " + f.Webshell
		default:
			fd.Class, fd.Kind = Drift, what+"-web-file"
		}
	case CatPreload:
		fd.Class, fd.Kind = Indicator, "ld.so.preload"
		if has && f.Size == 0 && !had {
			fd.Class = Drift // an empty preload file preloads nothing
		}
	case CatBinary:
		switch {
		case !had && strings.Contains(p, "/__pycache__/"):
			fd.Class, fd.Kind = Churn, "python-bytecode"
			fd.Detail = "new bytecode cache"
		case !has:
			fd.Class, fd.Kind = Drift, "removed-binary"
		case len(c.changed) > 0 && f.Package == "" && had && f.Mode&0o111 == 0 && o.Mode == f.Mode:
			// Package triggers rebuild caches nobody ships (locale
			// archive, loader caches): data, never an executable.
			fd.Class, fd.Kind = Drift, "changed-cache-during-upgrade"
			fd.Detail += "; not owned by a package, changed while " + changedList(c.changed) + " changed (a trigger's output?)"
		case !had:
			fd.Class, fd.Kind = Indicator, "new-system-file"
			if f.Package != "" {
				fd.Detail += "; dpkg lists it under " + f.Package + ", which did not change"
			} else {
				fd.Detail += "; no package ships it"
			}
		default:
			fd.Class, fd.Kind = Indicator, "changed-binary"
			if f.Package != "" {
				fd.Detail += fmt.Sprintf("; package %s did not change (%s)", f.Package, c.now.Packages[f.Package])
			} else {
				fd.Detail += "; no package ships it"
			}
		}
	case CatEtc:
		if why, ok := etcChurn[p]; ok {
			fd.Class, fd.Kind, fd.Detail = Churn, what+"-etc", fd.Detail+"; "+why
		} else if p == "/etc/ld.so.cache" && len(c.changed) > 0 {
			fd.Class, fd.Kind = Churn, "ld.so.cache"
		} else {
			fd.Class, fd.Kind = Drift, what+"-etc"
		}
	default:
		if persistence[cat] {
			if !has && cat != CatPAM && cat != CatSudoers && cat != CatPreload {
				fd.Class, fd.Kind = Drift, "removed-"+string(cat)
			} else {
				fd.Class, fd.Kind = Indicator, "persistence-"+string(cat)
				if cat == CatSudoers || cat == CatPAM || cat == CatSSHD || cat == CatLdConf {
					fd.Kind = string(cat) + "-changed"
				}
			}
		} else {
			fd.Class, fd.Kind = Drift, what+"-"+string(cat)
		}
	}
	c.add(fd)
}

func changedList(m map[string]string) string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

func (c *comparer) special() {
	for p, s := range c.now.Special {
		o, had := c.base.Special[p]
		if had && o == s {
			continue
		}
		f := c.now.Files[p]
		if pkg := c.explained(f, c.base.Files[p]); pkg != "" {
			c.add(Finding{Class: Drift, Kind: "special-file-by-package", Object: p, Package: pkg,
				Detail: fmt.Sprintf("%s (caps %q); package %s %s", s.Mode, s.Caps, pkg, c.changed[pkg])})
			continue
		}
		what := "new"
		if had {
			what = fmt.Sprintf("changed from %s caps %q", o.Mode, o.Caps)
		}
		kind := "new-suid"
		switch {
		case s.Caps != "" && (!had || o.Caps != s.Caps):
			kind = "new-file-capability"
		case s.Mode&fs.ModeSetuid == 0:
			kind = "new-sgid"
		}
		c.add(Finding{Class: Indicator, Kind: kind, Object: p, Time: f.MTime,
			Detail: fmt.Sprintf("%s %s file owned by uid %d (caps %q)", what, s.Mode, s.UID, s.Caps)})
	}
	for p := range c.base.Special {
		if _, ok := c.now.Special[p]; !ok {
			c.add(Finding{Class: Drift, Kind: "special-gone", Object: p, Detail: "no longer SUID/SGID or capable (or removed)"})
		}
	}
}

func (c *comparer) listeners() {
	old := map[string]Listener{}
	for _, l := range c.base.Listeners {
		old[l.key()] = l
	}
	for _, l := range c.now.Listeners {
		o, had := old[l.key()]
		delete(old, l.key())
		exes := strings.Join(l.Exes, ", ")
		if exes == "" {
			exes = "no owning process found"
		}
		switch {
		case !had && c.ephemeralAgain(l):
			c.add(Finding{Class: Churn, Kind: "listener-ephemeral", Object: l.key(),
				Detail: fmt.Sprintf("UDP port from the ephemeral range, held by %s, which held one in the baseline too (a client socket: DHCP, NTP, resolver)", exes)})
		case !had:
			c.add(Finding{Class: Indicator, Kind: "new-listener", Object: l.key(), Time: c.procStart(l.PIDs),
				Detail: fmt.Sprintf("new listening socket, held by %s (pids %v)", exes, l.PIDs)})
		case !sameExes(o.Exes, l.Exes) && len(o.Exes) > 0 && len(l.Exes) > 0:
			c.add(Finding{Class: Indicator, Kind: "listener-owner-changed", Object: l.key(), Time: c.procStart(l.PIDs),
				Detail: fmt.Sprintf("now held by %s (was %s)", exes, strings.Join(o.Exes, ", "))})
		}
	}
	for k, o := range old {
		c.add(Finding{Class: Churn, Kind: "listener-gone", Object: k, Detail: "no longer listening (was " + strings.Join(o.Exes, ", ") + "); a stopped service"})
	}
}

// ephemeralAgain reports an unconnected UDP socket on a port of the
// kernel's ephemeral range whose executables held such a socket in the
// baseline as well: clients (dhclient, chronyd) bind one at a random port
// each start, which is not a new service.
func (c *comparer) ephemeralAgain(l Listener) bool {
	r := c.now.Ephemeral
	if !strings.HasPrefix(l.Proto, "udp") || len(l.Exes) == 0 || r[0] == 0 || int(l.Port) < r[0] || int(l.Port) > r[1] {
		return false
	}
	for _, o := range c.base.Listeners {
		if o.Proto == l.Proto && int(o.Port) >= r[0] && int(o.Port) <= r[1] && sameExes(o.Exes, l.Exes) {
			return true
		}
	}
	return false
}

func sameExes(a, b []string) bool {
	norm := func(s []string) string {
		var o []string
		for _, x := range s {
			o = append(o, strings.TrimSuffix(x, " (deleted)"))
		}
		sort.Strings(o)
		return strings.Join(o, "\n")
	}
	return norm(a) == norm(b)
}

func (c *comparer) procStart(pids []int) time.Time {
	for _, p := range c.now.Processes {
		for _, pid := range pids {
			if p.PID == pid {
				return p.Start
			}
		}
	}
	return time.Time{}
}

func (c *comparer) modules() {
	old := map[string]bool{}
	for _, m := range c.base.Modules {
		old[m.Name] = true
	}
	for _, m := range c.now.Modules {
		if old[m.Name] {
			continue
		}
		switch {
		case netfilterModule(m.Name) && m.Taint == "":
			c.add(Finding{Class: Churn, Kind: "module-autoloaded", Object: m.Name, Detail: "firewall module loaded on demand by the kernel"})
		default:
			c.add(Finding{Class: Indicator, Kind: "new-kernel-module", Object: m.Name, Detail: fmt.Sprintf("kernel module %s loaded since the baseline (taint flags %q)", m.Name, m.Taint)})
		}
	}
	if added := c.now.Taint &^ c.base.Taint; added != 0 {
		c.add(Finding{Class: Indicator, Kind: "kernel-taint", Object: "kernel",
			Detail: fmt.Sprintf("kernel taint %d → %d (new flags %s)", c.base.Taint, c.now.Taint, taintFlags(added))})
	}
}

// taintFlags names the bits of /proc/sys/kernel/tainted (kernel docs,
// admin-guide/tainted-kernels).
func taintFlags(v uint64) string {
	const letters = "PFSRMBUDAWCIOELKXTN"
	var out []string
	for i := 0; i < len(letters); i++ {
		if v&(1<<i) != 0 {
			out = append(out, string(letters[i]))
		}
	}
	return strings.Join(out, "")
}

// churnLogs are logs rewritten in place by design.
func churnLog(p string) string {
	switch {
	case strings.HasPrefix(p, "/var/log/journal/"):
		return "systemd journal file"
	case p == "/var/log/lastlog" || p == "/var/log/faillog" || p == "/var/log/tallylog":
		return "per-user database rewritten in place"
	case isArchive(filepath.Base(p)):
		return "rotated archive"
	}
	return ""
}

func (c *comparer) logs() {
	for p, o := range c.base.Logs {
		l, ok := c.now.Logs[p]
		if !ok {
			continue // the agent was not asked about it
		}
		why := churnLog(p)
		switch {
		case l.Prefix == "grew":
			if l.Size > o.Size {
				c.add(Finding{Class: Churn, Kind: "log-grew", Object: p, Detail: fmt.Sprintf("grew %d → %d bytes, old content unchanged", o.Size, l.Size)})
			}
		case strings.HasPrefix(l.Prefix, "rotated:"):
			c.add(Finding{Class: Churn, Kind: "log-rotated", Object: p, Detail: "rotated to " + strings.TrimPrefix(l.Prefix, "rotated:")})
		case why != "":
			c.add(Finding{Class: Churn, Kind: "log-rewritten", Object: p, Detail: why})
		case l.Gone:
			c.add(Finding{Class: Indicator, Kind: "log-removed", Object: p,
				Detail: fmt.Sprintf("log removed (was %d bytes) and not found rotated beside it", o.Size)})
		case l.Size < o.Size:
			c.add(Finding{Class: Indicator, Kind: "log-truncated", Object: p,
				Detail: fmt.Sprintf("log shrank %d → %d bytes and its old content is not found rotated beside it", o.Size, l.Size)})
		default:
			c.add(Finding{Class: Indicator, Kind: "log-rewritten", Object: p,
				Detail: fmt.Sprintf("the log's first %d bytes changed: someone edited it", o.Size)})
		}
	}
}

func (c *comparer) tmpExecs() {
	for p, f := range c.now.TmpExecs {
		if o, had := c.base.TmpExecs[p]; had && o.SHA256 == f.SHA256 {
			continue
		}
		c.add(Finding{Class: Indicator, Kind: "executable-in-tmp", Object: p, Time: f.MTime,
			Detail: fmt.Sprintf("executable %s, %d bytes, sha256 %s, in a world-writable directory", f.Mode, f.Size, short(f.SHA256))})
	}
}

func (c *comparer) processes() {
	for _, p := range c.now.Processes {
		why := suspiciousExe(p.Exe)
		if why == "" {
			continue
		}
		obj := fmt.Sprintf("pid %d (%s)", p.PID, p.Comm)
		detail := fmt.Sprintf("runs %s: %s, uid %d, cmdline %q", why, p.Exe, p.UID, clip(p.Cmdline, 200))
		if path, ok := strings.CutSuffix(p.Exe, " (deleted)"); ok {
			if f, in := c.base.Files[path]; in {
				if pkg := c.explained(c.now.Files[path], f); pkg != "" {
					c.add(Finding{Class: Drift, Kind: "process-old-binary", Object: obj, Package: pkg, Time: p.Start,
						Detail: detail + "; package " + pkg + " was upgraded under it (restart it)"})
					continue
				}
			}
		}
		c.add(Finding{Class: Indicator, Kind: "suspicious-process", Object: obj, Time: p.Start, Detail: detail})
	}
}

// BurstThreshold is how many failures from one source before a success
// make that success an indicator; BurstWindow bounds how far back they
// count.
const (
	BurstThreshold = 5
	BurstWindow    = 30 * time.Minute
)

func (c *comparer) logins() {
	ls := append([]AuthLine(nil), c.now.Logins...)
	sort.SliceStable(ls, func(i, j int) bool { return ls[i].Time.Before(ls[j].Time) })
	for i, l := range ls {
		if !l.OK {
			continue
		}
		n := 0
		users := map[string]bool{}
		for _, f := range ls[:i] {
			if !f.OK && f.Source == l.Source && l.Time.Sub(f.Time) <= BurstWindow {
				n++
				users[f.User] = true
			}
		}
		if n >= BurstThreshold {
			c.add(Finding{Class: Indicator, Kind: "login-after-failures", Object: l.User + "@" + l.Source, Time: l.Time,
				Detail: fmt.Sprintf("%s login as %s from %s at %s after %d failures from there (%s)", l.Method, l.User, l.Source,
					l.Time.Format(time.RFC3339), n, l.File)})
		}
	}
}

func (c *comparer) crossView() {
	cv := c.now.CrossView
	if cv == nil {
		return
	}
	byPID := map[int]Process{}
	for _, p := range c.now.Processes {
		byPID[p.PID] = p
	}
	for _, pid := range cv.HiddenPIDs {
		p := byPID[pid]
		c.add(Finding{Class: Indicator, Kind: "hidden-process", Object: fmt.Sprintf("pid %d (%s)", pid, p.Comm), Time: p.Start,
			Detail: fmt.Sprintf("in /proc but not in the output of the host's %s: exe %s, cmdline %q", cv.PS, p.Exe, clip(p.Cmdline, 200))})
	}
	for _, s := range cv.HiddenSockets {
		c.add(Finding{Class: Indicator, Kind: "hidden-socket", Object: s,
			Detail: fmt.Sprintf("listening in /proc/net but not in the output of the host's %s", cv.SS)})
	}
	if cv.Note != "" {
		c.r.Problems = append(c.r.Problems, Problem{Collector: "cross-view", Error: cv.Note})
	}
}
