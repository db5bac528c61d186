package plans

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Prefix is a CIDR range or a single address (IPv4 or IPv6); a single
// address is stored as a /32 or /128.
type Prefix struct{ netip.Prefix }

func (p *Prefix) want() string { return "a CIDR or an address" }

func (p *Prefix) parseScalar(s string) string {
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Sprintf("%q is not a CIDR range (like 10.0.0.0/24 or fd00::/64)", s)
		}
		if pf.Masked() != pf {
			return fmt.Sprintf("%q has host bits set; did you mean %s?", s, pf.Masked())
		}
		p.Prefix = pf
		return ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return fmt.Sprintf("%q is not an IP address or CIDR range (like 10.0.0.0/24)", s)
	}
	p.Prefix = netip.PrefixFrom(a, a.BitLen())
	return ""
}

// Is4 reports whether the range is IPv4.
func (p Prefix) Is4() bool { return p.Addr().Is4() }

// PortRange is a port (First == Last) or an inclusive range.
type PortRange struct{ First, Last uint16 }

// String formats the range as holiday's plans write it: 22 or 8000-8100.
func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// Ports is a port, a "first-last" range, or a list of either.
type Ports []PortRange

func (p *Ports) want() string { return `a port, a "first-last" range or a list of them` }

func parsePort(s string) (uint16, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}

func parsePortRange(s string) (PortRange, string) {
	a, b, isRange := strings.Cut(s, "-")
	first, ok := parsePort(a)
	if !ok {
		return PortRange{}, fmt.Sprintf("%q is not a port (1-65535) or a range like 8000-8100", s)
	}
	last := first
	if isRange {
		if last, ok = parsePort(b); !ok {
			return PortRange{}, fmt.Sprintf("%q is not a port (1-65535) or a range like 8000-8100", s)
		}
		if last < first {
			return PortRange{}, fmt.Sprintf("port range %q ends before it starts", s)
		}
	}
	return PortRange{first, last}, ""
}

// Duration is a Go duration (90s, 15m, 6h).
type Duration struct{ time.Duration }

func (d *Duration) want() string { return "a duration like 30s, 15m or 6h" }

func (d *Duration) parseScalar(s string) string {
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Sprintf("%q is not a positive duration (like 30s, 15m or 6h)", s)
	}
	d.Duration = v
	return ""
}

// Size is a byte count written with a binary unit: 4MiB, 1GiB, 512KiB.
type Size int64

func (z *Size) want() string { return "a size like 4MiB" }

func (z *Size) parseScalar(s string) string {
	units := []struct {
		suf string
		n   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suf); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n <= 0 || n > (1<<40)/u.n {
				break
			}
			*z = Size(n * u.n)
			return ""
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		*z = Size(n)
		return ""
	}
	return fmt.Sprintf("%q is not a size (like 4MiB or 1GiB)", s)
}

// StringList is one string or a list of strings.
type StringList []string

// Cron is a schedule in robfig/cron's standard syntax: five fields
// (minute hour day-of-month month day-of-week), optionally after
// CRON_TZ=Area/City, or a descriptor (@hourly, @daily, @weekly, @monthly,
// @yearly) or @every DURATION.
type Cron string

func (c *Cron) want() string { return `a cron spec like "0 3 * * *" or "@every 1h"` }

func (c *Cron) parseScalar(s string) string {
	if msg := checkCron(s); msg != "" {
		return msg
	}
	*c = Cron(s)
	return ""
}

// Missed is the policy for runs missed while the daemon was down: skip,
// or run once if the missed run is no older than Within.
type Missed struct {
	Skip   bool
	Within time.Duration
}

func (m *Missed) want() string { return `"skip" or "run-once-within DURATION"` }

func (m *Missed) parseScalar(s string) string {
	if s == "skip" {
		*m = Missed{Skip: true}
		return ""
	}
	if rest, ok := strings.CutPrefix(s, "run-once-within "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil || d <= 0 {
			return fmt.Sprintf("%q: %q is not a positive duration (like 6h)", s, strings.TrimSpace(rest))
		}
		*m = Missed{Within: d}
		return ""
	}
	return fmt.Sprintf("%q is not a missed-run policy; want skip or run-once-within DURATION (like run-once-within 6h)", s)
}

// Risk orders hosts: high first, then normal (the default), then low.
type Risk string

// The risk levels.
const (
	RiskHigh   Risk = "high"
	RiskNormal Risk = "normal"
	RiskLow    Risk = "low"
)

func (Risk) enumValues() []string { return []string{"high", "normal", "low"} }

func (r Risk) rank() int {
	switch r {
	case RiskHigh:
		return 0
	case RiskLow:
		return 2
	}
	return 1
}

// Become is how the agent gets root on a host.
type Become string

func (Become) enumValues() []string { return []string{"sudo", "root", "none"} }

// LockMode is an Object Lock retention mode.
type LockMode string

func (LockMode) enumValues() []string { return []string{"governance", "compliance"} }

// Model is a network device's CLI dialect.
type Model string

func (Model) enumValues() []string {
	return []string{"cisco-ios", "junos", "arista-eos", "routeros", "fortios", "huawei-vrp", "h3c-comware"}
}

// IPv6Policy says what IPv6 gets under a lockdown firewall when allows
// name only IPv4 sources: drop-all keeps only the management path,
// neighbour discovery, loopback and replies on IPv6; allow-same opens the
// same ports to any IPv6 source (allows that list IPv6 sources keep them).
type IPv6Policy string

func (IPv6Policy) enumValues() []string { return []string{"drop-all", "allow-same"} }

// PowerOn is how a powered-off host is switched back on.
type PowerOn string

func (PowerOn) enumValues() []string { return []string{"manual", "wol", "ipmi"} }

// Reboot is the pre-break reboot rehearsal: rehearse, or never (the default).
type Reboot string

func (Reboot) enumValues() []string { return []string{"rehearse", "never"} }

// OnCompromise is what restore's integrity gate does with a host it keeps
// closed because it found indicators (DESIGN §8): keep (the default) leaves
// it locked down as it is; isolate also cuts it off from everything but the
// management path, both ways, on top of the lockdown firewall.
type OnCompromise string

// The on_compromise values.
const (
	OnCompromiseKeep    OnCompromise = "keep"
	OnCompromiseIsolate OnCompromise = "isolate"
)

func (OnCompromise) enumValues() []string { return []string{"keep", "isolate"} }
