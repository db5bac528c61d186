package actions

import (
	"fmt"
	"slices"

	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/plans"
)

// DeviceTargets turns the plan's network devices into device targets;
// names, if any, pick some of them (an unknown name is an error).
func DeviceTargets(p *plans.Plan, names []string) ([]device.Target, error) {
	var out []device.Target
	for _, d := range p.Devices {
		if len(names) > 0 && !slices.Contains(names, d.Name) {
			continue
		}
		out = append(out, device.Target{
			Name: d.Name, Address: d.Address, Port: d.Port, Model: string(d.Model), User: d.User,
			Password:  device.Secret{Env: d.PasswordEnv, File: d.PasswordFile},
			Enable:    device.Secret{Env: d.EnablePasswordEnv, File: d.EnablePasswordFile},
			Identity:  d.Identity,
			Save:      d.Save,
			LegacyKex: d.LegacyKex,
		})
	}
	for _, n := range names {
		if !slices.ContainsFunc(out, func(t device.Target) bool { return t.Name == n }) {
			return nil, fmt.Errorf("the plan has no device %q", n)
		}
	}
	return out, nil
}

// DeviceOptions are the plan's settings for reading its devices: host
// keys from ssh.known_hosts, tags naming the plan and, in a lockdown,
// the run.
func DeviceOptions(p *plans.Plan, run string) device.BackupOptions {
	var o device.BackupOptions
	if p.SSH != nil && p.SSH.KnownHosts != "" {
		o.KnownHosts = []string{expand(p.SSH.KnownHosts)}
	}
	if p.Name != "" {
		o.Tags = append(o.Tags, "plan:"+p.Name)
	}
	if run != "" {
		o.Tags = append(o.Tags, "run:"+run)
	}
	return o
}
