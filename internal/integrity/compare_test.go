package integrity

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree writes files under a temp root; a value starting with "->" is a
// symlink, one starting with "0755:" an executable.
func tree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(full)
		var err error
		switch {
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), full)
		case strings.HasPrefix(content, "0755:"):
			err = os.WriteFile(full, []byte(strings.TrimPrefix(content, "0755:")), 0o755)
		default:
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

const dpkgStatus = `Package: procps
Status: install ok installed
Architecture: amd64
Version: 2:4.0.2-3

Package: coreutils
Status: install ok installed
Architecture: amd64
Version: 9.1-1

Package: gone
Status: deinstall ok config-files
Version: 1
`

func baseTree() map[string]string {
	return map[string]string{
		"etc/hostname":                     "web1\n",
		"etc/passwd":                       "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n",
		"etc/group":                        "root:x:0:\nsudo:x:27:ops\nwww-data:x:33:\n",
		"etc/shadow":                       "root:*:1::::::\nops:$y$abc:1::::::\n",
		"etc/ssh/sshd_config":              "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n",
		"etc/ssh/sshd_config.d/a.conf":     "AuthorizedKeysFile /etc/ssh/keys/%u .ssh/authorized_keys\n",
		"root/.ssh/authorized_keys":        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEtvcHMta2V5LWZvci10ZXN0cy0wMDAwMDAwMDAwMDAw ops@laptop\n",
		"etc/crontab":                      "# m h dom mon dow user command\n",
		"etc/resolv.conf":                  "nameserver 10.0.0.1\n",
		"usr/bin/ps":                       "0755:ELF ps",
		"usr/bin/ls":                       "0755:ELF ls",
		"usr/bin/helper":                   "0755:ELF helper, no package",
		"usr/lib/locale/locale-archive":    "locales v1",
		"bin":                              "->usr/bin",
		"var/lib/dpkg/status":              dpkgStatus,
		"var/lib/dpkg/info/procps.list":    "/.\n/bin/ps\n",
		"var/lib/dpkg/info/coreutils.list": "/.\n/bin/ls\n",
		"var/www/html/index.php":           "<?php echo 'hello'; ?>\n",
		"var/log/syslog":                   "line 1\nline 2\n",
		"var/log/nginx/access.log":         "GET / 200\n",
		"var/log/wtmp":                     "0123456789abcdef",
		"proc/modules":                     "ext4 1 2 - Live 0x0\n",
		"proc/sys/kernel/tainted":          "0\n",
		"proc/net/tcp": "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0\n",
	}
}

var roots = []string{"/var/www"}

// TestCompareFakeTree changes a fake tree in every way the check judges
// and wants each difference classified, naming its object.
func TestCompareFakeTree(t *testing.T) {
	root := t.TempDir()
	tree(t, root, baseTree())
	base := Collect(context.Background(), root, Args{WebRoots: roots})
	if len(base.Errors) > 0 {
		t.Fatalf("baseline problems: %v", base.Errors)
	}
	if len(base.Keys) != 1 || base.Keys[0].User != "root" {
		t.Fatalf("keys: %+v", base.Keys)
	}
	if base.Host != "web1" {
		t.Errorf("host %q", base.Host)
	}

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("GET / 200\nGET /a 200\n"))
	zw.Close()
	tree(t, root, map[string]string{
		"etc/passwd":                    "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nbackup2:x:0:0::/root:/bin/sh\n",
		"etc/group":                     "root:x:0:\nsudo:x:27:ops,www-data\nwww-data:x:33:\n",
		"etc/ssh/keys/ops":              "command=\"/bin/sh\" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 intruder\n",
		"etc/cron.d/job":                "* * * * * root /tmp/x\n",
		"etc/ld.so.preload":             "/lib/evil.so\n",
		"etc/resolv.conf":               "nameserver 10.0.0.2\n",
		"etc/motd":                      "changed\n",
		"usr/bin/ps":                    "0755:trojaned",
		"usr/bin/ls":                    "0755:ELF ls 9.2",
		"usr/bin/newthing":              "0755:ELF",
		"usr/lib/locale/locale-archive": "locales v2",
		"var/lib/dpkg/status":           strings.Replace(strings.Replace(dpkgStatus, "9.1-1", "9.2-1", 1), "2:4.0.2-3", "2:4.0.2-4", 1),
		"var/log/dpkg.log":              "2020-01-01 00:00:00 upgrade procps:amd64 2:4.0.2-2 2:4.0.2-3\n" + time.Now().Format("2006-01-02 15:04:05") + " upgrade coreutils:amd64 9.1-1 9.2-1\n",
		"var/www/html/up.php":           "<?php @eval(base64_decode($_POST['z'])); ?>",
		"var/www/html/about.html":       "<p>about</p>",
		"var/log/syslog":                "line 1\nline 2\nline 3\n",
		"var/log/nginx/access.log":      "GET /b 200\n",
		"var/log/nginx/access.log.1.gz": gz.String(),
		"var/log/wtmp":                  "01234",
		"tmp/.x/run":                    "0755:ELF",
		"tmp/notes.txt":                 "not an executable",
		"proc/modules":                  "ext4 1 2 - Live 0x0\nxt_conntrack 1 0 - Live 0x0\nrootkit 1 0 - Live 0x0 (OE)\n",
		"proc/sys/kernel/tainted":       "12288\n",
		"proc/net/tcp": "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
			"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0\n" +
			"   1: 00000000:7A69 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 100 0 0 10 0\n",
		"proc/4242/stat":    "4242 (kworkerd) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n",
		"proc/4242/status":  "Name:\tkworkerd\nUid:\t0\t0\t0\t0\n",
		"proc/4242/cmdline": "kworkerd\x00-d\x00",
		"proc/4242/exe":     "->/dev/shm/.k/kworkerd",
		"proc/stat":         "btime 1700000000\n",
	})
	if err := os.Chmod(filepath.Join(root, "usr/bin/helper"), os.ModeSetuid|0o755); err != nil {
		t.Fatal(err)
	}
	now := Collect(context.Background(), root, CheckArgs(base, roots))
	r, err := Compare(base, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Class{}
	for _, f := range r.Findings {
		got[f.Kind+" "+f.Object] = f.Class
		t.Logf("%s %s", f.Class, f)
	}
	for _, w := range []struct {
		key   string
		class Class
	}{
		{"new-uid0-account backup2", Indicator},
		{"group-member www-data", Indicator},
		{"new-authorized-key /etc/ssh/keys/ops", Indicator},
		{"persistence-cron /etc/cron.d/job", Indicator},
		{"ld.so.preload /etc/ld.so.preload", Indicator},
		{"changed-binary /usr/bin/ps", Indicator},
		{"changed-binary-by-package /usr/bin/ls", Drift},
		{"package-changed coreutils", Drift},
		{"package-db-edited procps", Indicator}, // its version changed, dpkg.log does not say so
		{"new-system-file /usr/bin/newthing", Indicator},
		{"changed-cache-during-upgrade /usr/lib/locale/locale-archive", Drift},
		{"changed-binary /usr/bin/helper", Indicator}, // now SUID; no package explains an executable
		{"new-suid /usr/bin/helper", Indicator},
		{"webshell /var/www/html/up.php", Indicator},
		{"new-web-file /var/www/html/about.html", Drift},
		{"new-etc /etc/motd", Drift},
		{"changed-etc /etc/resolv.conf", Churn},
		{"log-grew /var/log/syslog", Churn},
		{"log-rotated /var/log/nginx/access.log", Churn},
		{"log-truncated /var/log/wtmp", Indicator},
		{"executable-in-tmp /tmp/.x/run", Indicator},
		{"new-kernel-module rootkit", Indicator},
		{"module-autoloaded xt_conntrack", Churn},
		{"kernel-taint kernel", Indicator},
		{"new-listener tcp 0.0.0.0:31337", Indicator},
		{"suspicious-process pid 4242 (kworkerd)", Indicator},
	} {
		if c, ok := got[w.key]; !ok {
			t.Errorf("missing finding %q", w.key)
		} else if c != w.class {
			t.Errorf("%s: class %s, want %s", w.key, c, w.class)
		}
	}
	for k := range got {
		if strings.Contains(k, "notes.txt") {
			t.Errorf("a tmp file that is not an executable was reported: %s", k)
		}
	}
	if r.ExitCode() != 5 {
		t.Errorf("exit code %d, want 5", r.ExitCode())
	}
	if !r.FirstIndicator().Equal(time.Unix(1700000005, 0).UTC()) && r.FirstIndicator().IsZero() {
		t.Errorf("first indicator time %v", r.FirstIndicator())
	}
}

// TestCompareUnchanged: a second collection of an unchanged tree has no
// finding at all, and says so without the word clean.
func TestCompareUnchanged(t *testing.T) {
	root := t.TempDir()
	tree(t, root, baseTree())
	base := Collect(context.Background(), root, Args{WebRoots: roots})
	now := Collect(context.Background(), root, CheckArgs(base, roots))
	r, err := Compare(base, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		t.Errorf("findings on an unchanged tree: %v", r.Findings)
	}
	if r.Verdict() != "no indicators found" || r.ExitCode() != 0 {
		t.Errorf("verdict %q exit %d", r.Verdict(), r.ExitCode())
	}
}

func TestCompareRefusesOtherFormat(t *testing.T) {
	if _, err := Compare(&State{Format: 99}, &State{Format: FormatVersion}); err == nil {
		t.Fatal("a baseline of another format was compared")
	}
}

func TestDriftOnly(t *testing.T) {
	base := &State{Format: FormatVersion, Packages: map[string]string{"nginx": "1.22"}}
	now := &State{Format: FormatVersion, Packages: map[string]string{"nginx": "1.24"}}
	r, err := Compare(base, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode() != 4 || !strings.Contains(r.Verdict(), "no indicators found") || r.Findings[0].Package != "nginx" {
		t.Errorf("drift: %q exit %d %+v", r.Verdict(), r.ExitCode(), r.Findings)
	}
}

func TestEphemeralUDP(t *testing.T) {
	dh := []string{"/usr/sbin/dhclient"}
	base := &State{Format: FormatVersion, Ephemeral: [2]int{32768, 60999}, Listeners: []Listener{
		{Proto: "udp", Addr: "0.0.0.0", Port: 68, Exes: dh}, {Proto: "udp", Addr: "0.0.0.0", Port: 40001, Exes: dh}}}
	now := &State{Format: FormatVersion, Ephemeral: [2]int{32768, 60999}, Listeners: []Listener{
		{Proto: "udp", Addr: "0.0.0.0", Port: 68, Exes: dh}, {Proto: "udp", Addr: "0.0.0.0", Port: 51234, Exes: dh},
		{Proto: "udp", Addr: "0.0.0.0", Port: 51235, Exes: []string{"/tmp/x"}}}}
	r, _ := Compare(base, now)
	got := map[string]Class{}
	for _, f := range r.Findings {
		got[f.Kind+" "+f.Object] = f.Class
	}
	if got["listener-ephemeral udp 0.0.0.0:51234"] != Churn || got["new-listener udp 0.0.0.0:51235"] != Indicator {
		t.Errorf("findings %v", r.Findings)
	}
}

func TestLoginAfterFailures(t *testing.T) {
	t0 := time.Date(2026, 12, 24, 3, 0, 0, 0, time.UTC)
	var ls []AuthLine
	for i := range 6 {
		ls = append(ls, AuthLine{Time: t0.Add(time.Duration(i) * time.Second), User: "root", Source: "203.0.113.9"})
	}
	ls = append(ls, AuthLine{Time: t0.Add(time.Minute), OK: true, User: "root", Source: "203.0.113.9", Method: "password"},
		AuthLine{Time: t0.Add(time.Minute), OK: true, User: "ops", Source: "10.0.0.5", Method: "publickey"})
	r, _ := Compare(&State{Format: FormatVersion}, &State{Format: FormatVersion, Logins: ls})
	if len(r.Findings) != 1 || r.Findings[0].Object != "root@203.0.113.9" || !r.Findings[0].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("findings %+v", r.Findings)
	}
}

func TestParseAuthLine(t *testing.T) {
	for _, c := range []struct {
		line string
		ok   bool
		user string
		src  string
		good bool
	}{
		{"2026-12-24T03:00:01.123456+01:00 web1 sshd[42]: Failed password for invalid user admin from 198.51.100.7 port 4242 ssh2", true, "admin", "198.51.100.7", false},
		{"Dec 24 03:00:02 web1 sshd[42]: Accepted publickey for ops from 10.0.0.5 port 5000 ssh2: ED25519 SHA256:x", true, "ops", "10.0.0.5", true},
		{"Dec 24 03:00:03 web1 sshd[42]: Invalid user test from 198.51.100.7 port 4243", true, "test", "198.51.100.7", false},
		{"Dec 24 03:00:04 web1 CRON[1]: pam_unix(cron:session): session opened for user root", false, "", "", false},
	} {
		a, ok := ParseAuthLine(c.line, 2026)
		if ok != c.ok || a.User != c.user || a.Source != c.src || a.OK != c.good {
			t.Errorf("%q: %+v %v", c.line, a, ok)
		}
	}
}

func TestMatchWebshell(t *testing.T) {
	for _, c := range []struct {
		src  string
		want bool
	}{
		{`<?php eval(base64_decode("ZWNobyAx")); ?>`, true},
		{`<?php assert($_POST['x']); ?>`, true},
		{`<?php system($_GET['cmd']); ?>`, true},
		{"<?php echo `$_REQUEST[c]`; ?>", true},
		{`<% Runtime.getRuntime().exec(request.getParameter("c")); %>`, true},
		{`<?php echo base64_decode($row['img']); ?>`, false},
		{`<?php $x = eval_fn(1); system('uptime'); ?>`, false},
	} {
		if got := MatchWebshell([]byte(c.src)) != ""; got != c.want {
			t.Errorf("%q: %v, want %v", c.src, got, c.want)
		}
	}
}

func TestHiddenFromTools(t *testing.T) {
	if got := hiddenPIDs([]int{1, 2, 3, 4}, []int{1, 2, 3}, "  1\n 2\n"); len(got) != 1 || got[0] != 3 {
		t.Errorf("hidden pids %v (4 exited meanwhile, 3 is hidden)", got)
	}
	ss := "tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\ntcp LISTEN 0 128 [::]:22 [::]:*\nudp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*\n"
	got := hiddenSockets(map[string]bool{"tcp 22": true, "udp 53": true, "tcp 31337": true}, map[string]bool{"tcp 22": true, "udp 53": true, "tcp 31337": true}, ss)
	if len(got) != 1 || got[0] != "tcp 31337" {
		t.Errorf("hidden sockets %v", got)
	}
}
