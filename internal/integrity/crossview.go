package integrity

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/procnet"
)

// hostTool finds the host's own tool the way its root shell would, under
// root. The cross-view wants exactly the binary an intruder may have
// replaced.
func (c *collection) hostTool(name string) string {
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if fi, err := os.Stat(c.path(d + "/" + name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return d + "/" + name
		}
	}
	return ""
}

// crossView compares /proc with the host's own ps and ss. Only entries
// present in /proc both before and after the tool ran count as hidden, so
// processes and sockets that come and go meanwhile are not.
func (c *collection) crossView(ctx context.Context) error {
	if c.root != "/" && c.root != "" {
		return nil // the host's tools only see the live system
	}
	cv := &CrossView{PS: c.hostTool("ps"), SS: c.hostTool("ss")}
	c.st.CrossView = cv
	var notes []string
	if cv.PS == "" {
		notes = append(notes, "no ps on the host")
	} else {
		before, err := procnet.PIDs(c.root)
		if err != nil {
			return err
		}
		out, err := runTool(ctx, cv.PS, "-e", "-o", "pid=")
		if err != nil {
			notes = append(notes, err.Error())
		} else {
			after, _ := procnet.PIDs(c.root)
			cv.HiddenPIDs = hiddenPIDs(before, after, out)
		}
	}
	if cv.SS == "" {
		notes = append(notes, "no ss on the host")
	} else {
		before, err := c.listenKeys()
		if err != nil {
			return err
		}
		out, err := runTool(ctx, cv.SS, "-H", "-l", "-n", "-t", "-u")
		if err != nil {
			notes = append(notes, err.Error())
		} else {
			after, _ := c.listenKeys()
			cv.HiddenSockets = hiddenSockets(before, after, out)
		}
	}
	cv.Note = strings.Join(notes, "; ")
	return nil
}

func runTool(ctx context.Context, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return string(out), nil
}

// hiddenPIDs returns the PIDs in both /proc listings that ps did not
// print.
func hiddenPIDs(before, after []int, psOut string) []int {
	shown := map[int]bool{}
	for _, f := range strings.Fields(psOut) {
		if pid, err := strconv.Atoi(f); err == nil {
			shown[pid] = true
		}
	}
	inAfter := map[int]bool{}
	for _, p := range after {
		inAfter[p] = true
	}
	var hidden []int
	for _, p := range before {
		if inAfter[p] && !shown[p] {
			hidden = append(hidden, p)
		}
	}
	return hidden
}

// listenKeys returns "tcp PORT" / "udp PORT" for every listening socket in
// /proc/net, both families folded: ss prints addresses its own way, and a
// rootkit hides a port, not an address.
func (c *collection) listenKeys() (map[string]bool, error) {
	all, err := procnet.Read(c.root)
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, s := range all {
		if s.Listening() {
			m[fmt.Sprintf("%s %d", strings.TrimSuffix(s.Proto, "6"), s.Local.Port())] = true
		}
	}
	return m, nil
}

// hiddenSockets returns the listening ports in both /proc listings that
// `ss -H -l -n -t -u` did not print.
func hiddenSockets(before, after map[string]bool, ssOut string) []string {
	shown := map[string]bool{}
	for _, l := range strings.Split(ssOut, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		if port, ok := ssPort(f[4]); ok {
			shown[fmt.Sprintf("%s %d", f[0], port)] = true
		}
	}
	var hidden []string
	for k := range before {
		if after[k] && !shown[k] {
			hidden = append(hidden, k)
		}
	}
	sort.Strings(hidden)
	return hidden
}

// ssPort reads the port of ss's local address: 0.0.0.0:22, [::]:22,
// *:7777, 127.0.0.53%lo:53.
func ssPort(s string) (uint16, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return 0, false
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Port(), true
	}
	p, err := strconv.ParseUint(s[i+1:], 10, 16)
	return uint16(p), err == nil
}
