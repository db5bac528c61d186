package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/backup/device/devicesim"
)

// TestLockdownBacksUpDevices: lockdown reads the plan's devices beside
// its hosts and stores each as a kind:device snapshot tagged with the
// run; a host that fails (unreachable here) does not stop the devices,
// and a device that fails does not stop the others. Both show in the
// summary and in the exit code.
func TestLockdownBacksUpDevices(t *testing.T) {
	bin := holidayBin(t)
	dir := t.TempDir()
	var kh, devs strings.Builder
	for i, model := range []string{"cisco-ios", "junos", "cisco-ios"} {
		d := &devicesim.Device{Model: model, User: "backup", Password: "pw"}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		host, port, _ := strings.Cut(d.Addr, ":")
		fmt.Fprintln(&kh, d.KnownHostsLine())
		pw := "DEV_PW"
		if i == 2 {
			pw = "WRONG_PW"
		}
		fmt.Fprintf(&devs, "  - {name: sw%d, address: %s, port: %s, model: %s, user: backup, password_env: %s}\n", i, host, port, model, pw)
	}
	t.Setenv("DEV_PW", "pw")
	t.Setenv("WRONG_PW", "nope")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "known_hosts"), []byte(kh.String()), 0o600))
	must(os.WriteFile(filepath.Join(dir, "repo.pass"), []byte("repo password\n"), 0o600))
	plan := filepath.Join(dir, "plan.yaml")
	must(os.WriteFile(plan, []byte(fmt.Sprintf(`version: 1
name: lockdown-devices
management: [127.0.0.0/8]
repository: {url: %[1]s/repo, password_file: %[1]s/repo.pass}
ssh: {known_hosts: %[1]s/known_hosts, connect_timeout: 2s}
hosts:
  - {name: gone, address: 127.0.0.1, port: 1, backup: none, stop: [nginx]}
devices:
%[2]s`, dir, devs.String())), 0o600))
	if r := runHoliday(t, bin, nil, "repo", "init", "--repo", dir+"/repo", "--password-file", dir+"/repo.pass"); r.code != 0 {
		t.Fatalf("repo init: %d %s", r.code, r.stderr)
	}
	r := runHoliday(t, bin, nil, "lockdown", "-f", plan, "--state-dir", dir+"/state", "--journal-key", dir+"/key")
	if r.code != 2 {
		t.Fatalf("lockdown: exit %d, want 2 (a host unreachable, a device failed)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	run := regexp.MustCompile(`lockdown run (\S+)`).FindStringSubmatch(r.stdout)
	if run == nil {
		t.Fatalf("no run line:\n%s", r.stdout)
	}
	for _, want := range []string{"gone", "unreachable", "devices (kind:device snapshots, tag run:" + run[1] + ")"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("lockdown output lacks %q:\n%s", want, r.stdout)
		}
	}
	for dev, want := range map[string]string{"sw0": "stored", "sw1": "stored", "sw2": "FAILED"} {
		if !strings.Contains(lineOf(r.stdout, dev), want) {
			t.Errorf("%s's line lacks %q:\n%s", dev, want, r.stdout)
		}
	}
	// The snapshots carry the run's tag: restore and the report find them.
	s := runHoliday(t, bin, nil, "repo", "snapshots", "--repo", dir+"/repo", "--password-file", dir+"/repo.pass", "--json")
	if n := strings.Count(s.stdout, "run:"+run[1]); n != 2 {
		t.Errorf("%d snapshots tagged run:%s, want 2:\n%s", n, run[1], s.stdout)
	}
}
