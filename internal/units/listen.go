package units

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Listener is one listening TCP socket and the processes holding it.
type Listener struct {
	Proto string `json:"proto"` // tcp or tcp6
	Port  int    `json:"port"`
	Addr  string `json:"addr"` // local address, hex as in /proc/net
	Inode uint64 `json:"inode"`
	PIDs  []int  `json:"pids,omitempty"`
}

// ProcRoot is where /proc is read (tests may point it elsewhere).
var ProcRoot = "/proc"

// Listening returns the host's listening TCP sockets from
// /proc/net/tcp and /proc/net/tcp6, with the PIDs holding each (from
// /proc/*/fd), sorted by port.
func Listening() ([]Listener, error) {
	var ls []Listener
	for _, proto := range []string{"tcp", "tcp6"} {
		f, err := os.Open(filepath.Join(ProcRoot, "net", proto))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" { // 0A = TCP_LISTEN
				continue
			}
			addr, portHex, ok := strings.Cut(fl[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseUint(portHex, 16, 16)
			if err != nil {
				continue
			}
			inode, _ := strconv.ParseUint(fl[9], 10, 64)
			ls = append(ls, Listener{Proto: proto, Port: int(port), Addr: addr, Inode: inode})
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading /proc/net/%s: %w", proto, err)
		}
	}
	owners := socketOwners()
	for i := range ls {
		ls[i].PIDs = owners[ls[i].Inode]
	}
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].Port != ls[j].Port {
			return ls[i].Port < ls[j].Port
		}
		return ls[i].Proto < ls[j].Proto
	})
	return ls, nil
}

// socketOwners maps socket inodes to the PIDs that hold them open.
func socketOwners() map[uint64][]int {
	m := map[uint64][]int{}
	procs, _ := os.ReadDir(ProcRoot)
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(ProcRoot, p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			t, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(t, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(t, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			if l := m[ino]; len(l) == 0 || l[len(l)-1] != pid {
				m[ino] = append(m[ino], pid)
			}
		}
	}
	return m
}

// Ports returns the distinct ports of ls, sorted.
func Ports(ls []Listener) []int {
	seen := map[int]bool{}
	var ps []int
	for _, l := range ls {
		if !seen[l.Port] {
			seen[l.Port] = true
			ps = append(ps, l.Port)
		}
	}
	sort.Ints(ps)
	return ps
}
