package plans

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Inventory is an Ansible INI inventory: hosts, groups of hosts, groups of
// groups (`[name:children]`) and variables (`[name:vars]` and `key=value`
// on host lines).
//
// A plan that names an inventory gets one plan host per inventory host:
// name as in the inventory, address from ansible_host (else the name),
// port and user from ansible_port and ansible_user; every group the host
// is in, directly or through `:children`, becomes one of its groups, so
// the plan's `groups:` entry of the same name applies to it. A plan
// `hosts:` entry with the same name as an inventory host is merged into
// it: its fields win and its `groups:` are applied after the inventory's.
// Other variables are kept in Vars but not used.
type Inventory struct {
	File   string
	Hosts  []*InventoryHost           // in order of first appearance
	Groups map[string]*InventoryGroup // by name; "all" and "ungrouped" are implicit
}

// InventoryHost is one host of an inventory.
type InventoryHost struct {
	Name   string
	Vars   map[string]string // from the host's lines
	Groups []string          // groups listing it directly, in order
	Pos    Pos               // its first line
}

// InventoryGroup is one `[name]` group.
type InventoryGroup struct {
	Name     string
	Hosts    []string
	Children []string
	Vars     map[string]string
	Pos      Pos
	order    int
}

// maxInventoryHosts bounds range expansion (web[1:99999999] is a typo).
const maxInventoryHosts = 100000

// ParseINI reads an Ansible INI inventory. name is used in error
// positions. The error, if any, is an Errors listing every problem.
func ParseINI(name string, r io.Reader) (*Inventory, error) {
	p := &iniParser{inv: &Inventory{File: name, Groups: map[string]*InventoryGroup{}}, hosts: map[string]*InventoryHost{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	section, kind := "ungrouped", "hosts"
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' || text[0] == ';' {
			continue
		}
		at := Pos{File: name, Line: line, Col: 1 + strings.Index(sc.Text(), text)}
		if text[0] == '[' {
			section, kind = p.header(text, at)
			continue
		}
		if section == "" { // after a bad header: skip its lines
			continue
		}
		switch kind {
		case "hosts":
			p.hostLine(section, text, at)
		case "children":
			p.childLine(section, text, at)
		case "vars":
			p.varLine(section, text, at)
		}
	}
	if err := sc.Err(); err != nil {
		p.errorf(Pos{File: name, Line: line + 1, Col: 1}, "inventory", "cannot read: %v", err)
	}
	p.checkCycles()
	if len(p.errs) > 0 {
		p.errs.Sort()
		return p.inv, p.errs
	}
	return p.inv, nil
}

type iniParser struct {
	inv   *Inventory
	hosts map[string]*InventoryHost
	errs  Errors
	total int
}

func (p *iniParser) errorf(at Pos, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: at, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *iniParser) group(name string, at Pos) *InventoryGroup {
	g := p.inv.Groups[name]
	if g == nil {
		g = &InventoryGroup{Name: name, Vars: map[string]string{}, Pos: at, order: len(p.inv.Groups)}
		p.inv.Groups[name] = g
	}
	return g
}

func (p *iniParser) header(text string, at Pos) (section, kind string) {
	if !strings.HasSuffix(text, "]") {
		p.errorf(at, "inventory", "section header %q has no closing ]", clip(text))
		return "", ""
	}
	inner := safeKey(text[1 : len(text)-1])
	name, suffix, hasSuffix := strings.Cut(inner, ":")
	kind = "hosts"
	if hasSuffix {
		switch suffix {
		case "children", "vars":
			kind = suffix
		default:
			p.errorf(at, "["+inner+"]", "unknown section kind %q; want [%s], [%s:children] or [%s:vars]", suffix, name, name, name)
			return "", ""
		}
	}
	if !validGroupName(name) {
		p.errorf(at, "["+inner+"]", "group name %q must be letters, digits and _ (no spaces or dashes)", clip(name))
		return "", ""
	}
	p.group(name, at)
	return name, kind
}

// validGroupName follows Ansible's rule: a Python identifier.
func validGroupName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func (p *iniParser) hostLine(section, text string, at Pos) {
	path := "[" + section + "]"
	toks, err := splitINI(text)
	if err != "" {
		p.errorf(at, path, "%s", err)
		return
	}
	vars := map[string]string{}
	for _, t := range toks[1:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			p.errorf(at, path, "%q after the host name is not key=value", clip(t))
			return
		}
		vars[k] = v
	}
	if !p.checkVars(vars, at, path) {
		return
	}
	names, msg := expandRange(toks[0])
	if msg != "" {
		p.errorf(at, path, "%s", msg)
		return
	}
	if p.total += len(names); p.total > maxInventoryHosts {
		p.errorf(at, path, "more than %d hosts; is the range %q a typo?", maxInventoryHosts, clip(toks[0]))
		return
	}
	g := p.group(section, at)
	for _, n := range names {
		if !validName(n) {
			p.errorf(at, path, "host name %q may hold only letters, digits, '.', '-' and '_'", clip(n))
			continue
		}
		h := p.hosts[n]
		if h == nil {
			h = &InventoryHost{Name: n, Vars: map[string]string{}, Pos: at}
			p.hosts[n] = h
			p.inv.Hosts = append(p.inv.Hosts, h)
		}
		for k, v := range vars {
			h.Vars[k] = v
		}
		if !contains(h.Groups, section) {
			h.Groups = append(h.Groups, section)
			g.Hosts = append(g.Hosts, n)
		}
	}
}

func (p *iniParser) childLine(section, text string, at Pos) {
	path := "[" + section + ":children]"
	if !validGroupName(text) {
		p.errorf(at, path, "%q is not a group name (one per line under :children)", clip(text))
		return
	}
	if text == section {
		p.errorf(at, path, "group %s cannot be its own child", section)
		return
	}
	g := p.group(section, at)
	p.group(text, at)
	if !contains(g.Children, text) {
		g.Children = append(g.Children, text)
	}
}

func (p *iniParser) varLine(section, text string, at Pos) {
	path := "[" + section + ":vars]"
	k, v, ok := strings.Cut(text, "=")
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		p.errorf(at, path, "%q is not key=value", clip(text))
		return
	}
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	vars := map[string]string{k: v}
	if p.checkVars(vars, at, path) {
		p.group(section, at).Vars[k] = v
	}
}

// checkVars refuses the connection variables holiday uses when their
// values are unusable, and inline passwords.
func (p *iniParser) checkVars(vars map[string]string, at Pos, path string) bool {
	ok := true
	for _, k := range sortedKeys(vars) {
		v := vars[k]
		switch k {
		case "ansible_port", "ansible_ssh_port":
			if _, good := parsePort(v); !good {
				p.errorf(at, path, "%s=%s is not a port (1-65535)", k, clip(v))
				ok = false
			}
		case "ansible_host", "ansible_ssh_host", "ansible_user", "ansible_ssh_user":
			if v == "" {
				p.errorf(at, path, "%s is empty", k)
				ok = false
			}
		case "ansible_password", "ansible_ssh_pass", "ansible_become_password", "ansible_become_pass", "ansible_ssh_password":
			p.errorf(at, path, "%s: literal secrets are not allowed; holiday logs in with the plan's ssh identity", k)
			ok = false
		}
	}
	return ok
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitINI splits a host line on blanks, keeping quoted values whole.
func splitINI(s string) ([]string, string) {
	var toks []string
	var cur strings.Builder
	quote := byte(0)
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == '#' && !in:
			i = len(s) // comment after the host
		case c == ' ' || c == '\t':
			if in {
				toks = append(toks, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, "unterminated quote"
	}
	if in {
		toks = append(toks, cur.String())
	}
	if len(toks) == 0 {
		return nil, "empty host line"
	}
	return toks, ""
}

// expandRange expands Ansible host ranges: web[01:03].example.com,
// db[a:c], node[1:10:2]; several ranges in one name multiply.
func expandRange(pat string) ([]string, string) {
	open := strings.IndexByte(pat, '[')
	if open < 0 {
		if strings.IndexByte(pat, ']') >= 0 {
			return nil, fmt.Sprintf("host %q has ] without [", clip(pat))
		}
		return []string{pat}, ""
	}
	end := strings.IndexByte(pat[open:], ']')
	if end < 0 {
		return nil, fmt.Sprintf("host range %q has no closing ]", clip(pat))
	}
	end += open
	head, spec, tail := pat[:open], pat[open+1:end], pat[end+1:]
	parts := strings.Split(spec, ":")
	bad := func(why string) ([]string, string) {
		return nil, fmt.Sprintf("bad host range %q: %s (want like web[01:03] or db[a:c])", clip(pat), why)
	}
	if len(parts) < 2 || len(parts) > 3 {
		return bad("want [start:end] or [start:end:step]")
	}
	step := 1
	if len(parts) == 3 {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return bad("step must be a positive number")
		}
		step = n
	}
	var mids []string
	beg, fin := parts[0], parts[1]
	if a, err1 := strconv.Atoi(beg); err1 == nil {
		b, err2 := strconv.Atoi(fin)
		if err2 != nil || a < 0 {
			return bad("start and end must both be numbers or both letters")
		}
		if b < a {
			return bad("end before start")
		}
		if (b-a)/step > maxInventoryHosts {
			return bad("too many hosts")
		}
		width := 0
		if len(beg) > 1 && beg[0] == '0' {
			if len(beg) != len(fin) {
				return bad("zero-padded start and end must have the same width")
			}
			width = len(beg)
		}
		for i := a; i <= b; i += step {
			mids = append(mids, fmt.Sprintf("%0*d", width, i))
		}
	} else {
		if len(beg) != 1 || len(fin) != 1 || !isLetter(beg[0]) || !isLetter(fin[0]) {
			return bad("start and end must both be numbers or both single letters")
		}
		if fin[0] < beg[0] {
			return bad("end before start")
		}
		for c := int(beg[0]); c <= int(fin[0]); c += step {
			mids = append(mids, string(rune(c)))
		}
	}
	rest, msg := expandRange(tail)
	if msg != "" {
		return nil, msg
	}
	if len(mids)*len(rest) > maxInventoryHosts {
		return bad("too many hosts")
	}
	var out []string
	for _, m := range mids {
		for _, r := range rest {
			out = append(out, head+m+r)
		}
	}
	return out, ""
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *iniParser) checkCycles() {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			return false
		case 2:
			return true
		}
		state[n] = 1
		g := p.inv.Groups[n]
		for _, c := range g.Children {
			if !visit(c) {
				if state[n] == 1 {
					p.errorf(g.Pos, "["+n+":children]", "groups form a cycle through %s; a group cannot contain itself", c)
				}
				state[n] = 2
				return false
			}
		}
		state[n] = 2
		return true
	}
	for _, n := range p.groupNames() {
		visit(n)
	}
}

func (p *iniParser) groupNames() []string {
	names := make([]string, 0, len(p.inv.Groups))
	for n := range p.inv.Groups {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return p.inv.Groups[names[i]].order < p.inv.Groups[names[j]].order })
	return names
}

// GroupsOf returns every group host is in, directly or through
// `:children`, most general first (a parent before its children, then
// inventory order), which is also the order their variables apply in.
func (inv *Inventory) GroupsOf(host string) []string {
	parents := map[string][]string{}
	for _, g := range inv.Groups {
		for _, c := range g.Children {
			parents[c] = append(parents[c], g.Name)
		}
	}
	depth := map[string]int{}
	var walk func(g string, d int)
	walk = func(g string, d int) {
		if old, ok := depth[g]; ok && old >= d || d > len(inv.Groups) {
			return
		}
		depth[g] = d
		for _, p := range parents[g] {
			walk(p, d+1)
		}
	}
	for _, h := range inv.Hosts {
		if h.Name == host {
			for _, g := range h.Groups {
				walk(g, 0)
			}
		}
	}
	var out []string
	for g := range depth {
		if g != "ungrouped" {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if depth[a] != depth[b] {
			return depth[a] > depth[b]
		}
		return inv.Groups[a].order < inv.Groups[b].order
	})
	return out
}

// HostVars returns a host's variables: `[all:vars]`, then each group's
// vars in GroupsOf order, then the host's own (later wins).
func (inv *Inventory) HostVars(host string) map[string]string {
	vars := map[string]string{}
	if g := inv.Groups["all"]; g != nil {
		for k, v := range g.Vars {
			vars[k] = v
		}
	}
	for _, name := range inv.GroupsOf(host) {
		for k, v := range inv.Groups[name].Vars {
			vars[k] = v
		}
	}
	for _, h := range inv.Hosts {
		if h.Name == host {
			for k, v := range h.Vars {
				vars[k] = v
			}
		}
	}
	return vars
}
