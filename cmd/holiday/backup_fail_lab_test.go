package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// These tests break a backup for real, the way it breaks on a tired
// operator's night: a file on a damaged disk, a full repository disk, an
// SSH connection that drops, an agent killed while its filesystem is
// frozen. Each one checks the same promises: one clear line naming the
// cause; nothing changed on the host (services, firewall, nothing
// journaled past the failed backup step); nothing half-written in the
// repository (holiday's and stock restic's check pass); and the next run
// works.

// failPlans is backupLab's repository and state with two plans for
// sysv1: fail backs up sources and would then stop lab-worker and apply
// a firewall (neither may happen); next backs up nextSources only (the
// operator's fix, or the same sources once the cause is gone).
func failPlans(t *testing.T, sources, nextSources string) (fail, next, repoDir, pw, state string) {
	t.Helper()
	next, repoDir, pw, state = backupLab(t, nextSources)
	text, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Replace(string(text), "    backup:\n"+nextSources,
		"    stop: [lab-worker]\n    firewall: {allow: [{tcp: 22, from: [10.213.0.0/24]}], ipv6: drop-all}\n    backup:\n"+sources, 1)
	return writeTestPlan(t, f), next, repoDir, pw, state
}

// hostState is what a failed backup must leave as it was: the services
// and both firewalls (without counters).
func hostState(t *testing.T, h *labtest.Host) string {
	t.Helper()
	out := h.MustSSH(t, "root", "service --status-all 2>&1; iptables-save; ip6tables-save")
	out = regexp.MustCompile(`(?m)^#.*\n`).ReplaceAllString(out, "")
	return regexp.MustCompile(`\[\d+:\d+\]`).ReplaceAllString(out, "")
}

// assertUntouched checks a lockdown whose backup failed: the host is not
// done, its error is one line containing want, no step but the backup
// ran, the control node's journal holds no other step, and the host's
// services and firewall are as before.
func assertUntouched(t *testing.T, h *labtest.Host, res actions.RunResult, state, before, want string) {
	t.Helper()
	if len(res.Hosts) != 1 {
		t.Fatalf("hosts: %+v", res.Hosts)
	}
	hr := res.Hosts[0]
	if hr.Status == actions.HostDone {
		t.Errorf("host status %s; want the lockdown to fail", hr.Status)
	}
	if !strings.Contains(hr.Error, want) || strings.Contains(hr.Error, "\n") {
		t.Errorf("error: %q; want one line containing %q", hr.Error, want)
	}
	t.Logf("the operator reads: %s", hr.Error)
	for _, s := range hr.Steps {
		if s.Kind != actions.KindBackup && s.Status != actions.StepPending {
			t.Errorf("step %s: %s; want not run after a failed backup", s.ID, s.Status)
		}
	}
	if hr.Journal != "" {
		key, err := journal.LoadOrCreateKey(filepath.Join(state, "journal.key"))
		if err != nil {
			t.Fatal(err)
		}
		j, err := journal.ReadFile(hr.Journal, key)
		if err != nil {
			t.Fatalf("journal: %v", err)
		}
		for _, s := range j.Steps(res.Run) {
			if s.Kind != actions.KindBackup {
				t.Errorf("journal: step %s (%s) journaled after a failed backup", s.ID, s.Kind)
			}
		}
	}
	if after := hostState(t, h); after != before {
		t.Errorf("the host changed:\n%s", lineDiff(before, after))
	}
}

// assertRepoSound runs holiday's and stock restic's check on the
// repository, and checks that no run's lock is left behind.
func assertRepoSound(t *testing.T, repoDir, pw string) {
	t.Helper()
	if out, stderr, code := runPlanBinary(t, "repo", "check", "-r", repoDir, "--password-file", pw); code != 0 {
		t.Errorf("holiday repo check: exit %d\n%s%s", code, out, stderr)
	}
	restic(t, repoDir, pw, "check")
	if locks, _ := os.ReadDir(filepath.Join(repoDir, "locks")); len(locks) != 0 {
		t.Errorf("%d locks left in the repository", len(locks))
	}
}

// assertNextRunWorks runs plan (backups only) and expects every snapshot.
func assertNextRunWorks(t *testing.T, plan, state string, snapshots int) {
	t.Helper()
	res, stderr, code := lockdownJSON(t, plan, state)
	if code != 0 || res.Hosts[0].Status != actions.HostDone || len(res.Hosts[0].Snapshots) != snapshots {
		t.Fatalf("the next run: exit %d, %+v\n%s", code, res, stderr)
	}
}

// hostDisk makes an ext4 image with mkImage (given the image's path),
// puts it on a loop device of this machine and mounts it inside h as
// /dev/NAME at /srv/NAME (the lab's sysv hosts may make device nodes,
// like lab/disk.sh's /dev/vdb). Cleanup thaws, unmounts and detaches.
func hostDisk(t *testing.T, h *labtest.Host, name string, ro bool, mkImage func(img string)) (dev, mnt string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), name+".img")
	mkImage(img)
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	maj, min := loopNumbers(t, loop)
	dev, mnt = "/dev/"+name, "/srv/"+name
	opt := ""
	if ro {
		opt = "-o ro"
	}
	t.Cleanup(func() {
		h.SSH(context.Background(), "root", fmt.Sprintf("fsfreeze -u %s 2>/dev/null; umount %s; rm -f %s; rmdir %s", mnt, mnt, dev, mnt))
	})
	h.MustSSH(t, "root", fmt.Sprintf("rm -f %[1]s; mknod %[1]s b %[3]d %[4]d && mkdir -p %[2]s && mount %[5]s %[1]s %[2]s", dev, mnt, maj, min, opt))
	return dev, mnt
}

// loopNumbers is a block device's major and minor number.
func loopNumbers(t *testing.T, dev string) (int, int) {
	out, err := exec.Command("stat", "-c", "%t %T", dev).Output()
	if err != nil {
		t.Fatal(err)
	}
	var maj, min int
	if _, err := fmt.Sscanf(string(out), "%x %x", &maj, &min); err != nil {
		t.Fatal(err)
	}
	return maj, min
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestLockdownBackupUnreadableLab: one file of a source cannot be read —
// a damaged extent tree on an ext4 disk, which the kernel answers with an
// I/O error while the file still lists and stats fine (what a failing
// disk does). The host's backup fails, naming the file and the error; it
// is not written as a snapshot missing a file (restic would warn and
// store one): a lockdown stops services on the strength of its backup,
// and a warning in the middle of a long run is one nobody reads. The
// operator's fix, excluding the file, makes the next run work.
func TestLockdownBackupUnreadableLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	_, mnt := hostDisk(t, h, "hb-bad", true, func(img string) {
		seed := t.TempDir()
		if err := os.WriteFile(filepath.Join(seed, "ok.txt"), []byte("fine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// ten 4 KiB runs with holes between: more extents than the
		// inode holds, so the extent tree has a block of its own
		f, err := os.Create(filepath.Join(seed, "bad.bin"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, err := f.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 4096), int64(2*i*4096)); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		mustRun(t, "truncate", "-s", "32M", img)
		mustRun(t, "mkfs.ext4", "-q", "-F", "-b", "4096", "-d", seed, img)
		stat := mustRun(t, "debugfs", "-R", "stat /bad.bin", img)
		m := regexp.MustCompile(`\(ETB0\):(\d+)`).FindStringSubmatch(stat)
		if m == nil {
			t.Fatalf("bad.bin has no extent tree block:\n%s", stat)
		}
		mustRun(t, "dd", "if=/dev/zero", "of="+img, "bs=4096", "seek="+m[1], "count=1", "conv=notrunc", "status=none")
	})
	if out, err := h.SSH(context.Background(), "root", "cat "+mnt+"/bad.bin >/dev/null"); err == nil {
		t.Fatalf("bad.bin reads fine on the host: %+v", out)
	}
	fail, next, repoDir, pw, state := failPlans(t, fmt.Sprintf("      - {files: [%s]}\n", mnt),
		fmt.Sprintf("      - {files: [%s], exclude: [bad.bin]}\n", mnt))
	before := hostState(t, h)
	res, stderr, code := lockdownJSON(t, fail, state)
	if code == 0 {
		t.Fatalf("lockdown with an unreadable file: exit 0\n%s", stderr)
	}
	assertUntouched(t, h, res, state, before, mnt+"/bad.bin: read: input/output error (no snapshot is stored without it")
	assertRepoSound(t, repoDir, pw)
	assertNextRunWorks(t, next, state, 1)
	assertRepoSound(t, repoDir, pw)
}

// TestLockdownBackupRepoFullLab: the repository's disk fills up (a small
// tmpfs on the control node) during the backup of sysv1's disk. The host
// fails with "no space left on device", nothing else happens to it, the
// repository checks clean, and once the disk has room the next run works.
func TestLockdownBackupRepoFullLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	mnt := t.TempDir()
	mustRun(t, "mount", "-t", "tmpfs", "-o", "size=4m", "holiday-test-full", mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	// backupLab's repository, moved onto the small disk
	fail, next, repoDir, pw, state := failPlans(t, "      - {disk: /dev/vdb}\n", "      - {disk: /dev/vdb}\n")
	small := filepath.Join(mnt, "repo")
	mustRun(t, "cp", "-a", repoDir, small)
	for _, p := range []string{fail, next} {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(text), "url: "+repoDir+",", "url: "+small+",", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := hostState(t, h)
	res, stderr, code := lockdownJSON(t, fail, state)
	if code == 0 {
		t.Fatalf("lockdown into a full repository: exit 0\n%s", stderr)
	}
	assertUntouched(t, h, res, state, before, "no space left on device")
	mustRun(t, "mount", "-o", "remount,size=256m", mnt)
	assertRepoSound(t, small, pw)
	assertNextRunWorks(t, next, state, 1)
	assertRepoSound(t, small, pw)
}

// startLockdown runs lockdown --json in the background; wait returns its
// result.
func startLockdown(t *testing.T, plan, state string) (cmd *exec.Cmd, wait func() (actions.RunResult, string, int)) {
	t.Helper()
	cmd = exec.Command(planTestBinary(t), "lockdown", "-f", plan, "--json", "--state-dir", state,
		"--journal-key", filepath.Join(state, "journal.key"), "--without-devices")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, func() (actions.RunResult, string, int) {
		err := cmd.Wait()
		done = true
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var res actions.RunResult
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("lockdown --json: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
		}
		return res, stderr.String(), code
	}
}

// throttle slows h's link to rate (tc on its interface, removed at
// cleanup), so that a backup takes long enough to be cut in the middle.
func throttle(t *testing.T, h *labtest.Host, rate string) {
	t.Helper()
	h.MustInNetns(t, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "256kb", "latency", "500ms")
	t.Cleanup(func() { h.InNetns(context.Background(), "tc", "qdisc", "del", "dev", "eth0", "root") })
}

// agentWith is a shell snippet that sets $a to the holiday agent on the
// host that has a file matching pattern open (empty: none yet).
func agentWith(pattern string) string {
	return fmt.Sprintf(`a=; for p in $(pgrep -f '^/var/lib/holiday/agent/[^ ]*/holiday agent'); do ls -l /proc/$p/fd 2>/dev/null | grep -q '%s' && a=$p; done`, pattern)
}

// waitHost runs cmd on h until it prints something, or fails the test
// after timeout.
func waitHost(t *testing.T, h *labtest.Host, cmd string, timeout time.Duration) string {
	t.Helper()
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if r, err := h.SSH(context.Background(), "root", cmd); err == nil && strings.TrimSpace(r.Stdout) != "" {
			return strings.TrimSpace(r.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("on %s, nothing after %v: %s", h.Name, timeout, cmd)
	return ""
}

// TestLockdownBackupSSHDropLab: the SSH connection to sysv1 drops while
// its files are being read and sent (its sshd session processes killed,
// the link slowed so that the backup is surely under way). The host fails
// with one line, nothing else happens to it, the chunks already stored
// are referenced by nothing and the repository checks clean, and the
// next run backs it up.
func TestLockdownBackupSSHDropLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	h.MustSSH(t, "root", "mkdir -p /srv/hb-big && for i in $(seq 1 12); do head -c 4M /dev/urandom >/srv/hb-big/f$i; done")
	t.Cleanup(func() { h.SSH(context.Background(), "root", "rm -rf /srv/hb-big") })
	fail, next, repoDir, pw, state := failPlans(t, "      - {files: [/srv/hb-big]}\n", "      - {files: [/srv/hb-big]}\n")
	before := hostState(t, h)
	throttle(t, h, "40mbit")
	_, wait := startLockdown(t, fail, state)
	// the agent is reading the tree: drop its connection (every sshd
	// process above it but the listener)
	waitHost(t, h, agentWith("/srv/hb-big/")+`; [ -n "$a" ] || exit 0
		p=$a; while p=$(awk '{print $4}' /proc/$p/stat) && [ "$p" -gt 1 ]; do
			case "$(tr '\0' ' ' </proc/$p/cmdline)" in *listener*) ;; sshd:*) kill -9 $p; echo killed $p;; esac
		done`, time.Minute)
	res, stderr, code := wait()
	if code == 0 {
		t.Fatalf("lockdown whose connection dropped: exit 0\n%s", stderr)
	}
	h.InNetns(context.Background(), "tc", "qdisc", "del", "dev", "eth0", "root")
	assertUntouched(t, h, res, state, before, "the backup stopped halfway, nothing of it is stored as a snapshot: ")
	if out := h.MustSSH(t, "root", agentWith("/srv/hb-big/")+`; echo "$a"`); strings.TrimSpace(out) != "" {
		t.Errorf("an agent still reads the tree after its connection dropped: pid %s", out)
	}
	assertRepoSound(t, repoDir, pw)
	assertNextRunWorks(t, next, state, 1)
	assertRepoSound(t, repoDir, pw)
}

// TestLockdownBackupFreezeDeadmanLab: the agent is killed -9 while the
// filesystem of the disk it reads is frozen. The host thaws it by itself
// (the dead-man, in its own session) within the bound, and the
// filesystem takes writes again; the lockdown fails the host without
// touching anything else.
func TestLockdownBackupFreezeDeadmanLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	// 160 MiB that do not compress or repeat: more than the agent reads
	// ahead, so on a slow link it reads, frozen, for a while
	dev, mnt := hostDisk(t, h, "hb-frz", false, func(img string) {
		seed := t.TempDir()
		mustRun(t, "dd", "if=/dev/urandom", "of="+filepath.Join(seed, "data.bin"), "bs=1M", "count=160", "status=none")
		mustRun(t, "truncate", "-s", "256M", img)
		mustRun(t, "mkfs.ext4", "-q", "-F", "-d", seed, img)
	})
	h.MustSSH(t, "root", "rm -f /tmp/hb-probe-done")
	t.Cleanup(func() { h.SSH(context.Background(), "root", "rm -f /tmp/hb-probe-done") })
	fail, _, repoDir, pw, state := failPlans(t, fmt.Sprintf("      - {disk: %s, freeze: true}\n", dev), "      - {files: [/etc/hostname]}\n")
	before := hostState(t, h)
	throttle(t, h, "40mbit")
	_, wait := startLockdown(t, fail, state)
	// frozen: the dead-man is up, and a write to the filesystem hangs
	waitHost(t, h, "pgrep -f holiday-thaw", time.Minute)
	probe := fmt.Sprintf("(touch %s/probe && touch /tmp/hb-probe-done) </dev/null >/dev/null 2>&1 & sleep 2; test -e /tmp/hb-probe-done && echo thawed || echo frozen", mnt)
	if out := strings.TrimSpace(h.MustSSH(t, "root", probe)); out != "frozen" {
		t.Fatalf("%s is not frozen while the agent reads it: %s", mnt, out)
	}
	killed := time.Now()
	h.MustSSH(t, "root", agentWith(dev)+`; [ -n "$a" ] && kill -9 $a`)
	res, stderr, code := wait()
	if code == 0 {
		t.Fatalf("lockdown whose agent was killed: exit 0\n%s", stderr)
	}
	// nothing but the dead-man thaws it: still frozen a while later
	time.Sleep(3 * time.Second)
	if out := h.MustSSH(t, "root", "test -e /tmp/hb-probe-done && echo thawed || echo frozen"); strings.TrimSpace(out) != "frozen" {
		t.Fatalf("%s thawed right after the kill: the test does not show the dead-man", mnt)
	}
	// the bound for a 256 MiB disk is 2 min 12 s from the freeze
	waitHost(t, h, "test -e /tmp/hb-probe-done && echo thawed", 3*time.Minute)
	t.Logf("thawed by the dead-man %v after the kill", time.Since(killed).Round(time.Second))
	h.MustSSH(t, "root", fmt.Sprintf("echo after >%[1]s/after && sync -f %[1]s/after && cat %[1]s/after", mnt))
	assertUntouched(t, h, res, state, before, "the backup stopped halfway, nothing of it is stored as a snapshot")
	assertRepoSound(t, repoDir, pw)
}
