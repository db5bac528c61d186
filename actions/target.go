package actions

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/plans"
)

// SSHOptions are how the plan reaches every host: identity, known_hosts,
// connect timeout.
func SSHOptions(p *plans.Plan) sshx.Options {
	var o sshx.Options
	if s := p.SSH; s != nil {
		if s.KnownHosts != "" {
			o.KnownHosts = []string{expand(s.KnownHosts)}
		}
		if s.Identity != "" {
			o.IdentityFiles = []string{expand(s.Identity)}
		}
		o.ConnectTimeout = s.ConnectTimeout.Duration
	}
	return o
}

// Target turns a plan host into what to dial and how to run the agent
// there: the one function `holiday plan` and the runs both use, so that
// plan reaches a host exactly as lockdown will. A host that is the jump
// host itself is reached directly; `become: root` without a user logs in
// as root.
func Target(p *plans.Plan, h *plans.Host) (sshx.Target, agentctl.Options) {
	t := sshx.Target{Name: h.Name, Host: h.Address, Port: h.Port, User: h.User}
	var ao agentctl.Options
	if s := p.SSH; s != nil {
		if s.Jump != "" {
			t.Jump = s.Jump
			if jumpIsHost(s.Jump, h.Address) {
				t.Jump = "none" // the bastion itself is reached directly
			}
		}
		if s.Become == "none" {
			ao.Become = agentctl.BecomeNone
		}
		if s.Become == "root" && t.User == "" {
			t.User = "root"
		}
		ao.Preinstalled = s.AgentPath
	}
	return t, ao
}

// jumpIsHost reports whether a ProxyJump spec's first hop is addr.
func jumpIsHost(jump, addr string) bool {
	first, _, _ := strings.Cut(jump, ",")
	if _, h, ok := strings.Cut(first, "@"); ok {
		first = h
	}
	if h, _, err := net.SplitHostPort(first); err == nil {
		first = h
	}
	return strings.Trim(first, "[]") == addr
}

func expand(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// Management is the plan's management ranges.
func Management(p *plans.Plan) []netip.Prefix {
	var ms []netip.Prefix
	for _, m := range p.Management {
		ms = append(ms, m.Prefix)
	}
	return ms
}

// PreflightHost is a plan host as the preflight checks it.
func PreflightHost(p *plans.Plan, h *plans.Host) preflight.Host {
	t, _ := Target(p, h)
	ph := preflight.Host{Name: h.Name, Target: t, Stop: h.Stop}
	if fw := h.Firewall; fw != nil {
		pf := &preflight.Firewall{}
		for _, a := range fw.Allow {
			var from []netip.Prefix
			for _, f := range a.From {
				from = append(from, f.Prefix)
			}
			for _, proto := range []struct {
				name  string
				ports plans.Ports
			}{{"tcp", a.TCP}, {"udp", a.UDP}} {
				if len(proto.ports) == 0 {
					continue
				}
				al := preflight.Allow{Proto: proto.name, From: from}
				for _, r := range proto.ports {
					al.Ports = append(al.Ports, [2]uint16{r.First, r.Last})
				}
				pf.Allow = append(pf.Allow, al)
			}
		}
		ph.Firewall = pf
	}
	return ph
}
