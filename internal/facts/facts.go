// Package facts holds the host side of holiday's fact collection: what
// `holiday plan` (and lockdown's admission, with Args.Only) needs to know about a
// host before touching it — OS and init system, the firewall backends in
// use and who else owns the firewall, listening sockets and established
// inbound flows with their owning processes, the states of the units the
// plan names, and the pre-holiday audit (SSH password and root logins,
// accounts without passwords, pending security updates, world-writable
// web roots).
//
// It runs inside the agent, as root, and reads the kernel's own views
// (/proc/net, /proc/*/fd) rather than the host's ss or netstat, which an
// intruder may have replaced. It changes nothing and never reaches for the
// network: apt is asked only about its local cache.
//
// It imports nothing of holiday's above internal/.
package facts

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
)

// OpName is the agent operation that returns [Facts].
const OpName = "facts"

func init() {
	agent.Register(agent.Handler{Name: OpName, Class: agent.ClassRead, Run: run})
}

// Args is what the control node asks for.
type Args struct {
	// Services are the units or SysV services whose state is wanted
	// (the plan's stop: list). Bare names mean NAME.service on systemd.
	Services []string `json:"services,omitempty"`
	// WebRoots are searched for world-writable files; nil means
	// DefaultWebRoots.
	WebRoots []string `json:"web_roots,omitempty"`
	// Only names the collectors to run (os, init, firewall, sockets,
	// services, audit.…); empty runs them all. Lockdown's admission asks
	// for init and services (and firewall) only.
	Only []string `json:"only,omitempty"`
}

// DefaultWebRoots are the usual document roots on Debian/RHEL hosts.
var DefaultWebRoots = []string{"/var/www", "/srv/www", "/srv/http", "/usr/share/nginx/html"}

// Facts is the result of the facts operation.
type Facts struct {
	OS        OS        `json:"os"`
	Init      string    `json:"init"` // systemd, sysv or unknown
	Firewall  Firewall  `json:"firewall"`
	Listeners []Socket  `json:"listeners"`
	Inbound   []Flow    `json:"inbound"` // established flows to a local listening port
	Services  []Service `json:"services,omitempty"`
	Audit     Audit     `json:"audit"`
	Errors    []Problem `json:"errors,omitempty"` // collectors that failed; the rest still report
	Took      string    `json:"took"`
}

// OS is from os-release(5) and uname.
type OS struct {
	ID         string `json:"id"`
	VersionID  string `json:"version_id"`
	PrettyName string `json:"pretty_name"`
	Kernel     string `json:"kernel"`
}

// Problem is a collector that could not do its job.
type Problem struct {
	Collector string `json:"collector"`
	Error     string `json:"error"`
}

type collector struct {
	name string
	run  func(ctx context.Context, a Args, f *Facts) error
}

// collectors each fill their own fields of Facts, so they run at once.
var collectors = []collector{
	{"os", collectOS},
	{"init", collectInit},
	{"firewall", collectFirewall},
	{"sockets", collectSockets},
	{"services", collectServices},
	{"audit.sshd", collectSSHD},
	{"audit.accounts", collectAccounts},
	{"audit.updates", collectUpdates},
	{"audit.webroots", collectWebRoots},
}

func run(ctx context.Context, op *agent.Op) (any, error) {
	var a Args
	if len(op.Args) > 0 {
		if err := jsonUnmarshal(op.Args, &a); err != nil {
			return nil, err
		}
	}
	return Collect(ctx, a), nil
}

// Collect gathers every fact. A collector's failure is recorded in
// Facts.Errors; the others still report.
func Collect(ctx context.Context, a Args) *Facts {
	start := time.Now()
	f := &Facts{}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []Problem
	)
	// Collectors write disjoint fields of f; init is read by services,
	// so it runs first.
	if err := collectInit(ctx, a, f); err != nil {
		errs = append(errs, Problem{"init", err.Error()})
	}
	for _, c := range collectors {
		if c.name == "init" || (len(a.Only) > 0 && !slices.Contains(a.Only, c.name)) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(ctx, a, f); err != nil {
				mu.Lock()
				errs = append(errs, Problem{c.name, err.Error()})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(errs, func(i, j int) bool { return errs[i].Collector < errs[j].Collector })
	f.Errors = errs
	f.Took = time.Since(start).Round(time.Millisecond).String()
	return f
}
