package device_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/device/devicesim"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/testenv"
)

const repoPassword = "correct horse battery staple"

func newRepo(t *testing.T) (*repo.Repository, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	be, err := local.Create(dir)
	must(t, err)
	r, err := repo.Init(context.Background(), be, repoPassword)
	must(t, err)
	must(t, r.LoadIndex(context.Background()))
	return r, dir
}

// needRestic returns stock restic, skipping (failing under CI=true) when
// it is absent: it is the format oracle.
func needRestic(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic)")
	}
}

func restic(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("restic", append([]string{"-r", dir, "--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD="+repoPassword)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restic %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// TestDeviceBackupAll backs up every model beside a device that hangs
// mid-config, one that cuts the connection and one with a wrong password:
// the good ones are stored (raw, complete, every canary in it) without
// waiting for the hanging one, the bad ones fail alone and store nothing,
// and stock restic lists and dumps what was stored.
func TestDeviceBackupAll(t *testing.T) {
	needRestic(t)
	var targets []device.Target
	var sims []*devicesim.Device
	var opts device.Options
	var khs []string // one known_hosts file per simulator
	for _, model := range devicesim.Models() {
		d, tg, o := sim(t, model, devicesim.Faults{}, true)
		tg.Save = true
		targets, sims, opts = append(targets, tg), append(sims, d), o
		khs = append(khs, o.KnownHosts...)
	}
	good := len(targets)
	bad := []struct {
		model  string
		faults devicesim.Faults
		pw     string
	}{
		{"huawei-vrp", devicesim.Faults{HangAfter: 600}, ""},
		{"cisco-ios", devicesim.Faults{CutAfter: 600}, ""},
		{"arista-eos", devicesim.Faults{}, "HOLIDAY_TEST_WRONG_PW"},
	}
	t.Setenv("HOLIDAY_TEST_WRONG_PW", "wrong")
	for i, b := range bad {
		_, tg, o := sim(t, b.model, b.faults, false)
		tg.Name = "bad" + string(rune('1'+i))
		if b.pw != "" {
			tg.Password = device.Secret{Env: b.pw}
		}
		targets = append(targets, tg)
		khs = append(khs, o.KnownHosts...)
	}
	opts.KnownHosts = khs
	opts.Idle = 2 * time.Second
	r, dir := newRepo(t)
	res := device.BackupAll(context.Background(), r, targets, device.BackupOptions{Options: opts, Tags: []string{"run:test1"}})
	if len(res) != len(targets) {
		t.Fatalf("%d results for %d devices", len(res), len(targets))
	}
	for i, x := range res[:good] {
		if x.Err != nil || x.Snapshot == nil {
			t.Errorf("%s: %v", x.Device, x.Err)
			continue
		}
		if x.Elapsed > 1500*time.Millisecond {
			t.Errorf("%s took %s: it waited for the hanging device", x.Device, x.Elapsed)
		}
		got, err := device.Load(context.Background(), r, x.Snapshot)
		must(t, err)
		if got != x.Fetched.Config {
			t.Errorf("%s: stored config differs from the one read", x.Device)
		}
		for _, c := range sims[i].Canaries() {
			if !strings.Contains(got, c) {
				t.Errorf("%s: stored config lacks canary %s", x.Device, c)
			}
		}
	}
	for _, x := range res[good:] {
		if x.Err == nil || x.Snapshot != nil {
			t.Errorf("%s: stored (snapshot %v) although it should fail", x.Device, x.Snapshot)
		}
	}
	if res[good].Elapsed < 2*time.Second {
		t.Errorf("the hanging device failed after %s, before its idle timeout", res[good].Elapsed)
	}

	// stock restic sees exactly the good devices' snapshots and their text
	var listed []struct {
		ID       string   `json:"id"`
		Hostname string   `json:"hostname"`
		Tags     []string `json:"tags"`
		Paths    []string `json:"paths"`
	}
	must(t, json.Unmarshal([]byte(restic(t, dir, "snapshots", "--json", "--tag", "kind:device")), &listed))
	if len(listed) != good {
		t.Fatalf("restic lists %d device snapshots, want %d", len(listed), good)
	}
	byHost := map[string]string{}
	for _, sn := range listed {
		byHost[sn.Hostname] = sn.ID
	}
	for _, x := range res[:good] {
		id, ok := byHost[x.Device]
		if !ok {
			t.Errorf("restic does not list %s", x.Device)
			continue
		}
		if out := restic(t, dir, "dump", id, "/"+device.FileName(x.Device)); out != x.Fetched.Config {
			t.Errorf("restic dump of %s differs from the config read", x.Device)
		}
	}
	restic(t, dir, "check", "--read-data")

	// a second run of the unchanged devices diffs to nothing
	res2 := device.BackupAll(context.Background(), r, targets[:good], device.BackupOptions{Options: opts})
	for i, x := range res2 {
		if x.Err != nil {
			t.Fatalf("%s, second run: %v", x.Device, x.Err)
		}
		sns, err := device.Snapshots(context.Background(), r, x.Device)
		must(t, err)
		if len(sns) != 2 || device.ModelOf(sns[1]) != x.Model {
			t.Fatalf("%s: %d snapshots, model %q", x.Device, len(sns), device.ModelOf(sns[1]))
		}
		if d := device.Diff(x.Model, "first", res[i].Fetched.Config, "second", x.Fetched.Config); d != "" {
			t.Errorf("%s: unchanged device diffs:\n%s", x.Device, d)
		}
	}
}
