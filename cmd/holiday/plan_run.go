package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/preflight"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/plans"
)

// planFlags are `holiday plan`'s own flags.
type planFlags struct {
	file     string
	json     bool
	parallel int
	timeout  time.Duration
	agentBin string
	verbose  bool
}

// runPlan is `holiday plan -f PLAN`: load the plan, preflight every host,
// print a table (or JSON), exit 0 when every host is fine, 2 when some
// failed or would be refused.
func runPlan(ctx context.Context, stdout, stderr io.Writer, fl planFlags) error {
	p, err := plans.Load(fl.file)
	var findings plans.Errors
	if err != nil && !errors.As(err, &findings) {
		return exitcode.With(exitcode.Usage, err)
	}
	findings = append(findings, plans.Lint(p)...)
	findings.Sort()
	for _, e := range findings {
		fmt.Fprintln(stderr, e)
	}
	if findings.HasErrors() {
		return exitcode.WithHint(exitcode.Usage, fmt.Errorf("%s: plan invalid", fl.file),
			"fix the lines above (holiday plan validate shows the same)")
	}

	hosts, sopts, aopts := preflightInputs(p)
	if fl.agentBin != "" {
		b, err := agentctl.LoadBinary(fl.agentBin)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		aopts.Binaries = map[string]agentctl.Binary{"x86_64": b, "aarch64": b}
	}
	aopts.Version = version
	level := slog.LevelWarn
	if fl.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	sopts.Logger = log
	aopts.Logger = log

	prog := newProgress(stderr, len(hosts))
	start := time.Now()
	reports := preflight.Run(ctx, hosts, preflight.Options{
		SSH: sopts, Agent: aopts, Management: managementOf(p),
		Parallel: fl.parallel, HostTimeout: fl.timeout, Logger: log,
		Started: prog.started, Done: prog.done,
	})
	prog.finish()
	took := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	sum := summarize(reports)
	if fl.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Plan    string              `json:"plan"`
			Name    string              `json:"name,omitempty"`
			Hosts   []*preflight.Report `json:"hosts"`
			Summary map[string]int      `json:"summary"`
			Took    string              `json:"took"`
		}{fl.file, p.Name, reports, sum, took.Round(time.Millisecond).String()}); err != nil {
			return err
		}
	} else {
		printTable(stdout, reports)
		fmt.Fprintf(stdout, "\n%d host%s: %d ok, %d warn, %d refused, %d failed (%s)\n", len(reports), plural(len(reports)),
			sum[preflight.StatusOK], sum[preflight.StatusWarn], sum[preflight.StatusRefused], sum[preflight.StatusFailed],
			took.Round(10*time.Millisecond))
	}
	if bad := sum[preflight.StatusRefused] + sum[preflight.StatusFailed]; bad > 0 {
		return exitcode.WithHint(exitcode.HostsFailed,
			fmt.Errorf("%d of %d host%s not ready for lockdown", bad, len(reports), plural(len(reports))),
			"each host's line above says why")
	}
	return nil
}

func summarize(rs []*preflight.Report) map[string]int {
	m := map[string]int{preflight.StatusOK: 0, preflight.StatusWarn: 0, preflight.StatusRefused: 0, preflight.StatusFailed: 0}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

func managementOf(p *plans.Plan) []netip.Prefix {
	var ms []netip.Prefix
	for _, m := range p.Management {
		ms = append(ms, m.Prefix)
	}
	return ms
}

// preflightInputs turns the resolved plan into preflight's plain values.
func preflightInputs(p *plans.Plan) ([]preflight.Host, sshx.Options, agentctl.Options) {
	var sopts sshx.Options
	var aopts agentctl.Options
	jump := ""
	if s := p.SSH; s != nil {
		if s.Identity != "" {
			sopts.IdentityFiles = []string{expandHome(s.Identity)}
		}
		if s.KnownHosts != "" {
			sopts.KnownHosts = []string{expandHome(s.KnownHosts)}
		}
		sopts.ConnectTimeout = s.ConnectTimeout.Duration
		jump = s.Jump
		if s.Become == "none" {
			aopts.Become = agentctl.BecomeNone
		}
		aopts.Preinstalled = s.AgentPath
	}
	var hosts []preflight.Host
	for _, h := range p.Hosts() {
		ph := preflight.Host{Name: h.Name, Address: h.Address, Port: h.Port, User: h.User, Stop: h.Stop, Jump: jump}
		if jump != "" && jumpIsHost(jump, h.Address) {
			ph.Jump = "none" // the bastion itself is reached directly
		}
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
		hosts = append(hosts, ph)
	}
	return hosts, sopts, aopts
}

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

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

// printTable prints one line per host, then its findings indented.
func printTable(w io.Writer, rs []*preflight.Report) {
	nameW := 4
	for _, r := range rs {
		nameW = max(nameW, len(r.Name))
	}
	fmt.Fprintf(w, "%-*s  %-7s  %-15s  %s\n", nameW, "HOST", "STATUS", "ADDRESS", "DETAILS")
	for _, r := range rs {
		fmt.Fprintf(w, "%-*s  %-7s  %-15s  %s\n", nameW, r.Name, r.Status, r.Address, details(r))
		ind := strings.Repeat(" ", nameW+2)
		if r.Status == preflight.StatusFailed && r.Hint != "" {
			fmt.Fprintf(w, "%s  hint: %s\n", ind, r.Hint)
		}
		for _, s := range r.Services {
			if !s.Exists {
				continue
			}
			state := s.Active + "+" + s.Enablement
			fmt.Fprintf(w, "%s  stop %s: now %s\n", ind, s.Name, state)
		}
		for _, f := range r.Findings {
			fmt.Fprintf(w, "%s  %s: %s\n", ind, f.Severity, f.Message)
		}
	}
}

func details(r *preflight.Report) string {
	if r.Status == preflight.StatusFailed {
		return r.ErrorKind + ": " + r.Error
	}
	var d []string
	f := r.Facts
	if f.OS.ID != "" {
		d = append(d, f.OS.ID+" "+f.OS.VersionID)
	}
	d = append(d, f.Init)
	fw := "fw:none"
	if len(f.Firewall.Backends) > 0 {
		fw = "fw:" + strings.Join(f.Firewall.Backends, "+")
	}
	if len(f.Firewall.CoOwners) > 0 {
		fw += "(+" + strings.Join(f.Firewall.CoOwners, ",") + ")"
	}
	d = append(d, fw)
	if r.Sudo != nil && *r.Sudo {
		d = append(d, "sudo")
	} else if r.Agent != nil && r.Agent.UID == 0 {
		d = append(d, "root")
	}
	if r.Agent != nil {
		if r.Agent.Uploaded {
			d = append(d, "agent:uploaded")
		} else {
			d = append(d, "agent:cached")
		}
	}
	if r.ControlAddr != "" {
		in := "outside"
		if r.ControlInManagement != nil && *r.ControlInManagement {
			in = "in"
		}
		d = append(d, "control "+r.ControlAddr+" "+in+" management")
	}
	d = append(d, fmt.Sprintf("%d listening, %d inbound", len(f.Listeners), len(f.Inbound)))
	return strings.Join(d, ", ")
}

// progress reports on stderr: a live line on a terminal, otherwise one
// plain line per finished host.
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	mu      sync.Mutex
	done_   int
	running map[string]bool
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, total: total, running: map[string]bool{}}
}

func (p *progress) started(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[name] = true
	p.redraw()
}

func (p *progress) done(r *preflight.Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, r.Name)
	p.done_++
	if p.tty {
		p.redraw()
		return
	}
	line := fmt.Sprintf("plan: [%d/%d] %s %s (%s)", p.done_, p.total, r.Name, r.Status, r.Took)
	if r.Status == preflight.StatusFailed {
		line += ": " + r.ErrorKind
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) redraw() {
	if !p.tty {
		return
	}
	var names []string
	for n := range p.running {
		names = append(names, n)
	}
	sort.Strings(names)
	s := strings.Join(names, " ")
	if len(s) > 50 {
		s = s[:50] + "…"
	}
	fmt.Fprintf(p.w, "\r\033[K[%d/%d] checking %s", p.done_, p.total, s)
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
