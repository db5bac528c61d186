package main

import (
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

	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// treeState lists every node under the roots on the host as one line
// each: type, mode, owner, size, mtime in ns, symlink target, hard-link
// count, sha256 of a file's content and the xattrs. Access times are
// left out (reading moves them), and so is a directory's size: it is the
// filesystem's bookkeeping, not content (on the lab's overlay a directory
// copied up to the upper layer by any metadata change reports another).
const treeState = `
import hashlib, os, stat, sys
for root in sys.argv[1:]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for p in [d] + sorted(os.path.join(d, f) for f in files) + sorted(os.path.join(d, x) for x in dirs if os.path.islink(os.path.join(d, x))):
            st = os.lstat(p)
            line = [p, oct(st.st_mode), "%d:%d" % (st.st_uid, st.st_gid), "-" if stat.S_ISDIR(st.st_mode) else str(st.st_size), str(st.st_mtime_ns)]
            if stat.S_ISLNK(st.st_mode):
                line.append("-> " + os.readlink(p))
            else:
                line.append("links=%d" % (st.st_nlink if stat.S_ISREG(st.st_mode) else 0))
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        line.append(hashlib.sha256(f.read()).hexdigest())
                for x in sorted(os.listxattr(p, follow_symlinks=False)):
                    line.append("%s=%s" % (x, os.getxattr(p, x, follow_symlinks=False).hex()))
            print(" ".join(line))
`

// writtenJSON is rollback --json's final figures of the writing.
type writtenJSON struct {
	Kind                        string
	Files, Blocks, Bytes, Total int64
	Elapsed                     int64 `json:"elapsed_ns"`
}

func hostTree(t *testing.T, h *labtest.Host, roots ...string) string {
	t.Helper()
	return h.MustSSH(t, "root", "python3 -c '"+treeState+"' "+strings.Join(roots, " "))
}

// pushFile copies a local file to the host as root (mode 0700).
func pushFile(t *testing.T, h *labtest.Host, local, remote string) {
	t.Helper()
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r, err := h.SSHStdin(ctx, "root", "cat > "+remote+" && chmod 700 "+remote, f); err != nil {
		t.Fatalf("copy %s to %s:%s: %v\n%s%s", local, h.Name, remote, err, r.Stdout, r.Stderr)
	}
}

// TestRollbackFilesLab: stock restic on sys1 snapshots /etc and /var/www
// (the lockdown snapshot, tagged as lockdown tags them); an intruder then
// changes content, modes, owners, times and an xattr, adds a webshell,
// deletes a file and retargets a symlink; `holiday rollback` brings the
// trees back exactly (sha256, mode, owner, mtime, xattrs, links), and
// rolling back from its pre-rollback snapshot returns the changed state.
func TestRollbackFilesLab(t *testing.T) {
	testenv.Short(t, "builds the binary and changes a lab host's /etc and /var/www")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic): it takes the snapshot rolled back to")
		return
	}
	h := lab.MustHost(t, "sys1")
	h.Lock(t)
	rp := newS3Repo(t, lab, "repo", "rollback lab\n")
	bin, dir, pw, repoURL, env := rp.bin, rp.dir, rp.pw, rp.url, rp.env
	if r := runHoliday(t, bin, env, "repo", "init", "--repo", repoURL, "--password-file", pw); r.code != 0 {
		t.Fatalf("repo init: %d %s", r.code, r.stderr)
	}
	plan := filepath.Join(dir, "plan.yaml")
	writeFile(t, plan, fmt.Sprintf(`version: 1
name: rollback-test
management: [10.213.0.0/24, "fd00:213::/64"]
ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo, connect_timeout: 10s}
repository: {url: "%s", password_file: %s}
defaults: {backup: none}
hosts:
  - {name: sys1, address: %s}
  - {name: sysv1, address: %s}
`, lab.SSHKey, lab.KnownHosts, repoURL, pw, h.Addr, lab.Host("sysv1").Addr))
	rollback := func(args ...string) result {
		t.Helper()
		return runHoliday(t, bin, env, append([]string{"rollback", "-f", plan, "--state-dir", filepath.Join(dir, "state"),
			"--journal-key", filepath.Join(dir, "journal.key")}, args...)...)
	}

	// The state before: fixtures beside the seeded files.
	const fixtures = "/etc/rbtest /var/www/html/rb"
	t.Cleanup(func() { h.MustSSH(t, "root", "rm -rf "+fixtures+" /root/.rb-restic") })
	h.MustSSH(t, "root", `set -e
mkdir -p /etc/rbtest/sub /var/www/html/rb
printf 'listen 80;\n' > /etc/rbtest/site.conf; chmod 640 /etc/rbtest/site.conf; chown root:www-data /etc/rbtest/site.conf
printf 'tool' > /etc/rbtest/su-tool; chmod 4755 /etc/rbtest/su-tool
printf 'shared' > /etc/rbtest/a; ln /etc/rbtest/a /etc/rbtest/sub/b
ln -s site.conf /etc/rbtest/current
python3 -c 'import os; os.setxattr("/etc/rbtest/site.conf", "user.origin", b"package")'
printf '<h1>shop</h1>\n' > /var/www/html/rb/index.html
printf 'terms' > /var/www/html/rb/terms.txt
chmod 1777 /etc/rbtest/sub
touch -d '2026-01-02 03:04:05.123456789' /etc/rbtest/site.conf /var/www/html/rb/index.html`)

	// The lockdown snapshot, by stock restic on the host.
	pushFile(t, h, "/usr/bin/restic", "/root/.rb-restic")
	resticEnv := fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s RESTIC_PASSWORD='rollback lab'",
		lab.S3AccessKey, lab.S3SecretKey, lab.S3Region)
	out := h.MustSSH(t, "root", resticEnv+" /root/.rb-restic -r "+repoURL+" --no-cache --json -q backup --host sys1 --tag holiday --tag kind:files --tag run:lab-lockdown /etc /var/www")
	var summary struct {
		SnapshotID string `json:"snapshot_id"`
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		json.Unmarshal([]byte(l), &summary)
	}
	if summary.SnapshotID == "" {
		t.Fatalf("restic backup printed no snapshot id:\n%s", out)
	}
	before := hostTree(t, h, "/etc", "/var/www")

	// The intruder.
	h.MustSSH(t, "root", `set -e
printf 'listen 80; include /tmp/evil;\n' > /etc/rbtest/site.conf
chmod 666 /etc/rbtest/site.conf; chown guest /etc/rbtest/site.conf
python3 -c 'import os; os.setxattr("/etc/rbtest/site.conf", "user.origin", b"intruder"); os.setxattr("/etc/rbtest/a", "user.mark", b"x")'
chmod 755 /etc/rbtest/su-tool
rm /etc/rbtest/sub/b; printf 'shared' > /etc/rbtest/sub/b
ln -sfn /etc/shadow /etc/rbtest/current
printf '<?php system($_GET["c"]); ?>' > /var/www/html/rb/shell.php
mkdir /var/www/html/rb/up; printf 'x' > /var/www/html/rb/up/x.php
rm /var/www/html/rb/terms.txt
touch -d '2020-01-01' /var/www/html/rb/index.html`)
	changed := hostTree(t, h, "/etc", "/var/www")
	if changed == before {
		t.Fatal("the intruder's changes did not change the listing")
	}

	// Dry run: exactly the intruder's changes, nothing changed.
	r := rollback("sys1", "--snapshot", summary.SnapshotID, "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("dry run:\n%s", r.stdout)
	for _, want := range []string{
		"remove  /var/www/html/rb/shell.php", "remove  /var/www/html/rb/up", "create  /var/www/html/rb/terms.txt",
		"write   /etc/rbtest/site.conf", "meta    /etc/rbtest/su-tool", "replace /etc/rbtest/current", "link    /etc/rbtest/sub/b",
		"write   /etc/rbtest/a", "files added after the snapshot under a restored directory are removed",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run does not say %q", want)
		}
	}
	if extra := regexp.MustCompile(`(?m)^  (remove|create|write|replace|link|meta) +(/\S+)`).FindAllStringSubmatch(r.stdout, -1); len(extra) > 13 {
		t.Errorf("dry run lists %d changes; the intruder made about 11 (the directories' mtimes aside)", len(extra))
	}
	if got := hostTree(t, h, "/etc", "/var/www"); got != changed {
		t.Fatalf("the dry run changed the host:\n%s", treeDiff(changed, got))
	}

	// Another host's snapshot: refused before any host is reached.
	r = rollback("sysv1", "--snapshot", summary.SnapshotID)
	if r.code == 0 || !strings.Contains(r.stderr, `is of host "sys1", not sysv1: refusing to write another host's files onto it`) {
		t.Errorf("sys1's snapshot onto sysv1: exit %d, %s", r.code, r.stderr)
	}

	// The rollback.
	r = rollback("sys1", "--snapshot", summary.SnapshotID, "--json")
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	var res struct {
		PreSnapshot string `json:"pre_rollback_snapshot"`
		Applied     struct{ Written, Meta, Removed int }
		Written     writtenJSON
		Run         struct {
			Run   string
			Hosts []struct {
				Status, Journal string
				HostCopy        string `json:"host_copy"`
			}
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("rollback --json: %v\n%s", err, r.stdout)
	}
	if res.PreSnapshot == "" || res.Applied.Removed != 2 || res.Applied.Written < 4 || len(res.Run.Hosts) != 1 || res.Run.Hosts[0].Status != "done" {
		t.Fatalf("rollback result: %+v", res)
	}
	// the final figures: every byte of the changed files' content sent
	if w := res.Written; w.Kind != "files" || w.Files < 1 || w.Total <= 0 || w.Bytes != w.Total || w.Elapsed <= 0 {
		t.Errorf("rollback --json written: %+v; want files, all of the content's bytes", w)
	}
	if _, err := os.Stat(res.Run.Hosts[0].Journal); err != nil {
		t.Errorf("no journal of the rollback run: %v", err)
	}
	if got := hostTree(t, h, "/etc", "/var/www"); got != before {
		t.Fatalf("after rollback the host differs from the snapshot's state:\n%s", treeDiff(before, got))
	}
	if out := h.MustSSH(t, "root", "ls -a /etc/rbtest /var/www/html/rb"); strings.Contains(out, ".holiday-rollback-") {
		t.Errorf("temp files left behind:\n%s", out)
	}
	// The host's journal copy names the pre-rollback snapshot in the
	// step's intent, before anything was written.
	if cp := res.Run.Hosts[0].HostCopy; cp == "" || !strings.Contains(h.MustSSH(t, "root", "cat "+cp), `"pre_rollback_snapshot":"`+res.PreSnapshot) {
		t.Errorf("the host's journal copy %q does not name the pre-rollback snapshot %s", cp, res.PreSnapshot)
	}

	// Rolling back the rollback: the intruder's state again.
	r = rollback("sys1", "--snapshot", res.PreSnapshot)
	if r.code != 0 {
		t.Fatalf("rollback of the rollback: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := hostTree(t, h, "/etc", "/var/www"); got != changed {
		t.Fatalf("rolling back the rollback did not return the changed state:\n%s", treeDiff(changed, got))
	}
	// And forward again, by the run's default pick (the newest lockdown
	// snapshot of the host), leaving the host as the test found it.
	if r := rollback("sys1"); r.code != 0 {
		t.Fatalf("rollback to the lockdown snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := hostTree(t, h, "/etc", "/var/www"); got != before {
		t.Fatalf("after the second rollback:\n%s", treeDiff(before, got))
	}
}

// treeDiff lists the lines only in a (-) or only in b (+).
func treeDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRollbackDiskLab: lockdown images sysv1's lab disk (/dev/vdb, ext4);
// rollback refuses it while mounted; zeros over its start (the
// superblock) are written back from the image, only the differing block
// crossing, and e2fsck -n passes; rolling back from the pre-rollback
// snapshot returns the zeros, and forward again the filesystem.
func TestRollbackDiskLab(t *testing.T) {
	testenv.Short(t, "builds the binary and writes a lab host's block device")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	h := lab.MustHost(t, "sysv1")
	h.Lock(t)
	const dev, mnt = "/dev/vdb", "/srv/data"
	img := filepath.Join(lab.Dir, "disk-sysv1.img")
	if _, err := os.Stat(img); err != nil {
		t.Fatalf("the lab's disk image: %v (lab/disk.sh up)", err)
	}
	// Should the test fail half-way, the disk is put back from a copy.
	keep := filepath.Join(t.TempDir(), "disk.img")
	h.MustSSH(t, "root", "umount "+mnt)
	if out, err := exec.Command("cp", "--sparse=always", img, keep).CombinedOutput(); err != nil {
		t.Fatalf("copy of the disk: %v %s", err, out)
	}
	t.Cleanup(func() {
		h.SSH(context.Background(), "root", "umount "+mnt+" 2>/dev/null")
		if out, err := exec.Command("dd", "if="+keep, "of="+img, "conv=notrunc,fsync", "bs=4M", "status=none").CombinedOutput(); err != nil {
			t.Errorf("putting the disk back: %v %s", err, out)
		}
		h.MustSSH(t, "root", "echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; mount "+dev+" "+mnt)
	})
	sha := func() string {
		t.Helper()
		return strings.Fields(h.MustSSH(t, "root", "sha256sum "+dev))[0]
	}

	plan, _, _, state := backupLab(t, "      - {disk: "+dev+"}\n")
	before := sha()
	res, stderr, code := lockdownJSON(t, plan, state)
	if code != 0 || len(res.Hosts) != 1 || len(res.Hosts[0].Snapshots) != 1 {
		t.Fatalf("lockdown: exit %d, %+v\n%s", code, res, stderr)
	}
	lockdownRun := res.Run
	rollback := func(args ...string) (string, string, int) {
		t.Helper()
		out, errOut, code := runPlanBinary(t, append([]string{"rollback", "-f", plan, "--state-dir", state,
			"--journal-key", filepath.Join(state, "journal.key"), "sysv1"}, args...)...)
		t.Logf("rollback %v: exit %d\n%s%s", args, code, out, errOut)
		return out, errOut, code
	}

	// Mounted: refused, one line, nothing written.
	h.MustSSH(t, "root", "mount "+dev+" "+mnt)
	_, errOut, code := rollback("--run", lockdownRun, "--device", dev)
	if code == 0 || !strings.Contains(errOut, "in use: mounted at "+mnt) || !strings.Contains(errOut, "refusing to write over it") {
		t.Fatalf("a mounted device: exit %d, %s", code, errOut)
	}
	h.MustSSH(t, "root", "umount "+mnt)

	// The intruder zeroes the start of the disk.
	h.MustSSH(t, "root", "dd if=/dev/zero of="+dev+" bs=1M count=2 conv=fsync status=none")
	zeroed := sha()
	if zeroed == before {
		t.Fatal("zeros did not change the disk")
	}
	out, _, code := rollback("--run", lockdownRun, "--device", dev, "--dry-run")
	if code != 0 || !strings.Contains(out, "1 of 16 blocks (4194304 bytes each) differ") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	if sha() != zeroed {
		t.Fatal("the dry run changed the disk")
	}
	out, _, code = rollback("--run", lockdownRun, "--device", dev, "--json")
	var rr struct {
		PreSnapshot string                      `json:"pre_rollback_snapshot"`
		DiskApplied struct{ Blocks, Bytes int } `json:"disk_applied"`
		Written     writtenJSON
		Run         struct{ Hosts []struct{ Status string } }
	}
	if err := json.Unmarshal([]byte(out), &rr); err != nil || code != 0 {
		t.Fatalf("rollback: exit %d, %v\n%s", code, err, out)
	}
	if rr.PreSnapshot == "" || rr.DiskApplied.Blocks != 1 || rr.DiskApplied.Bytes != 4<<20 || rr.Run.Hosts[0].Status != "done" {
		t.Fatalf("rollback of one zeroed block: %+v", rr)
	}
	if w := rr.Written; w.Kind != "disk" || w.Blocks != 1 || w.Bytes != 4<<20 || w.Total != 4<<20 || w.Elapsed <= 0 {
		t.Errorf("rollback --json written: %+v; want the one block of 4 MiB of 4 MiB", w)
	}
	if got := sha(); got != before {
		t.Fatalf("after rollback the disk's sha256 is %s, the image's %s", got, before)
	}
	if out, err := exec.Command("e2fsck", "-n", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -n after rollback: %v\n%s", err, out)
	}

	// The rollback of the rollback: the zeros again.
	if _, _, code := rollback("--snapshot", rr.PreSnapshot); code != 0 {
		t.Fatal("rollback of the rollback failed")
	}
	if got := sha(); got != zeroed {
		t.Fatalf("rolling back the rollback: sha256 %s, want the zeroed disk's %s", got, zeroed)
	}
	// Forward again by the default pick: the newest lockdown image of the
	// device (not the pre-rollback one).
	if _, _, code := rollback("--device", dev); code != 0 {
		t.Fatal("second rollback failed")
	}
	if got := sha(); got != before {
		t.Fatalf("second rollback: sha256 %s, want %s", got, before)
	}
}

// TestRollbackDatabaseLab: lockdown dumps sys2's PostgreSQL and MariaDB
// shop; an intruder drops the items table; rollback --into loads the dump
// into a new database, --replace without --yes and without a terminal is
// refused, with --yes it loads over shop (SELECT returns the seeded rows);
// rolling back from the pre-rollback dump returns the table-less shop.
func TestRollbackDatabaseLab(t *testing.T) {
	testenv.Short(t, "builds the binary and changes a lab host's databases")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	h := lab.MustHost(t, "sys2")
	h.Lock(t)
	plan, _, _, state := backupLabOn(t, "sys2", "10.213.0.12",
		"      - postgres: {databases: [shop]}\n      - mysql: {databases: [shop]}\n")
	res, stderr, code := lockdownJSON(t, plan, state)
	if code != 0 || len(res.Hosts) != 1 || res.Hosts[0].Status != "done" {
		t.Fatalf("lockdown: exit %d, %+v\n%s", code, res, stderr)
	}
	rollback := func(args ...string) (string, string, int) {
		t.Helper()
		out, errOut, code := runPlanBinary(t, append([]string{"rollback", "-f", plan, "--state-dir", state,
			"--journal-key", filepath.Join(state, "journal.key"), "sys2"}, args...)...)
		t.Logf("rollback %v: exit %d\n%s%s", args, code, out, errOut)
		return out, errOut, code
	}
	const seeded = "1|sunscreen|12\n2|towel|5\n3|flip-flops|7\n"
	for _, e := range []struct {
		engine, query, drop, dropNew, seed string
	}{
		{"postgres",
			"runuser -u postgres -- psql -At -F'|' -d %s -c 'SELECT id, name, qty FROM items ORDER BY id' 2>/dev/null",
			"runuser -u postgres -- psql -q -d shop -c 'DROP TABLE items'",
			"runuser -u postgres -- dropdb --if-exists shop_rb",
			""},
		{"mysql",
			"mariadb -N -B %s -e 'SELECT id, name, qty FROM items ORDER BY id' 2>/dev/null | tr '\\t' '|'",
			"mariadb shop -e 'DROP TABLE items'",
			"mariadb -e 'DROP DATABASE IF EXISTS shop_rb'",
			""},
	} {
		t.Run(e.engine, func(t *testing.T) {
			query := func(db string) string {
				r, _ := h.SSH(context.Background(), "root", fmt.Sprintf(e.query, db))
				return r.Stdout
			}
			if got := query("shop"); got != seeded {
				t.Fatalf("shop before the test: %q", got)
			}
			snap := ""
			for _, s := range res.Hosts[0].Snapshots {
				if s.Kind == e.engine {
					snap = s.Snapshot
				}
			}
			t.Cleanup(func() { h.SSH(context.Background(), "root", e.dropNew) })
			h.MustSSH(t, "root", e.drop)
			dropped := query("shop")
			if dropped == seeded {
				t.Fatal("the table is still there")
			}
			// Whatever happens, shop gets its table back.
			t.Cleanup(func() {
				if query("shop") != seeded {
					rollback("--snapshot", snap, "--replace", "--yes")
				}
			})

			if _, _, code := rollback("--snapshot", snap, "--into", "shop_rb"); code != 0 {
				t.Fatal("rollback --into failed")
			}
			if got := query("shop_rb"); got != seeded {
				t.Errorf("shop_rb holds %q, want the seeded rows", got)
			}
			_, errOut, code := rollback("--database", e.engine+"/shop", "--replace")
			if code == 0 || !strings.Contains(errOut, "confirm with --yes (there is no terminal to ask on)") {
				t.Fatalf("--replace without --yes, no terminal: exit %d: %s", code, errOut)
			}
			if query("shop") != dropped {
				t.Fatal("the refused --replace changed shop")
			}
			out, _, code := rollback("--snapshot", snap, "--replace", "--yes", "--json")
			var rr struct {
				PreSnapshot string `json:"pre_rollback_snapshot"`
				Written     writtenJSON
			}
			if json.Unmarshal([]byte(out), &rr); code != 0 || rr.PreSnapshot == "" {
				t.Fatalf("--replace --yes: exit %d, %s", code, out)
			}
			if w := rr.Written; w.Kind != e.engine || w.Total <= 0 || w.Bytes != w.Total || w.Elapsed <= 0 {
				t.Errorf("--replace --json written: %+v; want the whole dump's bytes loaded", w)
			}
			if got := query("shop"); got != seeded {
				t.Fatalf("after --replace shop holds %q, want the seeded rows", got)
			}
			if _, _, code := rollback("--snapshot", rr.PreSnapshot, "--replace", "--yes"); code != 0 {
				t.Fatal("rollback of the rollback failed")
			}
			if got := query("shop"); got != dropped {
				t.Fatalf("rolling back the rollback: shop answers %q, want %q (no table)", got, dropped)
			}
			if _, errOut, _ := rollback("--database", "shop", "--run", res.Run, "--dry-run"); !strings.Contains(errOut, "both postgres and mysql have a dump of it") {
				t.Errorf("--database shop, held by both engines: %s", errOut)
			}
			if _, _, code := rollback("--database", e.engine+"/shop", "--run", res.Run, "--replace", "--yes"); code != 0 {
				t.Fatal("rollback by --database failed")
			}
			if got := query("shop"); got != seeded {
				t.Fatalf("shop holds %q after the last rollback", got)
			}
		})
	}
}
