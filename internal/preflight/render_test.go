package preflight

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/facts"
	"github.com/holiday-ops/holiday/internal/golden"
	"github.com/holiday-ops/holiday/internal/units"
)

// fixedOutput is one run of `holiday plan` over a fleet that shows every
// shape of host the table draws: ready with a diff (backups listed but
// not taken), `backup: none` with a warning, refused with a step that
// could not be observed, failed with a hint, one whose diff was never
// taken, and one the plan gives nothing to do. The findings come from
// the real judge.
func fixedOutput(t *testing.T) *Output {
	t.Helper()
	mgmt := []netip.Prefix{netip.MustParsePrefix("10.213.0.0/24")}
	yes, no := true, false
	sshFW := &Firewall{Allow: []Allow{{Proto: "tcp", Ports: [][2]uint16{{22, 22}}, From: mgmt}}}
	agent := func(uploaded bool) *Agent {
		return &Agent{Path: "/var/lib/holiday/agent/holiday-0a1b2c", Uploaded: uploaded, Build: "test", UID: 0}
	}
	host := func(name, addr string, h Host, f facts.Facts, sudo *bool, a *Agent) *Report {
		r := &Report{Name: name, Address: addr, Reachable: true, HostKey: "ok", LoginUser: "ops", Sudo: sudo, Agent: a,
			ControlAddr: "10.213.0.1", Facts: &f, Findings: []Finding{}, WouldCut: []facts.Flow{}, Took: "412ms"}
		judge(r, h, mgmt)
		return r
	}
	debian := facts.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Kernel: "6.1.0"}
	known := facts.Updates{State: "known"}
	listen := []facts.Socket{{Proto: "tcp", Addr: netip.IPv4Unspecified(), Port: 22}, {Proto: "tcp", Addr: netip.MustParseAddr("127.0.0.1"), Port: 6379}}
	self := facts.Flow{Proto: "tcp", Local: netip.MustParseAddr("10.213.0.11"), LocalPort: 22, Remote: netip.MustParseAddr("10.213.0.1"), RemotePort: 50122}

	sys1 := host("sys1", "10.213.0.11", Host{Name: "sys1", Stop: []string{"redis-server", "lab-echo.socket"}, Firewall: sshFW}, facts.Facts{
		OS: debian, Init: "systemd", Firewall: facts.Firewall{Backends: []string{"nft"}},
		Listeners: listen, Inbound: []facts.Flow{self},
		Services: []facts.Service{
			{Name: "redis-server", Exists: true, Unit: &units.Unit{Active: "active", Enablement: "enabled"}},
			{Name: "lab-echo.socket", Exists: true, Unit: &units.Unit{Active: "active", Enablement: "enabled"}},
		},
		Audit: facts.Audit{SSHD: facts.SSHD{PasswordAuthentication: "no", PermitRootLogin: "without-password"}, Updates: known},
	}, &yes, agent(false))
	sys1.Lockdown = &Lockdown{Backups: BackupsNotTaken, Steps: []Change{
		{Slot: "backups", Step: "backup:files /etc,/opt,/var/www (exclude *.log)", What: "not implemented in this build: nothing would be backed up"},
		{Slot: "services", Step: "service:redis-server", What: "stop redis-server.service (active/running), disable redis-server.service (enabled)"},
		{Slot: "services", Step: "service:lab-echo.socket", What: "stop lab-echo.socket (active/listening), disable lab-echo.socket (enabled)"},
		{Slot: "firewall", Step: "firewall", What: "not implemented in this build: the host's rules would stay as they are"},
	}}

	web := host("web2", "10.213.0.21", Host{Name: "web2", Stop: []string{"php-fpm"}}, facts.Facts{
		OS: debian, Init: "systemd", Listeners: listen,
		Services: []facts.Service{{Name: "php-fpm", Exists: true, Unit: &units.Unit{Active: "inactive", Enablement: "disabled"}}},
		Audit: facts.Audit{SSHD: facts.SSHD{PasswordAuthentication: "yes", PermitRootLogin: "no", Source: "sshd -T"},
			EmptyPasswords: []string{"backup"}, Updates: facts.Updates{State: "unknown", Reason: "apt has no package lists"}},
	}, nil, agent(true))
	web.Agent.UID = 0
	web.LoginUser = "root"
	web.Lockdown = &Lockdown{Backups: BackupsNone, Steps: []Change{
		{Slot: "backups", Step: "backup: none", What: "the plan says this host has no backups"},
		{Slot: "services", Step: "service:php-fpm", What: "nothing: php-fpm.service is already stopped and disabled"},
	}}

	sysv := host("sysv1", "10.213.0.13", Host{Name: "sysv1", Stop: []string{"lab-worker", "no-such-service"}, Firewall: sshFW}, facts.Facts{
		OS: debian, Init: "sysv", Firewall: facts.Firewall{Backends: []string{"legacy", "nft"}, Tables: []string{"legacy/ip4/filter", "nft/ip4/filter"}},
		Listeners: listen, Inbound: []facts.Flow{self, {Proto: "tcp", LocalPort: 9100, Remote: netip.MustParseAddr("10.9.0.5"), Procs: []facts.Proc{{PID: 812, Comm: "node_exporter"}}}},
		Services: []facts.Service{
			{Name: "lab-worker", Exists: true, Unit: &units.Unit{Active: "active", Enablement: "disabled"}},
			{Name: "no-such-service"},
		},
		Audit: facts.Audit{Updates: known},
	}, &yes, agent(false))
	sysv.Lockdown = &Lockdown{Backups: BackupsNone, Steps: []Change{
		{Slot: "backups", Step: "backup: none", What: "the plan says this host has no backups"},
		{Slot: "services", Step: "service:lab-worker", What: "stop lab-worker (running (status 0))"},
		{Slot: "services", Step: "service:no-such-service", Error: "no-such-service: not found"},
	}}

	gone := &Report{Name: "gone", Address: "10.213.0.250", Status: StatusFailed, ErrorKind: "unreachable",
		Error: "dial tcp 10.213.0.250:22: connect: no route to host", Hint: "check the address and that sshd listens",
		Findings: []Finding{}, WouldCut: []facts.Flow{}, Took: "5s"}

	// A host checked without the diff (Options.Then unset): its planned
	// services' states instead.
	nodiff := host("light1", "10.213.0.31", Host{Name: "light1", Stop: []string{"redis-server"}}, facts.Facts{
		OS: debian, Init: "systemd", Listeners: listen,
		Services: []facts.Service{{Name: "redis-server", Exists: true, Unit: &units.Unit{Active: "active", Enablement: "enabled"}}},
		Audit:    facts.Audit{Updates: known},
	}, &no, agent(false))

	idle := host("light2", "10.213.0.32", Host{Name: "light2"}, facts.Facts{OS: debian, Init: "systemd", Audit: facts.Audit{Updates: known}}, &yes, agent(false))
	idle.Lockdown = &Lockdown{Steps: []Change{}}

	out := NewOutput("spring.yaml", "spring-festival-2027", []*Report{sys1, web, sysv, gone, nodiff, idle}, 1234*time.Millisecond)
	// an immutable S3 repository whose retention ends before the pins,
	// and a second copy that cannot be opened
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	out.Repositories = []*Repository{
		{Role: "repository", URL: "s3:https://s3.example.com/holiday/spring", Reachable: true,
			ObjectLock: &ObjectLock{Supported: true, Bucket: true, Mode: "COMPLIANCE", Days: 40,
				ConfigUntil: at("2027-03-01T10:00:00Z"), ImmutableUntil: at("2027-03-01T10:00:00Z"), NewUntil: at("2027-03-12T08:00:00Z")},
			Findings: []Finding{{Severity: SevWarning, Code: "object-lock-short", Message: "snapshots lockdown takes now are protected until 2027-03-12 but pinned until 2027-03-19 (window end + 30 days): in between they can be deleted"}}},
		{Role: "copy_to", URL: "/srv/holiday-copy", Error: "repository /srv/holiday-copy does not exist: file does not exist", Hint: "`holiday repo init -f PLAN --copy-to` creates it",
			Findings: []Finding{{Severity: SevWarning, Code: "copy-unreachable", Message: "lockdown would back up into the repository, then fail to make the second copy (exit 2 at the end; the snapshots stay in the first repository)"}}},
	}
	return out
}

func TestTableGolden(t *testing.T) {
	var b bytes.Buffer
	if err := fixedOutput(t).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/table.golden", b.Bytes())
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := fixedOutput(t).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/json.golden", b.Bytes())
}

func TestOutputSummary(t *testing.T) {
	o := fixedOutput(t)
	want := map[string]int{StatusOK: 3, StatusWarn: 1, StatusRefused: 1, StatusFailed: 1}
	for k, v := range want {
		if o.Summary[k] != v {
			t.Errorf("summary[%s] = %d, want %d (%v)", k, o.Summary[k], v, o.Summary)
		}
	}
	if o.NotReady() != 2 {
		t.Errorf("NotReady = %d, want 2", o.NotReady())
	}
}

// TestRepositoryState: every state a repository line can be in reads as
// reachable or not and immutable until when, or why not.
func TestRepositoryState(t *testing.T) {
	until := time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)
	later := time.Date(2027, 4, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		r    Repository
		want string
	}{
		{"unreachable", Repository{Error: "open repository /x: wrong password"}, "NOT REACHABLE: open repository /x: wrong password"},
		{"directory", Repository{Reachable: true, ObjectLock: &ObjectLock{}}, "reachable, not immutable (a directory: whoever can write to it can delete the backups)"},
		{"bucket without lock", Repository{Reachable: true, ObjectLock: &ObjectLock{Supported: true}}, "reachable, not immutable: the bucket has no Object Lock (anyone with these credentials can delete the backups)"},
		{"no setting", Repository{Reachable: true, ObjectLock: &ObjectLock{Supported: true, Bucket: true}}, "reachable, not immutable: the bucket has Object Lock but the repository gives new files no retention (it was made without object_lock)"},
		{"config expired", Repository{Reachable: true, ObjectLock: &ObjectLock{Supported: true, Bucket: true, Mode: "GOVERNANCE", Days: 7, ConfigUntil: until, NewUntil: later}},
			"reachable, not immutable: the config's retention ended 2027-03-01 10:00 UTC; new files are retained 7 days (governance), a snapshot taken now until 2027-04-01 08:00 UTC"},
		{"immutable", Repository{Reachable: true, ObjectLock: &ObjectLock{Supported: true, Bucket: true, Mode: "COMPLIANCE", Days: 60, ConfigUntil: until, ImmutableUntil: until, NewUntil: later}},
			"reachable, immutable until 2027-03-01 10:00 UTC (the config, written first; new files are retained 60 days (compliance), a snapshot taken now until 2027-04-01 08:00 UTC)"},
	} {
		if got := repositoryState(&tc.r); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestOutputBlocked(t *testing.T) {
	o := fixedOutput(t)
	if o.Blocked() {
		t.Error("Blocked with only warnings on the repositories")
	}
	o.Repositories[0].Findings = append(o.Repositories[0].Findings, Finding{Severity: SevError, Code: "repository-unreachable", Message: "x"})
	if !o.Blocked() {
		t.Error("not Blocked with an error on the repository")
	}
}
