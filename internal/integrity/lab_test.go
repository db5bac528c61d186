package integrity_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/labtest/labagent"
)

func TestMain(m *testing.M) {
	code := m.Run()
	labagent.Cleanup()
	os.Exit(code)
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// freshAgent dials a lab host as root and uploads a fresh agent, as
// holiday check does.
func freshAgent(t *testing.T, lab *labtest.Lab, h *labtest.Host) *agentctl.Agent {
	t.Helper()
	return labagent.Deploy(ctxT(t, 2*time.Minute), t, lab, h, "root")
}

// plantScript runs lab/plant.sh on the host with one verb.
func plantScript(t *testing.T, h *labtest.Host, verb string) {
	t.Helper()
	script, err := os.ReadFile("../../lab/plant.sh")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := h.SSHStdin(ctxT(t, 2*time.Minute), "root", "bash -s "+verb, bytes.NewReader(script)); err != nil {
		t.Fatalf("plant.sh %s on %s: %v\n%s%s", verb, h.Name, err, r.Stdout, r.Stderr)
	}
}

var webRoots = []string{"/var/www"}

func collect(t *testing.T, ag *agentctl.Agent, a integrity.Args) *integrity.State {
	t.Helper()
	st, err := integrity.CollectOn(ctxT(t, 2*time.Minute), ag, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Errors {
		t.Logf("collector problem: %s: %s", p.Collector, p.Error)
	}
	return st
}

// TestPlantedCompromise plants one trace of every kind lab/plant.sh knows
// into sys1's own root after a baseline and wants each flagged as an
// indicator naming the file, process or account.
func TestPlantedCompromise(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sys1")
	h.Lock(t)
	ag := freshAgent(t, lab, h)
	plantScript(t, h, "undo") // a previous run killed midway
	base := collect(t, ag, integrity.Args{WebRoots: webRoots})
	t.Cleanup(func() { plantScript(t, h, "undo") })
	plantScript(t, h, "plant")

	now := collect(t, ag, integrity.CheckArgs(base, webRoots))
	r, err := integrity.Compare(base, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Findings {
		if f.Class != integrity.Churn {
			t.Logf("%s %s", f.Class, f)
		}
	}
	want := []struct{ kind, object string }{
		{"new-uid0-account", "toor"},
		{"group-member", "guest"},
		{"new-authorized-key", "/root/.ssh/authorized_keys"},
		{"sudoers-changed", "/etc/sudoers.d/90-planted"},
		{"persistence-cron", "/etc/cron.d/updater"},
		{"persistence-at", "/var/spool/cron/atjobs/a00001021fa2b1"},
		{"persistence-systemd", "/etc/systemd/system/dbus-helper.service"},
		{"persistence-systemd", "/etc/systemd/system/dbus-helper.timer"},
		{"persistence-systemd", "/etc/systemd/system/multi-user.target.wants/dbus-helper.service"},
		{"persistence-rc", "/etc/init.d/netfix"},
		{"persistence-rc", "/etc/rc2.d/S99netfix"},
		{"persistence-profile", "/etc/profile.d/zz-update.sh"},
		{"pam-changed", "/etc/pam.d/sshd"},
		{"ld.so.preload", "/etc/ld.so.preload"},
		{"new-suid", "/var/tmp/.bash"},
		{"new-file-capability", "/var/tmp/.ping"},
		{"webshell", "/var/www/html/.cache.php"},
		{"changed-binary", "/usr/bin/ps"},
		{"changed-binary", "/usr/bin/ss"},
		{"suspicious-process", "(kworkerd)"}, // runs from /dev/shm
		{"suspicious-process", "(upd)"},      // deleted executable
		{"suspicious-process", "(memfd:"},    // fileless
		{"hidden-process", "(kworkerd)"},
		{"new-listener", ":31337"},
		{"hidden-socket", "tcp 31337"},
		{"login-after-failures", "root@203.0.113.77"},
		{"log-truncated", "/var/log/wtmp"},
		{"executable-in-tmp", "/dev/shm/.x/kworkerd"},
	}
	kinds := map[string]bool{}
	for _, w := range want {
		found := false
		for _, f := range r.Of(integrity.Indicator) {
			if f.Kind == w.kind && strings.Contains(f.Object, w.object) {
				found = true
			}
		}
		if !found {
			t.Errorf("not flagged: %s naming %s", w.kind, w.object)
		}
		kinds[w.kind] = true
	}
	if len(kinds) < 12 {
		t.Fatalf("the suite plants %d kinds, want at least 12", len(kinds))
	}
	if r.ExitCode() != 5 || !strings.Contains(r.Verdict(), "indicator") {
		t.Errorf("verdict %q exit %d, want indicators and 5", r.Verdict(), r.ExitCode())
	}
	t.Logf("%d planted kinds, %d indicators; collection took %s", len(kinds), r.Count(integrity.Indicator), now.Took)
}

// rebootHost reboots a systemd lab host from inside and waits until it
// runs again on the same root, then starts lab-worker as up.sh does.
func rebootHost(t *testing.T, h *labtest.Host) {
	t.Helper()
	h.Reboot(t)
	h.MustSSH(t, "root", "systemctl start lab-worker.service") // up.sh's, not the boot's
}

// TestChurnNoFalseAlarm simulates a quiet break (logs growing and
// rotating, PostgreSQL and MariaDB writing, apt caches, tmp files, a
// journal rotation; on sys1 also a reboot) and wants no indicator and no
// drift.
func TestChurnNoFalseAlarm(t *testing.T) {
	lab := labtest.Require(t)
	for _, name := range []string{"sys2", "sys1"} {
		t.Run(name, func(t *testing.T) {
			h := lab.MustHost(t, name)
			h.Lock(t)
			ag := freshAgent(t, lab, h)
			plantScript(t, h, "unchurn")
			t.Cleanup(func() { plantScript(t, h, "unchurn") })
			plantScript(t, h, "prechurn")
			base := collect(t, ag, integrity.Args{WebRoots: webRoots})
			plantScript(t, h, "churn")
			if name == "sys1" {
				rebootHost(t, h)
				ag = freshAgent(t, lab, h)
			}
			now := collect(t, ag, integrity.CheckArgs(base, webRoots))
			r, err := integrity.Compare(base, now)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range r.Findings {
				t.Logf("%s %s", f.Class, f)
				if f.Class != integrity.Churn {
					t.Errorf("false alarm: %s %s", f.Class, f)
				}
			}
			rotated := 0
			for _, f := range r.Of(integrity.Churn) {
				if f.Kind == "log-rotated" {
					rotated++
				}
			}
			if rotated < 2 {
				t.Errorf("%d logs seen rotated, want nginx's access.log and auth.log: the simulation did not do its job", rotated)
			}
			if r.Verdict() != "no indicators found" || r.ExitCode() != 0 {
				t.Errorf("verdict %q exit %d", r.Verdict(), r.ExitCode())
			}
		})
	}
}
