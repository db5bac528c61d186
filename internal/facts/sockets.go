package facts

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
)

// Socket is a listening socket (TCP LISTEN, or a bound unconnected UDP
// socket) with the processes that hold it.
type Socket struct {
	Proto string     `json:"proto"` // tcp, tcp6, udp, udp6 (the /proc/net file)
	Addr  netip.Addr `json:"addr"`
	Port  uint16     `json:"port"`
	Procs []Proc     `json:"procs,omitempty"`
}

// Flow is an established TCP connection to one of the host's listening
// ports: someone is using a service right now.
type Flow struct {
	Proto      string     `json:"proto"`
	Local      netip.Addr `json:"local"`
	LocalPort  uint16     `json:"local_port"`
	Remote     netip.Addr `json:"remote"`
	RemotePort uint16     `json:"remote_port"`
	Procs      []Proc     `json:"procs,omitempty"`
}

// Proc is a process holding a socket, from /proc/PID/fd.
type Proc struct {
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
}

// TCP states in /proc/net/tcp (include/net/tcp_states.h).
const (
	tcpEstablished = "01"
	tcpListen      = "0A"
	udpUnconn      = "07"
)

type procSock struct {
	proto  string
	local  netip.AddrPort
	remote netip.AddrPort
	state  string
	inode  string
}

// parseProcNet reads one /proc/net/{tcp,tcp6,udp,udp6} table.
func parseProcNet(proto string, data []byte) ([]procSock, error) {
	var out []procSock
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue // header
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
		out = append(out, procSock{proto: proto, local: l, remote: r, state: f[3], inode: f[9]})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes the kernel's "0100007F:0016": the address as
// 32-bit words in host byte order (little-endian here), the port big.
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

// socketOwners maps socket inodes to the processes holding them, by
// reading every /proc/PID/fd link (the kernel's view; no ss or netstat).
func socketOwners(want map[string]bool) map[string][]Proc {
	owners := map[string][]Proc{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return owners
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := "/proc/" + e.Name() + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or a kernel thread
		}
		var comm string
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
			if !want[ino] {
				continue
			}
			if comm == "" {
				b, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
				comm = strings.TrimSpace(string(b))
			}
			ps := owners[ino]
			if len(ps) == 0 || ps[len(ps)-1].PID != pid {
				owners[ino] = append(ps, Proc{PID: pid, Comm: comm})
			}
		}
	}
	return owners
}

// processNames lists the distinct comm values of running processes.
func processNames() []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil {
			seen[strings.TrimSpace(string(b))] = true
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func collectSockets(ctx context.Context, a Args, f *Facts) error {
	var all []procSock
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile("/proc/net/" + proto)
		if err != nil {
			if os.IsNotExist(err) {
				continue // no IPv6 in this kernel
			}
			return err
		}
		socks, err := parseProcNet(proto, b)
		if err != nil {
			return err
		}
		all = append(all, socks...)
	}
	listeners, inbound := classify(all)
	want := map[string]bool{}
	for _, s := range listeners {
		want[s.inode] = true
	}
	for _, s := range inbound {
		want[s.inode] = true
	}
	owners := socketOwners(want)
	f.Listeners = []Socket{}
	for _, s := range listeners {
		f.Listeners = append(f.Listeners, Socket{Proto: s.proto, Addr: s.local.Addr(), Port: s.local.Port(), Procs: owners[s.inode]})
	}
	f.Inbound = []Flow{}
	for _, s := range inbound {
		f.Inbound = append(f.Inbound, Flow{Proto: s.proto, Local: s.local.Addr(), LocalPort: s.local.Port(),
			Remote: s.remote.Addr(), RemotePort: s.remote.Port(), Procs: owners[s.inode]})
	}
	return nil
}

// classify picks the listeners and the established TCP connections whose
// local end is a listening port (inbound: someone connected to us), as
// opposed to connections this host opened.
func classify(all []procSock) (listeners, inbound []procSock) {
	type key struct {
		tcp  bool
		port uint16
	}
	listening := map[key][]netip.Addr{}
	for _, s := range all {
		tcp := strings.HasPrefix(s.proto, "tcp")
		if (tcp && s.state == tcpListen) || (!tcp && s.state == udpUnconn && !s.remote.Addr().IsValid()) ||
			(!tcp && s.state == udpUnconn && s.remote.Addr().IsUnspecified()) {
			if s.inode == "0" {
				continue
			}
			listeners = append(listeners, s)
			listening[key{tcp, s.local.Port()}] = append(listening[key{tcp, s.local.Port()}], s.local.Addr())
		}
	}
	for _, s := range all {
		if !strings.HasPrefix(s.proto, "tcp") || s.state != tcpEstablished {
			continue
		}
		for _, la := range listening[key{true, s.local.Port()}] {
			if la.IsUnspecified() || la == s.local.Addr() {
				inbound = append(inbound, s)
				break
			}
		}
	}
	sortSocks(listeners)
	sortSocks(inbound)
	return listeners, inbound
}

func sortSocks(s []procSock) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].proto != s[j].proto {
			return s[i].proto < s[j].proto
		}
		if s[i].local.Port() != s[j].local.Port() {
			return s[i].local.Port() < s[j].local.Port()
		}
		if c := s[i].local.Addr().Compare(s[j].local.Addr()); c != 0 {
			return c < 0
		}
		return s[i].remote.Compare(s[j].remote) < 0
	})
}
