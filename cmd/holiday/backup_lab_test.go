package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// backupLab sets up a fresh repository and a plan for sysv1 that backs up
// /etc and its lab disk (frozen), and changes nothing else.
func backupLab(t *testing.T, sources string) (plan, repoDir, pwFile, state string) {
	t.Helper()
	lab := labtest.Require(t)
	dir := t.TempDir()
	repoDir, pwFile, state = filepath.Join(dir, "repo"), filepath.Join(dir, "pw"), filepath.Join(dir, "state")
	if err := os.WriteFile(pwFile, []byte("lab-backup-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := runPlanBinary(t, "repo", "init", "--repo", repoDir, "--password-file", pwFile); code != 0 {
		t.Fatalf("repo init: %s %s", out, stderr)
	}
	text := planHeader(lab, "10.213.0.0/24", "ops", "", "") +
		fmt.Sprintf("  - name: sysv1\n    address: 10.213.0.13\n    backup:\n%s", sources)
	// no firewall: these runs change nothing on the host but what a test adds
	text = strings.Replace(text, "  firewall: {allow: [{tcp: 22, from: [10.213.0.0/24]}], ipv6: drop-all}\n", "", 1)
	text = strings.Replace(text, "management:", fmt.Sprintf("repository: {url: %s, password_file: %s}\nmanagement:", repoDir, pwFile), 1)
	return writeTestPlan(t, text), repoDir, pwFile, state
}

func lockdownJSON(t *testing.T, plan, state string) (actions.RunResult, string, int) {
	t.Helper()
	stdout, stderr, code := runPlanBinary(t, "lockdown", "-f", plan, "--json", "--state-dir", state,
		"--journal-key", filepath.Join(state, "journal.key"), "--without-devices")
	var res actions.RunResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("lockdown --json: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	return res, stderr, code
}

func restic(t *testing.T, repoDir, pwFile string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("restic")
	if err != nil {
		testenv.Skip(t, "stock restic is not installed (apt-get install restic)")
	}
	cmd := exec.Command(path, append([]string{"-r", repoDir, "--password-file", pwFile, "--no-cache"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestLockdownBackupsLab: lockdown takes sysv1's /etc and its disk (under
// fsfreeze) before anything else; stock restic lists, checks every byte
// and restores them; /etc matches the host file by file (folders but
// their size, which is the filesystem's), the image passes e2fsck; a
// second, unchanged lockdown reads no file again and sends no chunk of
// them, and of the disk only the blocks the freeze rewrote.
func TestLockdownBackupsLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	plan, repoDir, pw, state := backupLab(t, "      - {files: [/etc], exclude: [\"*.log\"]}\n      - {disk: /dev/vdb, freeze: true}\n")
	res, stderr, code := lockdownJSON(t, plan, state)
	if code != 0 || len(res.Hosts) != 1 || res.Hosts[0].Status != actions.HostDone {
		t.Fatalf("lockdown: exit %d, %+v\n%s", code, res, stderr)
	}
	snaps := res.Hosts[0].Snapshots
	if len(snaps) != 2 || snaps[0].Kind != "files" || snaps[1].Kind != "disk" || snaps[1].Consistency != "" {
		t.Fatalf("snapshots: %+v; want files, then disk taken under freeze", snaps)
	}
	t.Logf("first: files %+v", snaps[0])
	t.Logf("first: disk %+v", snaps[1])

	// stock restic: list, check every byte, restore
	var listed []struct {
		ID       string   `json:"id"`
		Hostname string   `json:"hostname"`
		Tags     []string `json:"tags"`
		Paths    []string `json:"paths"`
	}
	if err := json.Unmarshal([]byte(restic(t, repoDir, pw, "snapshots", "--json")), &listed); err != nil {
		t.Fatalf("restic snapshots: %v", err)
	}
	// the run's journal is saved beside the backups (kind:journal)
	journals := 0
	listed = slices.DeleteFunc(listed, func(s struct {
		ID       string   `json:"id"`
		Hostname string   `json:"hostname"`
		Tags     []string `json:"tags"`
		Paths    []string `json:"paths"`
	}) bool {
		if slices.Contains(s.Tags, actions.JournalKindTag) {
			journals++
			return true
		}
		return false
	})
	if len(listed) != 2 || journals != 1 {
		t.Fatalf("restic snapshots: %+v and %d journal snapshots; want the 2 backups and the run's journal", listed, journals)
	}
	for _, s := range listed {
		if s.Hostname != "sysv1" || !strings.Contains(strings.Join(s.Tags, ","), "run:"+res.Run) || !strings.Contains(strings.Join(s.Tags, ","), "holiday-pin") {
			t.Errorf("snapshot %s: host %s tags %v", s.ID, s.Hostname, s.Tags)
		}
	}
	restic(t, repoDir, pw, "check", "--read-data")
	target := t.TempDir()
	restic(t, repoDir, pw, "restore", snaps[0].Snapshot, "--target", filepath.Join(target, "files"))
	restic(t, repoDir, pw, "restore", snaps[1].Snapshot, "--target", filepath.Join(target, "disk"))

	// /etc, file by file: type, mode, owner, mtime (ns), size, sha256, xattrs
	list := `cd /etc && find . ! -name '*.log' \( -type d -printf '%p %y %m %U %G %T@\n' -o -printf '%p %y %m %U %G %T@ %s %l\n' \) | sort; find . -type f ! -name '*.log' -exec sha256sum {} + | sort -k2; getfattr -R -d -m - --absolute-names . 2>/dev/null | grep -v '^#' | sort`
	hr, err := h.SSH(context.Background(), "root", list)
	if err != nil {
		t.Fatal(err)
	}
	local := exec.Command("sh", "-c", strings.ReplaceAll(list, "cd /etc", "cd "+filepath.Join(target, "files", "etc")))
	lo, err := local.Output()
	if err != nil {
		t.Fatal(err)
	}
	if diff := lineDiff(hr.Stdout, string(lo)); diff != "" {
		t.Errorf("restored /etc differs from the host's (host -, restored +):\n%s", diff)
	}
	img := filepath.Join(target, "disk", "vdb")
	if out, err := exec.Command("e2fsck", "-n", "-f", img).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -n of the restored image: %v\n%s", err, out)
	}

	// unchanged: nothing read again, nothing sent
	res, stderr, code = lockdownJSON(t, plan, state)
	if code != 0 || res.Hosts[0].Status != actions.HostDone || len(res.Hosts[0].Snapshots) != 2 {
		t.Fatalf("second lockdown: exit %d, %+v\n%s", code, res, stderr)
	}
	f, d := res.Hosts[0].Snapshots[0], res.Hosts[0].Snapshots[1]
	t.Logf("second: files %+v", f)
	t.Logf("second: disk %+v", d)
	if f.Unchanged != f.Files || f.BytesSent != 0 {
		t.Errorf("second files backup: %d of %d files unchanged, %d bytes of chunks sent; want all unchanged, none sent", f.Unchanged, f.Files, f.BytesSent)
	}
	// freezing and mounting rewrite the superblock: at most the blocks
	// that hold it and its journal cross again
	if d.BytesSent > 2*4<<20 || d.WireBytes > d.BytesSent+64<<10 {
		t.Errorf("second disk backup: %d chunk bytes, %d bytes in all crossed SSH; want at most two 4 MiB blocks and the chunk IDs", d.BytesSent, d.WireBytes)
	}
	restic(t, repoDir, pw, "check")
}

// TestLockdownBackupFailsLab: a missing source fails the host's backup
// step in one line, and nothing else on the host is touched.
func TestLockdownBackupFailsLab(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	plan, _, _, state := backupLab(t, "      - {files: [/etc/holiday-no-such-dir]}\n")
	plan2, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	// a service that would be stopped after the backups: it must not be
	if err := os.WriteFile(plan, []byte(strings.Replace(string(plan2), "    backup:\n", "    stop: [lab-worker]\n    backup:\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	res, stderr, code := lockdownJSON(t, plan, state)
	if code == 0 || res.Hosts[0].Status == actions.HostDone {
		t.Fatalf("lockdown with a missing source: exit %d, %+v\n%s", code, res, stderr)
	}
	if !strings.Contains(res.Hosts[0].Error, "source /etc/holiday-no-such-dir: no such file or directory") {
		t.Errorf("error: %q", res.Hosts[0].Error)
	}
	for _, s := range res.Hosts[0].Steps {
		if s.Kind == actions.KindService && s.Status != actions.StepPending {
			t.Errorf("service step %s: %s; want not run", s.ID, s.Status)
		}
	}
	out, err := h.SSH(context.Background(), "root", "service lab-worker status")
	if err != nil {
		t.Errorf("lab-worker after a failed backup: %v %+v", err, out)
	}
}

// lineDiff lists the lines only in a (-) or only in b (+).
func lineDiff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "- "+l)
		case n < 0:
			out = append(out, "+ "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
