package plans

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
)

// Host is one host with its settings resolved: what every later step
// works from. See [HostFields] for the precedence rule.
type Host struct {
	Name string
	// Groups are the groups whose fields applied, in the order they did:
	// inventory groups (most general first), then the host entry's own.
	Groups []string
	// HostFields are resolved: Port, User and Risk are filled in from the
	// plan's ssh settings and defaults (22, normal); User stays empty when
	// neither the host nor ssh.user names one (then SSH's own default, the
	// operator's login name, applies). Backup is never nil on a plan that
	// loaded without errors.
	HostFields
	// Pos is where the host is defined: its plan entry, or its inventory
	// line when it has no entry.
	Pos Pos
	// Inventory holds the host's inventory variables, if it came from one.
	Inventory map[string]string

	path string            // hosts[name]
	src  map[string]string // yaml field name → path of the layer that set it
}

// Path is the host's field path, hosts[NAME].
func (h *Host) Path() string { return h.path }

// Source returns the path where a resolved field was set, e.g.
// "groups.web.stop" or "hosts[web1].firewall", or h.Path()+"."+field when
// nothing set it.
func (h *Host) Source(field string) string {
	if s, ok := h.src[field]; ok {
		return s + "." + field
	}
	return h.path + "." + field
}

// HasIPv6 reports whether the plan says the host has an IPv6 address.
func (h *Host) HasIPv6() bool {
	return h.Address6 != "" || isIPv6(h.Address)
}

// Hosts returns every host of the plan, resolved, high-risk hosts first
// and otherwise in the order they were defined (inventory hosts in
// inventory order, then plan-only hosts in plan order).
func (p *Plan) Hosts() []*Host { return p.resolved }

// Host returns the resolved host called name, or nil.
func (p *Plan) Host(name string) *Host {
	for _, h := range p.resolved {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// entryPath is the path of the i-th hosts: entry, labelled by its name
// as the decoder labels it.
func entryPath(p *Plan, i int) string {
	names := make([]string, len(p.HostEntries))
	for j, h := range p.HostEntries {
		if h != nil {
			names[j] = h.Name
		}
	}
	return "hosts[" + listLabel(names, i) + "]"
}

func devicePath(p *Plan, i int) string {
	names := make([]string, len(p.Devices))
	for j, d := range p.Devices {
		if d != nil {
			names[j] = d.Name
		}
	}
	return "devices[" + listLabel(names, i) + "]"
}

// listLabel mirrors decodeSlice: an item is labelled by its name unless
// the name is unusable or an earlier item already took it.
func listLabel(names []string, i int) string {
	used := map[string]bool{}
	for j := 0; j <= i; j++ {
		label := strconv.Itoa(j)
		if validName(names[j]) && !used[names[j]] {
			label = names[j]
		}
		used[label] = true
		if j == i {
			return label
		}
	}
	return strconv.Itoa(i)
}

var hostFieldNames = func() []field { return fieldsOf(reflect.TypeOf(HostFields{})) }()

// apply copies every field layer sets onto dst and records where it
// came from.
func apply(dst *Host, layer *HostFields, from string) {
	if layer == nil {
		return
	}
	src := reflect.ValueOf(layer).Elem()
	out := reflect.ValueOf(&dst.HostFields).Elem()
	for _, f := range hostFieldNames {
		fv := src.FieldByIndex(f.index)
		if fv.IsZero() {
			continue
		}
		out.FieldByIndex(f.index).Set(fv)
		dst.src[f.name] = from
	}
}

func (v *validator) resolve() {
	p := v.p
	p.resolved = nil
	inv := p.inv
	entries := map[string]int{} // name → index of its first hosts: entry
	for i, e := range p.HostEntries {
		if e == nil || e.Name == "" {
			continue
		}
		if first, dup := entries[e.Name]; dup {
			v.errorf(entryPath(p, i)+".name", "duplicate host %s (first at line %d); each host is listed once", e.Name, p.at(entryPath(p, first)).Line)
			continue
		}
		entries[e.Name] = i
	}
	for i, d := range p.Devices {
		if d == nil {
			continue
		}
		if j, clash := entries[d.Name]; clash {
			v.errorf(devicePath(p, i)+".name", "%s is also a host (line %d); hosts and devices need different names", d.Name, p.at(entryPath(p, j)).Line)
		}
	}

	knownGroup := func(g string) bool {
		if _, ok := p.Groups[g]; ok {
			return true
		}
		return inv != nil && inv.Groups[g] != nil
	}
	allGroups := func() []string {
		var names []string
		for g := range p.Groups {
			names = append(names, g)
		}
		if inv != nil {
			for g := range inv.Groups {
				names = append(names, g)
			}
		}
		return names
	}

	build := func(name string, ih *InventoryHost, ei int) *Host {
		h := &Host{Name: name, path: "hosts[" + name + "]", src: map[string]string{}}
		apply(h, p.Defaults, "defaults")
		if ih != nil {
			h.Pos = ih.Pos
			h.path = "hosts[" + name + "]"
			for _, g := range inv.GroupsOf(name) {
				h.Groups = append(h.Groups, g)
				apply(h, p.Groups[g], "groups."+g)
			}
		}
		var e *HostEntry
		if ei >= 0 {
			e = p.HostEntries[ei]
			ep := entryPath(p, ei)
			h.path = ep
			h.Pos = p.at(ep)
			for gi, g := range e.Groups {
				if !knownGroup(g) {
					msg := fmt.Sprintf("unknown group %q; groups come from groups: or the inventory", clip(g))
					if s := suggest(g, allGroups()); s != "" {
						msg += fmt.Sprintf(" (did you mean %s?)", s)
					}
					v.errorf(fmt.Sprintf("%s.groups[%d]", ep, gi), "%s", msg)
					continue
				}
				if !contains(h.Groups, g) {
					h.Groups = append(h.Groups, g)
				}
				apply(h, p.Groups[g], "groups."+g)
			}
		}
		if ih != nil {
			vars := inv.HostVars(name)
			h.Inventory = vars
			own := HostFields{Address: name}
			if a := first(vars, "ansible_host", "ansible_ssh_host"); a != "" {
				own.Address = a
			}
			if u := first(vars, "ansible_user", "ansible_ssh_user"); u != "" {
				own.User = u
			}
			if pt, ok := parsePort(first(vars, "ansible_port", "ansible_ssh_port")); ok {
				own.Port = int(pt)
			}
			apply(h, &own, "inventory")
		}
		if e != nil {
			apply(h, &e.HostFields, h.path)
		}
		// Fill in what nothing set.
		if h.Port == 0 {
			h.Port = 22
			if p.SSH != nil && p.SSH.Port != 0 {
				h.Port = p.SSH.Port
			}
		}
		if h.User == "" && p.SSH != nil {
			h.User = p.SSH.User
		}
		if h.Risk == "" {
			h.Risk = RiskNormal
		}
		if h.Reboot == "" {
			h.Reboot = "never"
		}
		if h.OnCompromise == "" {
			h.OnCompromise = OnCompromiseKeep
		}
		present := func(field string) bool { _, ok := p.pos[h.path+"."+field]; return ok }
		if h.Address == "" && !present("address") {
			v.errorf(h.path, "missing address; add address: (an IP address or host name)")
		}
		if h.Backup == nil && !present("backup") {
			v.missingBackup(h, "no backup: list what to back up (files, disk, postgres, mysql), or write `backup: none` to say this host has none")
		}
		return h
	}

	var hosts []*Host
	if inv != nil {
		for _, ih := range inv.Hosts {
			ei, ok := entries[ih.Name]
			if !ok {
				ei = -1
			}
			hosts = append(hosts, build(ih.Name, ih, ei))
		}
	}
	for i, e := range p.HostEntries {
		if e == nil || e.Name == "" || entries[e.Name] != i {
			continue
		}
		if inv != nil && inventoryHas(inv, e.Name) {
			continue
		}
		hosts = append(hosts, build(e.Name, nil, i))
	}
	sort.SliceStable(hosts, func(i, j int) bool { return hosts[i].Risk.rank() < hosts[j].Risk.rank() })
	p.resolved = hosts
}

// missingBackup reports a host without backup: at its definition.
func (v *validator) missingBackup(h *Host, msg string) {
	v.errs = append(v.errs, &Error{Pos: h.Pos, Path: h.path + ".backup", Msg: msg})
}

func inventoryHas(inv *Inventory, name string) bool {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return true
		}
	}
	return false
}

func first(vars map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := vars[k]; v != "" {
			return v
		}
	}
	return ""
}
