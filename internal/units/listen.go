package units

import (
	"sort"
	"strconv"

	"github.com/holiday-ops/holiday/internal/procnet"
)

// Listener is one listening TCP socket and the processes holding it.
type Listener struct {
	Proto string `json:"proto"` // tcp or tcp6
	Port  int    `json:"port"`
	Addr  string `json:"addr"` // the local address, e.g. 0.0.0.0 or ::1
	Inode uint64 `json:"inode"`
	PIDs  []int  `json:"pids,omitempty"`
}

// ProcRoot is the directory whose proc/ is read: "/" for this host
// (tests point it at a copy).
var ProcRoot = "/"

// Listening returns the host's listening TCP sockets from the kernel's
// own tables (procnet), with the PIDs holding each, sorted by port.
func Listening() ([]Listener, error) {
	socks, err := procnet.Read(ProcRoot)
	if err != nil {
		return nil, err
	}
	var ls []Listener
	want := map[string]bool{}
	for _, s := range socks {
		if !s.TCP() || !s.Listening() {
			continue
		}
		inode, _ := strconv.ParseUint(s.Inode, 10, 64)
		ls = append(ls, Listener{Proto: s.Proto, Port: int(s.Local.Port()), Addr: s.Local.Addr().String(), Inode: inode})
		want[s.Inode] = true
	}
	owners := procnet.Owners(ProcRoot, want)
	for i := range ls {
		ls[i].PIDs = owners[strconv.FormatUint(ls[i].Inode, 10)]
	}
	sort.Slice(ls, func(i, j int) bool {
		if ls[i].Port != ls[j].Port {
			return ls[i].Port < ls[j].Port
		}
		return ls[i].Proto < ls[j].Proto
	})
	return ls, nil
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
