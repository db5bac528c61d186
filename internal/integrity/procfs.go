package integrity

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/procnet"
)

// clockTicks is USER_HZ: 100 on every Linux architecture holiday builds
// for (the kernel exports times in /proc/PID/stat in these units).
const clockTicks = 100

func (c *collection) bootTime() time.Time {
	for _, l := range strings.Split(c.readString("/proc/stat"), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(s, 0).UTC()
			}
		}
	}
	return time.Time{}
}

func (c *collection) processes(ctx context.Context) error {
	pids, err := procnet.PIDs(c.root)
	if err != nil {
		return err
	}
	boot := c.bootTime()
	for _, pid := range pids {
		p, ok := c.process(pid, boot)
		if ok {
			c.st.Processes = append(c.st.Processes, p)
		}
	}
	return nil
}

// process reads one /proc/PID; ok is false when it is gone.
func (c *collection) process(pid int, boot time.Time) (Process, bool) {
	dir := c.path("/proc/" + strconv.Itoa(pid))
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return Process{}, false
	}
	p := Process{PID: pid}
	// pid (comm) state ppid … : comm may hold spaces and parentheses.
	s := string(stat)
	if i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')'); i >= 0 && j > i {
		p.Comm = s[i+1 : j]
		f := strings.Fields(s[j+1:])
		if len(f) > 19 {
			p.PPID, _ = strconv.Atoi(f[1])
			if ticks, err := strconv.ParseInt(f[19], 10, 64); err == nil && !boot.IsZero() {
				p.Start = boot.Add(time.Duration(ticks) * time.Second / clockTicks)
			}
		}
	}
	if st, err := os.ReadFile(dir + "/status"); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					p.UID, _ = strconv.Atoi(f[0])
				}
			}
		}
	}
	if cl, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
	}
	p.Exe, _ = os.Readlink(dir + "/exe")
	return p, true
}

func (c *collection) listeners(ctx context.Context) error {
	all, err := procnet.Read(c.root)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var ls []procnet.Socket
	for _, s := range all {
		if s.Listening() && s.Inode != "0" {
			ls = append(ls, s)
			want[s.Inode] = true
		}
	}
	owners := procnet.Owners(c.root, want)
	if f := strings.Fields(c.readString("/proc/sys/net/ipv4/ip_local_port_range")); len(f) == 2 {
		c.st.Ephemeral[0], _ = strconv.Atoi(f[0])
		c.st.Ephemeral[1], _ = strconv.Atoi(f[1])
	}
	seen := map[string]bool{}
	for _, s := range ls {
		l := Listener{Proto: s.Proto, Addr: s.Local.Addr().String(), Port: s.Local.Port(), PIDs: owners[s.Inode]}
		exes := map[string]bool{}
		for _, pid := range l.PIDs {
			if e, err := os.Readlink(c.path("/proc/" + strconv.Itoa(pid) + "/exe")); err == nil {
				exes[e] = true
			}
		}
		for e := range exes {
			l.Exes = append(l.Exes, e)
		}
		sort.Strings(l.Exes)
		k := l.key()
		if seen[k] {
			continue // SO_REUSEPORT: one listener per address
		}
		seen[k] = true
		c.st.Listeners = append(c.st.Listeners, l)
	}
	sort.Slice(c.st.Listeners, func(i, j int) bool { return c.st.Listeners[i].key() < c.st.Listeners[j].key() })
	return nil
}

func (l Listener) key() string {
	return fmt.Sprintf("%s %s", l.Proto, netip.AddrPortFrom(netip.MustParseAddr(l.Addr), l.Port))
}

func (c *collection) modules(ctx context.Context) error {
	t := strings.TrimSpace(c.readString("/proc/sys/kernel/tainted"))
	c.st.Taint, _ = strconv.ParseUint(t, 10, 64)
	b, err := os.ReadFile(c.path("/proc/modules"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil // a kernel without modules
		}
		return err
	}
	c.st.Modules = parseModules(b)
	return nil
}

// parseModules reads /proc/modules: "name size refs deps state addr [(OE)]".
func parseModules(b []byte) []Module {
	var out []Module
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		m := Module{Name: f[0]}
		if last := f[len(f)-1]; strings.HasPrefix(last, "(") {
			m.Taint = strings.Trim(last, "()")
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
