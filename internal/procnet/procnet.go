// Package procnet reads the kernel's own socket tables
// (/proc/net/{tcp,tcp6,udp,udp6}) and finds the processes holding each
// socket (the socket:[INODE] links in /proc/PID/fd), rather than asking ss
// or netstat, which an intruder may have replaced.
//
// Every reader takes a root: "/" (or "") for the running host, or a
// directory holding a copy of its /proc for tests and offline
// collection. It imports nothing of holiday's.
package procnet

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kernel socket states as /proc/net prints them (include/net/tcp_states.h).
const (
	StateEstablished = "01"
	StateClose       = "07" // for UDP: bound, not connected
	StateListen      = "0A"
)

// tables are the socket tables [Read] reads, in that order.
var tables = []string{"tcp", "tcp6", "udp", "udp6"}

// Socket is one line of a /proc/net table.
type Socket struct {
	Proto  string // the table: tcp, tcp6, udp or udp6
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  string // the kernel's state in hex, e.g. [StateListen]
	Inode  string // "0" for a socket no file descriptor holds (TIME_WAIT)
}

// TCP reports whether s came from the tcp or tcp6 table.
func (s Socket) TCP() bool { return strings.HasPrefix(s.Proto, "tcp") }

// Listening reports whether s is a TCP socket in LISTEN or a bound,
// unconnected UDP socket.
func (s Socket) Listening() bool {
	if s.TCP() {
		return s.State == StateListen
	}
	return s.State == StateClose && (!s.Remote.Addr().IsValid() || s.Remote.Addr().IsUnspecified())
}

// Read reads the four socket tables under root. A missing table (a
// kernel without IPv6) is not an error.
func Read(root string) ([]Socket, error) {
	var all []Socket
	for _, proto := range tables {
		b, err := os.ReadFile(path(root, "/proc/net/"+proto))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		s, err := Parse(proto, b)
		if err != nil {
			return nil, err
		}
		all = append(all, s...)
	}
	return all, nil
}

// Parse reads one table; proto names it (tcp, tcp6, udp, udp6).
func Parse(proto string, data []byte) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for first := true; sc.Scan(); first = false {
		if first {
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
		out = append(out, Socket{Proto: proto, Local: l, Remote: r, State: f[3], Inode: f[9]})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes the kernel's "0100007F:0016": the address as
// 32-bit words in host byte order (little-endian on amd64 and arm64, the
// only architectures holiday builds for), the port big-endian.
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

// PIDs lists the numeric entries of root's /proc, in numeric order.
func PIDs(root string) ([]int, error) {
	ents, err := os.ReadDir(path(root, "/proc"))
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

// Owners maps the socket inodes in want to the PIDs holding them (each
// PID once, in numeric order), from every /proc/PID/fd link under root.
// A process that is gone, or whose fds cannot be read, is passed over.
func Owners(root string, want map[string]bool) map[string][]int {
	owners := map[string][]int{}
	pids, _ := PIDs(root)
	for _, pid := range pids {
		dir := path(root, "/proc/"+strconv.Itoa(pid)+"/fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or a kernel thread
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

func path(root, p string) string {
	if root == "/" || root == "" {
		return p
	}
	return filepath.Join(root, p)
}
