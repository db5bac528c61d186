package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/internal/agentproto"
)

func init() {
	Register(Handler{Name: "ping", Class: ClassRead, Run: ping})
	Register(Handler{Name: "facts-basic", Class: ClassRead, Run: factsBasic})
	Register(Handler{Name: "echo", Class: ClassRead, Run: echo})
}

// Pong is ping's result.
type Pong struct {
	Time time.Time `json:"time"`
}

func ping(ctx context.Context, op *Op) (any, error) {
	return Pong{Time: time.Now().UTC()}, nil
}

// BasicFacts are the facts every command starts from.
type BasicFacts struct {
	Hostname    string            `json:"hostname"`
	MachineID   string            `json:"machine_id"`
	OSRelease   map[string]string `json:"os_release"` // /etc/os-release, unquoted
	Kernel      string            `json:"kernel"`     // uname -r
	KernelBuild string            `json:"kernel_build,omitempty"`
	Machine     string            `json:"machine"` // uname -m
	GOARCH      string            `json:"goarch"`
	UID         int               `json:"uid"`
	EUID        int               `json:"euid"`
	ControlAddr string            `json:"control_addr,omitempty"`
}

func factsBasic(ctx context.Context, op *Op) (any, error) {
	f := BasicFacts{GOARCH: runtime.GOARCH, UID: os.Getuid(), EUID: os.Geteuid(), ControlAddr: op.ControlAddr}
	f.Hostname, _ = os.Hostname()
	f.MachineID, _ = readMachineID(nil)
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		f.Kernel = utsString(u.Release[:])
		f.KernelBuild = utsString(u.Version[:])
		f.Machine = utsString(u.Machine[:])
	}
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if m, err := ParseOSRelease(p); err == nil {
			f.OSRelease = m
			break
		}
	}
	return f, nil
}

func utsString[T int8 | uint8](b []T) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// ParseOSRelease reads the KEY=value file of os-release(5).
func ParseOSRelease(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
		m[k] = v
	}
	return m, sc.Err()
}

// echo sends every Data frame back as it arrives, then EOF, and reports
// the byte count: a self-test of streaming both ways (and a throughput
// probe).
func echo(ctx context.Context, op *Op) (any, error) {
	var n int64
	for {
		t, p, err := op.Conn.ReadFrame()
		if err != nil {
			return nil, err
		}
		switch t {
		case agentproto.FrameData:
			n += int64(len(p))
			if err := op.Conn.WriteFrame(agentproto.FrameData, p); err != nil {
				return nil, err
			}
		case agentproto.FrameEOF:
			if err := op.Conn.WriteFrame(agentproto.FrameEOF, nil); err != nil {
				return nil, err
			}
			return map[string]int64{"bytes": n}, nil
		default:
			return nil, fmt.Errorf("echo: unexpected %s frame", t)
		}
	}
}
