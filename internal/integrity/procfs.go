package integrity

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ: 100 on every Linux architecture holiday builds
// for (the kernel exports times in /proc/PID/stat in these units).
const clockTicks = 100

// pids lists the numeric entries of /proc.
func (c *collection) pids() ([]int, error) {
	ents, err := os.ReadDir(c.path("/proc"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out, nil
}

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
	pids, err := c.pids()
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

// Kernel socket states in /proc/net/* (include/net/tcp_states.h).
const (
	tcpListen = "0A"
	udpUnconn = "07"
)

type netSock struct {
	proto string
	local netip.AddrPort
	rem   netip.AddrPort
	state string
	inode string
}

// readProcNet reads the four socket tables. A missing table (no IPv6)
// is not an error.
func (c *collection) readProcNet() ([]netSock, error) {
	var all []netSock
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(c.path("/proc/net/" + proto))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		s, err := parseProcNet(proto, b)
		if err != nil {
			return nil, err
		}
		all = append(all, s...)
	}
	return all, nil
}

func parseProcNet(proto string, data []byte) ([]netSock, error) {
	var out []netSock
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		l, err := parseHexAddrPort(f[1])
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s: %w", proto, err)
		}
		r, err := parseHexAddrPort(f[2])
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s: %w", proto, err)
		}
		out = append(out, netSock{proto: proto, local: l, rem: r, state: f[3], inode: f[9]})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes the kernel's "0100007F:0016": the address as
// 32-bit words in host byte order (little-endian on amd64 and arm64), the
// port big-endian.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

func (s netSock) listening() bool {
	if strings.HasPrefix(s.proto, "tcp") {
		return s.state == tcpListen
	}
	return s.state == udpUnconn && (!s.rem.Addr().IsValid() || s.rem.Addr().IsUnspecified())
}

// socketOwners maps socket inodes to the PIDs holding them, from every
// /proc/PID/fd link.
func (c *collection) socketOwners(want map[string]bool) map[string][]int {
	owners := map[string][]int{}
	pids, _ := c.pids()
	for _, pid := range pids {
		dir := c.path("/proc/" + strconv.Itoa(pid) + "/fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(dir + "/" + fd.Name())
			if err != nil {
				continue
			}
			ino, ok := strings.CutPrefix(l, "socket:[")
			if !ok {
				continue
			}
			ino = strings.TrimSuffix(ino, "]")
			if want[ino] {
				if ps := owners[ino]; len(ps) == 0 || ps[len(ps)-1] != pid {
					owners[ino] = append(ps, pid)
				}
			}
		}
	}
	return owners
}

func (c *collection) listeners(ctx context.Context) error {
	all, err := c.readProcNet()
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var ls []netSock
	for _, s := range all {
		if s.listening() && s.inode != "0" {
			ls = append(ls, s)
			want[s.inode] = true
		}
	}
	owners := c.socketOwners(want)
	if f := strings.Fields(c.readString("/proc/sys/net/ipv4/ip_local_port_range")); len(f) == 2 {
		c.st.Ephemeral[0], _ = strconv.Atoi(f[0])
		c.st.Ephemeral[1], _ = strconv.Atoi(f[1])
	}
	seen := map[string]bool{}
	for _, s := range ls {
		l := Listener{Proto: s.proto, Addr: s.local.Addr().String(), Port: s.local.Port(), PIDs: owners[s.inode]}
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
