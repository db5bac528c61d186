package planview

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/units"
	"github.com/holiday-ops/holiday/plans"
)

// fakeAgent answers service-observe from a map of unit states and
// records every operation it was asked for.
type fakeAgent struct {
	units map[string]units.Unit
	ops   []string
}

func (f *fakeAgent) Call(ctx context.Context, op string, args, result any) error {
	f.ops = append(f.ops, op)
	var a struct{ Name string }
	b, _ := json.Marshal(args)
	json.Unmarshal(b, &a)
	if op == "firewall-observe" {
		p, _ := json.Marshal(actions.FirewallPrior{Backend: "nft", Init: "systemd"})
		return json.Unmarshal(p, result)
	}
	u := f.units[a.Name]
	p, _ := json.Marshal(actions.ServicePrior{Init: units.Systemd, Unit: u})
	return json.Unmarshal(p, result)
}

func TestLockdownDiff(t *testing.T) {
	repo := &plans.Repository{URL: "/srv/repo"}
	keep := "baseline | on_compromise: keep | at restore, if the gate finds indicators: kept closed — services stay stopped, the firewall stays as lockdown left it"
	for _, tc := range []struct {
		name         string
		plan         *plans.Plan
		onCompromise plans.OnCompromise
		baseline     []string
	}{
		{"with a repository", &plans.Plan{Repository: repo}, "", []string{
			"baseline | baseline:integrity | collect the integrity baseline through the agent into the repository (kind:baseline), once services are stopped and the firewall is in place: what holiday check and restore's gate compare the host with",
			keep}},
		{"on_compromise: isolate", &plans.Plan{Repository: repo}, plans.OnCompromiseIsolate, []string{
			"baseline | baseline:integrity | collect the integrity baseline through the agent into the repository (kind:baseline), once services are stopped and the firewall is in place: what holiday check and restore's gate compare the host with",
			"baseline | on_compromise: isolate | at restore, if the gate finds indicators: kept closed and isolated — only the management path reaches it, its own outgoing connections are dropped (on top of the lockdown firewall); holiday isolate --undo goes back to the lockdown firewall"}},
		{"without a repository", &plans.Plan{}, plans.OnCompromiseIsolate, []string{
			"baseline | baseline: none | no baseline: the plan names no repository to keep it in; restore cannot check this host",
			"baseline | on_compromise: isolate | nothing: without a baseline restore's gate cannot find indicators on this host"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testLockdownDiff(t, tc.plan, tc.onCompromise, tc.baseline...) })
	}
}

func testLockdownDiff(t *testing.T, p *plans.Plan, oc plans.OnCompromise, baseline ...string) {
	fa := &fakeAgent{units: map[string]units.Unit{
		"redis-server": {Name: "redis-server.service", Init: units.Systemd, Active: "active", Sub: "running", Enablement: "enabled"},
		"lab-worker":   {Name: "lab-worker.service", Init: units.Systemd, Active: "inactive", Sub: "dead", Enablement: "disabled"},
	}}
	ph := &plans.Host{Name: "sys1"}
	ph.Stop = []string{"redis-server", "lab-worker"}
	ph.Backup = &plans.Backup{Sources: []*plans.BackupSource{{Files: []string{"/etc", "/opt"}, Exclude: []string{"*.log"}}, {Disk: "/dev/vda"}}}
	ph.Firewall = &plans.Firewall{}
	ph.OnCompromise = oc
	l := Lockdown(t.Context(), p, ph, &actions.Host{Name: "sys1", Plan: ph, Agent: readOnly{fa}}, false, false)

	if l.Backups != "" {
		t.Errorf("backups = %q, want taken (\"\")", l.Backups)
	}
	var got []string
	for _, c := range l.Steps {
		got = append(got, c.Slot+" | "+c.Step+" | "+c.What+c.Error)
	}
	want := []string{
		"backups | backup:files /etc,/opt (exclude *.log) | snapshot kind:files, read back before any service stops or the firewall changes",
		"backups | backup:disk /dev/vda | snapshot kind:disk, read back before any service stops or the firewall changes; crash-consistent (no freeze:)",
		"services | service:redis-server | stop redis-server.service (active/running), disable redis-server.service (enabled)",
		"services | service:lab-worker | nothing: lab-worker.service is already stopped and disabled",
		"firewall | firewall:lockdown | tighten the firewall (nft, both families): HOLIDAY-IN first from INPUT; the rules saved now are put back at restore",
	}
	want = append(want, baseline...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, op := range fa.ops {
		if op != "service-observe" && op != "firewall-observe" {
			t.Errorf("plan asked the agent for %q", op)
		}
	}
}

func TestBackupNone(t *testing.T) {
	ph := &plans.Host{Name: "oa1"}
	ph.Backup = &plans.Backup{None: true}
	p := &plans.Plan{Repository: &plans.Repository{URL: "/srv/repo"}}
	l := Lockdown(t.Context(), p, ph, &actions.Host{Name: "oa1", Plan: ph, Agent: readOnly{&fakeAgent{}}}, false, false)
	// backup: none still gets its baseline: the repository is there.
	if l.Backups != "none" || len(l.Steps) != 3 || l.Steps[0].Step != "backup: none" || l.Steps[1].Step != "baseline:integrity" || l.Steps[2].Step != "on_compromise: keep" {
		t.Errorf("backup: none host: %+v", l)
	}
}

// The guard passes reads and refuses anything that changes a host, so a
// plan can never stop a service whatever an Observe calls.
func TestReadOnly(t *testing.T) {
	fa := &fakeAgent{}
	ro := readOnly{fa}
	for _, op := range []string{"service-apply", "service-revert", "journal-put", "no-such-op"} {
		if err := ro.Call(t.Context(), op, nil, nil); err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s: err %v, want refused", op, err)
		}
	}
	if len(fa.ops) != 0 {
		t.Errorf("refused ops reached the agent: %v", fa.ops)
	}
	var out map[string]any
	if err := ro.Call(t.Context(), "service-observe", map[string]string{"name": "x"}, &out); err != nil {
		t.Errorf("service-observe refused: %v", err)
	}
}
