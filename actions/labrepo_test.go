package actions_test

// Lab tests of the run's journals in the repository (issue 10, item 4): a
// second control node, holding only the plan and the repository password,
// restores a lockdown run from the repository alone, or from the hosts'
// copies verified with the key the repository keeps; a journal altered in
// the repository is refused before any host changes; a repository that
// cannot be reached at the end of lockdown fails nothing but says so, and
// save-journal saves the journals once it is back.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend/s3/s3test"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// repoPlan writes a plan whose hosts stop a service each and lock their
// firewall down (both families), with repository: repoYAML.
func repoPlan(t *testing.T, lab *labtest.Lab, repoYAML string, stops map[string]string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: journal-repo-test\nmanagement: [%s]\n", controlOnly)
	fmt.Fprintf(&b, "window: {start: 2027-02-05T18:00:00+08:00, end: 2027-02-17T09:00:00+08:00}\n")
	fmt.Fprintf(&b, "repository: %s\n", repoYAML)
	fmt.Fprintf(&b, "ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}\n", lab.SSHKey, lab.KnownHosts)
	fmt.Fprintf(&b, "defaults: {backup: none}\nhosts:\n")
	for _, n := range []string{"sys1", "sys2", "sysv1"} {
		if stops[n] == "" {
			continue
		}
		h := lab.Host(n)
		fmt.Fprintf(&b, "  - {name: %s, address: %s, stop: [%s], firewall: {log_drops: true, ipv6: drop-all, allow: [{tcp: 80, from: [%s]}]}}\n",
			n, h.Addr, stops[n], lab.Host("sysv1").Addr)
	}
	p := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostStates is each host's service state and every firewall save.
func hostStates(t *testing.T, hs []*labtest.Host) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, h := range hs {
		m[h.Name] = snapshot(t, h) + "\n## firewall\n" + fwSaves(t, h)
	}
	return m
}

func assertStates(t *testing.T, hs []*labtest.Host, before map[string]string, what string) {
	t.Helper()
	now := hostStates(t, hs)
	for _, h := range hs {
		if d := diffLines(before[h.Name], now[h.Name]); d != "" {
			t.Errorf("%s %s:\n%s", h.Name, what, d)
		}
	}
}

var runLine = regexp.MustCompile(`lockdown run ([0-9]{8}T[0-9]{6}Z-[0-9a-f]{6})`)

func runOf(t *testing.T, out string) string {
	t.Helper()
	m := runLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no run ID in:\n%s", out)
	}
	return m[1]
}

// TestSecondControlNodeRestores: lockdown on one control node, whose
// state is then deleted; a second one with a fresh state dir and a key of
// its own, given only the plan and the repository password, puts every
// host back exactly (services, every firewall save), from the repository
// alone and, after a second lockdown, from the hosts' copies. A journal
// altered in the repository is refused and no host changes. Stock restic
// checks the repository and lists the journal snapshots.
func TestSecondControlNodeRestores(t *testing.T) {
	lab := labtest.Require(t)
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); it is the format oracle")
	}
	hs := lockHosts(t, lab, "sys1", "sys2", "sysv1")
	fwSafetyNet(t, hs)
	before := hostStates(t, hs)

	cfg := s3test.Bucket(t, lab) // sets the credentials' variables
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("second control node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "s3:" + lab.S3Endpoint + "/" + cfg.Bucket + "/holiday"
	plan := repoPlan(t, lab, fmt.Sprintf("{url: %q, password_file: %s, s3: {access_key_id_env: %s, secret_access_key_env: %s, region: %s}}",
		url, pw, cfg.AccessKeyIDEnv, cfg.SecretAccessKeyEnv, lab.S3Region),
		map[string]string{"sys1": "nginx", "sys2": "postgresql", "sysv1": "nginx"})
	first := newCLI(t, plan)
	awsEnv := []string{"AWS_ACCESS_KEY_ID=" + lab.S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + lab.S3SecretKey, "AWS_DEFAULT_REGION=" + lab.S3Region}
	if out, code := first.runRaw(t, awsEnv, "repo", "init", "--repo", url, "--password-file", pw); code != 0 {
		t.Fatalf("repo init: exit %d\n%s", code, out)
	}
	restic := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("restic", append([]string{"-r", url, "--no-cache", "--password-file", pw}, args...)...)
		cmd.Env = append(os.Environ(), awsEnv...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// Whatever happens below, the hosts go back: first from a control
	// node that still has its state, else from the repository.
	var last *cli
	t.Cleanup(func() {
		if !t.Failed() || last == nil {
			return
		}
		last.run(t, nil, "restore")
		assertStates(t, hs, before, "still differs after the cleanup restore")
	})

	// 1. From the repository alone.
	last = first
	out, code := first.run(t, nil, "lockdown")
	if code != 0 {
		t.Fatalf("lockdown: exit %d", code)
	}
	run := runOf(t, out)
	if !strings.Contains(out, "journals: saved to the repository "+url+" (3 kind:journal snapshots, tag run:"+run+")") {
		t.Errorf("lockdown does not say it saved the journals to the repository:\n%s", out)
	}
	if d := hostStates(t, hs); d["sys1"] == before["sys1"] {
		t.Fatal("lockdown changed nothing on sys1")
	}
	if err := os.RemoveAll(filepath.Dir(first.stateDir)); err != nil { // its state and its key: the disk died
		t.Fatal(err)
	}
	second := newCLI(t, plan)
	last = second
	out, code = second.run(t, nil, "restore")
	if code != 0 {
		t.Fatalf("restore on the second control node: exit %d", code)
	}
	for _, h := range []string{"sys1", "sys2", "sysv1"} {
		if !regexp.MustCompile(h + `\s+journal of run ` + run + ` read from the repository \(snapshot`).MatchString(out) {
			t.Errorf("restore does not say it read %s's journal from the repository", h)
		}
	}
	assertStates(t, hs, before, "after restore from the repository on a second control node")

	var sns []struct {
		Hostname string   `json:"hostname"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(restic("snapshots", "--json", "--tag", "kind:journal,run:"+run)), &sns); err != nil {
		t.Fatal(err)
	}
	saved := map[string]int{}
	for _, sn := range sns {
		for _, tag := range sn.Tags {
			if by, ok := strings.CutPrefix(tag, "saved-by:"); ok {
				saved[sn.Hostname+" "+by]++
			}
		}
	}
	for _, h := range []string{"sys1", "sys2", "sysv1"} {
		if saved[h+" lockdown"] != 1 || saved[h+" restore"] != 1 {
			t.Errorf("restic snapshots: %s has %d lockdown and %d restore journal snapshots, want 1 and 1 (%v)", h, saved[h+" lockdown"], saved[h+" restore"], saved)
		}
	}

	// 2. From the hosts' copies, verified with the key the repository keeps.
	third := newCLI(t, plan)
	last = third
	if _, code := third.run(t, nil, "lockdown"); code != 0 {
		t.Fatalf("second lockdown: exit %d", code)
	}
	fourth := newCLI(t, plan)
	if _, code := fourth.run(t, nil, "restore", "--from-host"); code != 0 {
		t.Fatalf("restore --from-host on another control node: exit %d", code)
	}
	last = fourth
	assertStates(t, hs, before, "after restore --from-host on another control node")

	// 3. A journal altered in the repository (by someone holding its
	// password) is refused; no host changes.
	fifth := newCLI(t, plan)
	last = fifth
	out, code = fifth.run(t, nil, "lockdown")
	if code != 0 {
		t.Fatalf("third lockdown: exit %d", code)
	}
	run = runOf(t, out)
	locked := hostStates(t, hs)
	tamper := t.TempDir()
	j, err := os.ReadFile(filepath.Join(fifth.stateDir, "runs", run, "sys1.journal"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(j), "\n")
	lines[1] = strings.Replace(lines[1], `"time":"20`, `"time":"19`, 1)
	key, _ := os.ReadFile(fifth.key)
	os.WriteFile(filepath.Join(tamper, "sys1.journal"), []byte(strings.Join(lines, "")), 0o600)
	os.WriteFile(filepath.Join(tamper, "journal.key"), key, 0o600)
	cmd := exec.Command("restic", "-r", url, "--no-cache", "--password-file", pw, "backup", "--host", "sys1",
		"--tag", "holiday,kind:journal,run:"+run+",plan:journal-repo-test,command:lockdown,saved-by:lockdown", "sys1.journal", "journal.key")
	cmd.Dir = tamper
	cmd.Env = append(os.Environ(), awsEnv...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic backup of the altered journal: %v\n%s", err, b)
	}
	sixth := newCLI(t, plan)
	out, code = sixth.run(t, nil, "restore")
	if code == 0 || !strings.Contains(out, "the repository's journal of sys1, run "+run) || !strings.Contains(out, "line 2: MAC mismatch") || !strings.Contains(out, "nothing was applied") {
		t.Errorf("restore from an altered journal: exit %d; want a failure naming sys1's journal, line 2 and that nothing was applied", code)
	}
	assertStates(t, hs, locked, "changed by a restore that refused the altered journal")
	if _, code := fifth.run(t, nil, "restore"); code != 0 {
		t.Fatalf("restore on the control node that locked down: exit %d", code)
	}
	assertStates(t, hs, before, "after the last restore")

	if out := restic("check"); !strings.Contains(out, "no errors were found") {
		t.Errorf("restic check:\n%s", out)
	}
}

// TestJournalRepositoryUnreachable: the plan's repository is not there at
// the end of lockdown: the hosts are locked down all the same (exit 0),
// and the run warns, with the command that saves the journals later.
// Once the repository exists, that command saves them and a second
// control node restores from them.
func TestJournalRepositoryUnreachable(t *testing.T) {
	lab := labtest.Require(t)
	hs := lockHosts(t, lab, "sysv1")
	fwSafetyNet(t, hs)
	before := hostStates(t, hs)
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("not there yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	repoDir := filepath.Join(dir, "mnt", "repo") // the mount is missing
	plan := repoPlan(t, lab, fmt.Sprintf("{url: %s, password_file: %s}", repoDir, pw), map[string]string{"sysv1": "nginx"})
	first := newCLI(t, plan)
	t.Cleanup(func() {
		if t.Failed() {
			first.run(t, nil, "restore")
		}
	})
	// The repository also keeps the baselines: without it lockdown stops
	// before any host unless told to go on without them.
	if out, code := first.run(t, nil, "lockdown"); code != 1 || !strings.Contains(out, "--without-baseline") || strings.Contains(out, "lockdown run") {
		t.Fatalf("lockdown with the repository unreachable: exit %d, want 1 naming --without-baseline, no run\n%s", code, out)
	}
	out, code := first.run(t, nil, "lockdown", "--without-baseline")
	if code != 0 {
		t.Fatalf("lockdown --without-baseline with the repository unreachable: exit %d, want 0 (the hosts are locked down)", code)
	}
	run := runOf(t, out)
	retry := fmt.Sprintf("holiday save-journal -f %s --run %s --state-dir %s --journal-key %s", plan, run, first.stateDir, first.key)
	for _, want := range []string{"WARNING: the journals of run " + run + " were NOT saved to the repository: repository " + repoDir + " does not exist", retry} {
		if !strings.Contains(out, want) {
			t.Errorf("lockdown output does not say %q", want)
		}
	}
	if hostStates(t, hs)["sysv1"] == before["sysv1"] {
		t.Fatal("lockdown changed nothing on sysv1")
	}

	if out, code := first.runRaw(t, nil, "repo", "init", "--repo", repoDir, "--password-file", pw); code != 0 {
		t.Fatalf("repo init: exit %d\n%s", code, out)
	}
	args := strings.Fields(retry)[1:]
	if out, code := first.runRaw(t, nil, args...); code != 0 || !strings.Contains(out, "sysv1: snapshot ") {
		t.Fatalf("%s: exit %d\n%s", retry, code, out)
	}
	second := newCLI(t, plan)
	// No baseline of the run: the gate cannot check the host, which stays
	// closed until the operator says why it may open.
	if out, code := second.run(t, nil, "restore"); code != 2 || !regexp.MustCompile(`sysv1: gate: not checked: sysv1: no baseline of run `+run).MatchString(out) {
		t.Fatalf("restore of a run without baselines: exit %d, want 2 with sysv1 not checked\n%s", code, out)
	}
	if out, code := second.run(t, nil, "restore", "--accept-findings", "locked down --without-baseline: the repository was not mounted"); code != 0 {
		t.Fatalf("restore --accept-findings on a second control node after save-journal: exit %d\n%s", code, out)
	}
	assertStates(t, hs, before, "after restore from the journals save-journal stored")
}
