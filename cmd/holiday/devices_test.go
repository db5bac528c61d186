package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/backup/device/devicesim"
)

// TestDevicesCommands runs the built binary against simulated devices of
// every model plus one with a wrong password: backup stores the good ones
// and exits 2 naming the bad one; show masks, --reveal needs a yes; diff
// shows exactly a real change; no canary secret is ever printed except by
// a confirmed --reveal.
func TestDevicesCommands(t *testing.T) {
	bin := holidayBin(t)
	dir := t.TempDir()
	var kh, devs strings.Builder
	sims := map[string]*devicesim.Device{}
	for _, model := range append(devicesim.Models(), "cisco-ios") {
		d := &devicesim.Device{Model: model, User: "backup", Password: "pw-" + model}
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(d.Close)
		name := "dev-" + model
		env := "DEV_PW"
		if _, dup := sims[name]; dup {
			name, env = "bad-password", "WRONG_PW"
		}
		sims[name] = d
		host, port, _ := strings.Cut(d.Addr, ":")
		fmt.Fprintln(&kh, d.KnownHostsLine())
		fmt.Fprintf(&devs, "  - {name: %s, address: %s, port: %s, model: %s, user: backup, password_env: %s_%s, save: true}\n",
			name, host, port, model, env, strings.ReplaceAll(model, "-", "_"))
		t.Setenv("DEV_PW_"+strings.ReplaceAll(model, "-", "_"), "pw-"+model)
	}
	t.Setenv("WRONG_PW_cisco_ios", "not-it")
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
name: devices-test
management: [127.0.0.0/8]
repository: {url: %s/repo, password_file: %s/repo.pass}
ssh: {known_hosts: %s/known_hosts}
devices:
%s`, dir, dir, dir, devs.String())), 0o600))
	if r := runHoliday(t, bin, nil, "repo", "init", "--repo", dir+"/repo", "--password-file", dir+"/repo.pass"); r.code != 0 {
		t.Fatalf("repo init: %d %s", r.code, r.stderr)
	}
	noCanary := func(what string, r result) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, "CANARY") {
			t.Errorf("%s prints a canary secret:\n%s\n%s", what, r.stdout, r.stderr)
		}
	}

	r := runHoliday(t, bin, nil, "devices", "backup", "-f", plan)
	noCanary("devices backup", r)
	errorLine(t, r, 2, "1 of 8 devices NOT backed up")
	for name := range sims {
		want := "stored"
		if name == "bad-password" {
			want = "FAILED"
		}
		if !strings.Contains(r.stdout, name) || !strings.Contains(lineOf(r.stdout, name), want) {
			t.Errorf("summary line of %s lacks %q:\n%s", name, want, r.stdout)
		}
	}
	if !strings.Contains(lineOf(r.stdout, "bad-password"), `login refused for user "backup"`) {
		t.Errorf("the wrong password is not named:\n%s", r.stdout)
	}

	r = runHoliday(t, bin, nil, "devices", "show", "dev-cisco-ios", "-f", plan)
	noCanary("devices show", r)
	if r.code != 0 || !strings.Contains(r.stdout, "enable secret 9 <removed>") {
		t.Errorf("show: exit %d, stdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = runHoliday(t, bin, nil, "devices", "show", "dev-cisco-ios", "-f", plan, "--reveal")
	noCanary("devices show --reveal without a terminal", r)
	errorLine(t, r, 1, "not confirmed")
	r = runHoliday(t, bin, nil, "devices", "show", "dev-cisco-ios", "-f", plan, "--reveal", "--yes")
	for _, c := range sims["dev-cisco-ios"].Canaries() {
		if !strings.Contains(r.stdout, c) {
			t.Errorf("show --reveal --yes lacks %s", c)
		}
	}

	sims["dev-huawei-vrp"].Change("holidaytest")
	r = runHoliday(t, bin, nil, "devices", "backup", "-f", plan, "--device", "dev-huawei-vrp", "--device", "dev-junos")
	if r.code != 0 {
		t.Fatalf("second backup: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = runHoliday(t, bin, nil, "devices", "diff", "dev-huawei-vrp", "-f", plan)
	noCanary("devices diff", r)
	var changed []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") {
			changed = append(changed, l)
		}
	}
	if len(changed) != 1 || changed[0] != "+ description holidaytest" {
		t.Errorf("diff of a one-line change: %q\n%s", changed, r.stdout)
	}
	r = runHoliday(t, bin, nil, "devices", "diff", "dev-junos", "-f", plan)
	if r.code != 0 || !strings.Contains(r.stdout, "dev-junos: no changes between") {
		t.Errorf("diff of an unchanged device: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runHoliday(t, bin, nil, "devices", "diff", "dev-fortios", "-f", plan)
	errorLine(t, r, 1, "device dev-fortios has only one snapshot")
	r = runHoliday(t, bin, nil, "devices", "show", "no-such", "-f", plan)
	errorLine(t, r, 1, "the repository holds no snapshot of device no-such")
}

func lineOf(s, word string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, word+" ") {
			return l
		}
	}
	return ""
}
