package facts

import (
	"context"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/holiday-ops/holiday/internal/procnet"
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

// socketOwners maps socket inodes to the processes holding them, by
// reading every /proc/PID/fd link (the kernel's view; no ss or netstat).
func socketOwners(want map[string]bool) map[string][]Proc {
	owners := map[string][]Proc{}
	comms := map[int]string{}
	for ino, pids := range procnet.Owners("/", want) {
		for _, pid := range pids {
			comm, ok := comms[pid]
			if !ok {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
				comm = strings.TrimSpace(string(b))
				comms[pid] = comm
			}
			owners[ino] = append(owners[ino], Proc{PID: pid, Comm: comm})
		}
	}
	return owners
}

// processNames lists the distinct comm values of running processes.
func processNames() []string {
	pids, err := procnet.PIDs("/")
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
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
	all, err := procnet.Read("/")
	if err != nil {
		return err
	}
	listeners, inbound := classify(all)
	want := map[string]bool{}
	for _, s := range listeners {
		want[s.Inode] = true
	}
	for _, s := range inbound {
		want[s.Inode] = true
	}
	owners := socketOwners(want)
	f.Listeners = []Socket{}
	for _, s := range listeners {
		f.Listeners = append(f.Listeners, Socket{Proto: s.Proto, Addr: s.Local.Addr(), Port: s.Local.Port(), Procs: owners[s.Inode]})
	}
	f.Inbound = []Flow{}
	for _, s := range inbound {
		f.Inbound = append(f.Inbound, Flow{Proto: s.Proto, Local: s.Local.Addr(), LocalPort: s.Local.Port(),
			Remote: s.Remote.Addr(), RemotePort: s.Remote.Port(), Procs: owners[s.Inode]})
	}
	return nil
}

// classify picks the listeners and the established TCP connections whose
// local end is a listening port (inbound: someone connected to us), as
// opposed to connections this host opened.
func classify(all []procnet.Socket) (listeners, inbound []procnet.Socket) {
	type key struct {
		tcp  bool
		port uint16
	}
	listening := map[key][]netip.Addr{}
	for _, s := range all {
		if s.Listening() && s.Inode != "0" {
			listeners = append(listeners, s)
			k := key{s.TCP(), s.Local.Port()}
			listening[k] = append(listening[k], s.Local.Addr())
		}
	}
	for _, s := range all {
		if !s.TCP() || s.State != procnet.StateEstablished {
			continue
		}
		for _, la := range listening[key{true, s.Local.Port()}] {
			if la.IsUnspecified() || la == s.Local.Addr() {
				inbound = append(inbound, s)
				break
			}
		}
	}
	sortSocks(listeners)
	sortSocks(inbound)
	return listeners, inbound
}

func sortSocks(s []procnet.Socket) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Proto != s[j].Proto {
			return s[i].Proto < s[j].Proto
		}
		if s[i].Local.Port() != s[j].Local.Port() {
			return s[i].Local.Port() < s[j].Local.Port()
		}
		if c := s[i].Local.Addr().Compare(s[j].Local.Addr()); c != 0 {
			return c < 0
		}
		return s[i].Remote.Compare(s[j].Remote) < 0
	})
}
