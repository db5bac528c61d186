package units

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The systemctl outputs below were captured on a lab systemd host (Debian
// 12, systemd 252) with the exact flags units passes, then cut down.

// listUnits is `systemctl list-units --all --no-legend --plain --no-pager --full`.
const listUnits = `-.mount                                                           loaded    active   mounted   Root Mount
home.mount                                                        not-found inactive dead      home.mount
bench-web.service                                                 loaded    inactive dead      Bench web (only through its socket)
cron.service                                                      loaded    active   running   Regular background program processing daemon
getty@tty1.service                                                loaded    inactive dead      Getty on tty1
nginx.service                                                     loaded    active   running   A high performance web server and a reverse proxy server
systemd-remount-fs.service                                        masked    inactive dead      systemd-remount-fs.service
system-getty.slice                                                loaded    active   active    Slice /system/getty
bench-web.socket                                                  loaded    active   listening Bench web socket
lab-tick.timer                                                    loaded    active   waiting   Lab nightly tick (fires at 03:00 only, so never during a test run by accident)
`

// listUnitFiles is `systemctl list-unit-files --no-legend --plain --no-pager --full`.
const listUnitFiles = `autovt@.service                        alias           -
bench-web.service                      static          -
console-getty.service                  enabled-runtime disabled
cron.service                           enabled         enabled
getty@.service                         enabled         enabled
lab-masked.service                     masked          enabled
nginx.service                          enabled         enabled
postgresql@.service                    indirect        enabled
systemd-remount-fs.service             masked          enabled
bench-web.socket                       enabled         enabled
lab-tick.timer                         enabled         enabled
`

// showBenchWeb is `systemctl show --no-pager -p LoadState,…,Also --
// bench-web.service`: a socket-activated service.
const showBenchWeb = `RequiredBy=
BoundBy=
ConsistsOf=
TriggeredBy=bench-web.socket
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=static
`

func TestParseProps(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"systemctl show", showBenchWeb, map[string]string{
			"RequiredBy": "", "BoundBy": "", "ConsistsOf": "", "TriggeredBy": "bench-web.socket",
			"LoadState": "loaded", "ActiveState": "inactive", "SubState": "dead", "UnitFileState": "static"}},
		{"empty", "", map[string]string{}},
		{"value with = in it", "ExecStart={ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx -g daemon=on }\n",
			map[string]string{"ExecStart": "{ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx -g daemon=on }"}},
		{"lines without = are ignored", "garbage\nA=1\n\nB=\n", map[string]string{"A": "1", "B": ""}},
		{"a later line wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"no trailing newline", "TriggeredBy=a.socket b.timer", map[string]string{"TriggeredBy": "a.socket b.timer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseProps(tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseProps(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"bench-web.socket", []string{"bench-web.socket"}},
		{"b.timer a.socket", []string{"a.socket", "b.timer"}},
		// Stoppers joins RequiredBy, BoundBy and ConsistsOf with blanks, some empty.
		{" postgresql@15-main.service  \t x.target\n", []string{"postgresql@15-main.service", "x.target"}},
	} {
		got := fields(tc.in)
		if len(got) != len(tc.want) || (len(got) > 0 && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("fields(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFirstLineAndLastLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"enabled\n", "enabled"},
		{"  masked  \n", "masked"},
		{"\nalias\nFailed to get unit file state\n", "alias"},
		{"", ""},
	} {
		if got := firstLine(tc.in); got != tc.want {
			t.Errorf("firstLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b; c"},
		{"a\nb\n", 5, "a; b"},
		{"  only  \n", 1, "only"},
	} {
		if got := lastLines(tc.in, tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		init     Init
		in, want string
	}{
		{Systemd, "nginx", "nginx.service"},
		{Systemd, "nginx.service", "nginx.service"},
		{Systemd, "bench-web.socket", "bench-web.socket"},
		{Systemd, "lab-tick.timer", "lab-tick.timer"},
		{Systemd, "postgresql@15-main", "postgresql@15-main.service"},
		{Systemd, "hwclock.sh", "hwclock.sh.service"},
		{SysV, "nginx.service", "nginx"},
		{SysV, "hwclock.sh", "hwclock.sh"},
		{SysV, "redis-server", "redis-server"},
	} {
		if got := Canonical(tc.init, tc.in); got != tc.want {
			t.Errorf("Canonical(%s, %q) = %q, want %q", tc.init, tc.in, got, tc.want)
		}
	}
}

func TestRunningAndExists(t *testing.T) {
	for _, tc := range []struct {
		u               Unit
		running, exists bool
	}{
		{Unit{Init: Systemd, Load: "loaded", Active: "active"}, true, true},
		{Unit{Init: Systemd, Load: "loaded", Active: "activating"}, true, true},
		{Unit{Init: Systemd, Load: "loaded", Active: "deactivating"}, true, true},
		{Unit{Init: Systemd, Load: "loaded", Active: "inactive"}, false, true},
		{Unit{Init: Systemd, Load: "loaded", Active: "failed"}, false, true},
		{Unit{Init: Systemd, Load: "not-found", Active: "inactive"}, false, false},
		{Unit{Init: Systemd, Load: "masked", Masked: true}, false, true},
		{Unit{Init: Systemd, Load: "not-found", Masked: true}, false, true},
		{Unit{Init: Systemd}, false, false},
		{Unit{Init: SysV, Status: 0, Enablement: "enabled"}, true, true},
		{Unit{Init: SysV, Status: 3, Enablement: "none"}, false, true},
		{Unit{Init: SysV, Status: 4, Enablement: "not-found"}, false, false},
	} {
		if r, e := tc.u.Running(), tc.u.Exists(); r != tc.running || e != tc.exists {
			t.Errorf("%+v: Running %v Exists %v, want %v %v", tc.u, r, e, tc.running, tc.exists)
		}
	}
}

func TestSysvEnablement(t *testing.T) {
	for _, tc := range []struct {
		links []string
		want  string
	}{
		{nil, "none"},
		{[]string{"rc0.d/K01nginx -> ../init.d/nginx", "rc2.d/S01nginx -> ../init.d/nginx"}, "enabled"},
		{[]string{"rc5.d/S03nginx -> ../init.d/nginx"}, "enabled"},
		{[]string{"rcS.d/S01hwclock.sh -> ../init.d/hwclock.sh"}, "enabled"},
		{[]string{"rc0.d/K01nginx -> ../init.d/nginx", "rc2.d/K01nginx -> ../init.d/nginx", "rc6.d/K01nginx -> ../init.d/nginx"}, "disabled"},
		// A start link only in the halt, single-user or reboot runlevels does
		// not start the service at boot.
		{[]string{"rc1.d/S01killprocs -> ../init.d/killprocs"}, "disabled"},
		{[]string{"rc0.d/S01halt -> ../init.d/halt", "rc6.d/S01reboot -> ../init.d/reboot"}, "disabled"},
	} {
		if got := sysvEnablement(tc.links); got != tc.want {
			t.Errorf("sysvEnablement(%q) = %q, want %q", tc.links, got, tc.want)
		}
	}
}

// sysvRoot points InitDir and RCDirs at a fresh tree for the rest of the
// test and returns its root (etc/).
func sysvRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "etc")
	savedInit, savedRC := InitDir, RCDirs
	t.Cleanup(func() { InitDir, RCDirs = savedInit, savedRC })
	InitDir = filepath.Join(root, "init.d")
	RCDirs = nil
	for _, d := range []string{"rc0.d", "rc1.d", "rc2.d", "rc3.d", "rc4.d", "rc5.d", "rc6.d", "rcS.d"} {
		RCDirs = append(RCDirs, filepath.Join(root, d))
	}
	for _, d := range append([]string{InitDir}, RCDirs[:7]...) { // rcS.d left out: a missing rc dir is fine
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestRCLinks(t *testing.T) {
	root := sysvRoot(t)
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc2.d", "S01nginx"))
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc3.d", "S01nginx"))
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc0.d", "K01nginx"))
	symlink(t, "/etc/init.d/nginx", filepath.Join(root, "rc6.d", "K02nginx")) // absolute target
	// Not nginx's: another script whose name starts the same, a link to
	// another script under nginx's name, a plain file, a malformed name.
	symlink(t, "../init.d/nginx-debug", filepath.Join(root, "rc2.d", "S02nginx-debug"))
	symlink(t, "../init.d/other", filepath.Join(root, "rc4.d", "S01nginx"))
	if err := os.WriteFile(filepath.Join(root, "rc5.d", "S01nginx"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc5.d", "X01nginx"))
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc1.d", "S1nginx"))
	if err := os.WriteFile(filepath.Join(root, "rc2.d", "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := RCLinks("nginx")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"rc0.d/K01nginx -> ../init.d/nginx",
		"rc2.d/S01nginx -> ../init.d/nginx",
		"rc3.d/S01nginx -> ../init.d/nginx",
		"rc6.d/K02nginx -> /etc/init.d/nginx",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RCLinks(nginx) =\n%q\nwant\n%q", got, want)
	}
	if got, err := RCLinks("redis-server"); err != nil || len(got) != 0 {
		t.Errorf("RCLinks(redis-server) = %q, %v; want none", got, err)
	}
}

func TestSetRCLinks(t *testing.T) {
	root := sysvRoot(t)
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc2.d", "K01nginx"))
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc0.d", "K01nginx"))
	symlink(t, "../init.d/cron", filepath.Join(root, "rc2.d", "S01cron"))
	// Back to what a host had before `update-rc.d nginx disable`: sequence
	// numbers kept exactly, the K links that are no longer wanted gone.
	want := []string{
		"rc0.d/K01nginx -> ../init.d/nginx",
		"rc2.d/S03nginx -> ../init.d/nginx",
		"rc5.d/S03nginx -> ../init.d/nginx",
	}
	if err := SetRCLinks("nginx", want); err != nil {
		t.Fatal(err)
	}
	if got, err := RCLinks("nginx"); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("after SetRCLinks: %q, %v; want %q", got, err, want)
	}
	if got, _ := RCLinks("cron"); len(got) != 1 {
		t.Errorf("another script's links changed: %q", got)
	}
	if err := SetRCLinks("nginx", want); err != nil {
		t.Errorf("setting the same links again: %v", err)
	}
	if err := SetRCLinks("nginx", nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := RCLinks("nginx"); len(got) != 0 {
		t.Errorf("after SetRCLinks(nil): %q", got)
	}
	for _, bad := range []string{"../../tmp/S01nginx -> ../init.d/nginx", "rc2.d/S01nginx"} {
		if err := SetRCLinks("nginx", []string{bad}); err == nil {
			t.Errorf("SetRCLinks took %q", bad)
		}
	}
}

// The LSB headers of Debian 12's nginx and redis-server scripts (tabs
// and all), as on the lab's SysV host.
const (
	lsbNginx = "#!/bin/sh\n\n### BEGIN INIT INFO\n# Provides:\t  nginx\n# Required-Start:    $local_fs $remote_fs $network $syslog $named\n" +
		"# Required-Stop:     $local_fs $remote_fs $network $syslog $named\n# Default-Start:     2 3 4 5\n# Default-Stop:      0 1 6\n" +
		"# Short-Description: starts the nginx web server\n# Description:       starts nginx using start-stop-daemon\n### END INIT INFO\n"
	lsbRedis = "#! /bin/sh\n### BEGIN INIT INFO\n# Provides:\t\tredis-server\n# Required-Start:\t$syslog $remote_fs\n# Required-Stop:\t$syslog $remote_fs\n" +
		"# Should-Start:\t\t$local_fs\n# Should-Stop:\t\t$local_fs\n# Default-Start:\t2 3 4 5\n# Default-Stop:\t\t0 1 6\n" +
		"# Short-Description:\tredis-server - Persistent key-value db\n# Description:\t\tredis-server - Persistent key-value db\n### END INIT INFO\n"
)

func TestLsbMentions(t *testing.T) {
	for _, tc := range []struct {
		name, script, unit string
		want               bool
	}{
		{"Required-Start", lsbNginx, "$network", true},
		{"Required-Stop", lsbRedis, "$remote_fs", true},
		{"Should-Start with tabs", lsbRedis, "$local_fs", true},
		{"not a dependency field", lsbNginx, "nginx", false},
		{"Description words are not names", lsbRedis, "key-value", false},
		{"whole names only", "### BEGIN INIT INFO\n# Required-Start: nginx-debug\n### END INIT INFO\n", "nginx", false},
		{"X-Start-Before", "### BEGIN INIT INFO\n# X-Start-Before: nginx\n### END INIT INFO\n", "nginx", true},
		{"X-Stop-After", "### BEGIN INIT INFO\n#X-Stop-After:   lab-worker   nginx\n### END INIT INFO\n", "nginx", true},
		{"after the header", "### BEGIN INIT INFO\n# Provides: x\n### END INIT INFO\n# Required-Start: nginx\n", "nginx", false},
		{"no header", "#!/bin/sh\n# Required-Start: nginx\n", "nginx", false},
		{"end before begin", "### END INIT INFO\n# Required-Start: nginx\n### BEGIN INIT INFO\n", "nginx", false},
		{"begin without end", "### BEGIN INIT INFO\n# Required-Start: nginx\n", "nginx", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "script")
			if err := os.WriteFile(p, []byte(tc.script), 0o755); err != nil {
				t.Fatal(err)
			}
			if got := lsbMentions(p, tc.unit); got != tc.want {
				t.Errorf("lsbMentions(%q) = %v, want %v", tc.unit, got, tc.want)
			}
		})
	}
	if lsbMentions(filepath.Join(t.TempDir(), "missing"), "nginx") {
		t.Error("a missing script mentions nginx")
	}
}

// initScripts writes SysV scripts into InitDir whose status exits with
// the given code; a negative code writes a file that is not executable.
func initScripts(t *testing.T, status map[string]int, header map[string]string) {
	t.Helper()
	for name, code := range status {
		mode := os.FileMode(0o755)
		if code < 0 {
			mode = 0o644
		}
		body := "#!/bin/sh\n" + header[name] + "case \"$1\" in status) exit " + itoa(max(code, 0)) + ";; esac\nexit 0\n"
		if err := os.WriteFile(filepath.Join(InitDir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
}

var itoa = strconv.Itoa

// norm makes a Unit's empty lists nil, so that DeepEqual compares what
// they hold (fields returns an empty list for an empty property).
func norm(u Unit) Unit {
	for _, l := range []*[]string{&u.TriggeredBy, &u.Stoppers, &u.Also, &u.RCLinks} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return u
}

func TestSysvListAndListFor(t *testing.T) {
	root := sysvRoot(t)
	initScripts(t, map[string]int{
		"nginx":          0,
		"redis-server":   3,
		"lab-worker":     0,
		"cron":           3,
		"notexec":        -1, // not executable: not a service
		"skeleton":       0,
		"README":         0,
		"nginx.dpkg-old": 0,
	}, map[string]string{
		"lab-worker": "### BEGIN INIT INFO\n# Required-Stop: nginx\n### END INIT INFO\n",
	})
	if err := os.Mkdir(filepath.Join(InitDir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "../init.d/nginx", filepath.Join(root, "rc2.d", "S01nginx"))
	symlink(t, "../init.d/redis-server", filepath.Join(root, "rc0.d", "K01redis-server"))
	ctx := context.Background()

	list, err := List(ctx, SysV)
	if err != nil {
		t.Fatal(err)
	}
	type brief struct {
		Name, Active, Enablement string
		Status                   int
	}
	var got []brief
	for _, u := range list {
		got = append(got, brief{u.Name, u.Active, u.Enablement, u.Status})
	}
	want := []brief{
		{"cron", "inactive", "none", 3},
		{"lab-worker", "active", "none", 0},
		{"nginx", "active", "enabled", 0},
		{"redis-server", "inactive", "disabled", 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List(SysV) =\n%+v\nwant\n%+v", got, want)
	}

	// ListFor asks the status of nginx and of the scripts naming it only.
	list, err = ListFor(ctx, SysV, "nginx")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, u := range list {
		got = append(got, brief{u.Name, u.Active, u.Enablement, u.Status})
	}
	want = []brief{
		{"cron", "", "none", StatusNotAsked},
		{"lab-worker", "active", "none", 0},
		{"nginx", "active", "enabled", 0},
		{"redis-server", "", "disabled", StatusNotAsked},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListFor(SysV, nginx) =\n%+v\nwant\n%+v", got, want)
	}

	u, err := State(ctx, SysV, "nginx.service")
	if err != nil || u.Name != "nginx" || !u.Running() || !reflect.DeepEqual(u.RCLinks, []string{"rc2.d/S01nginx -> ../init.d/nginx"}) {
		t.Errorf("State(nginx.service) = %+v, %v", u, err)
	}
	u, err = State(ctx, SysV, "absent")
	if !errors.Is(err, ErrNotFound) || u.Enablement != "not-found" || u.Status != 4 || u.Exists() {
		t.Errorf("State(absent) = %+v, %v; want not-found", u, err)
	}
}

// fakeSystemctl puts a systemctl first on PATH for the rest of the test
// that prints out[verb] for `systemctl verb …` (is-enabled and show by
// unit: out["is-enabled UNIT"]) and exits with code[verb].
func fakeSystemctl(t *testing.T, out map[string]string, code map[string]int) {
	t.Helper()
	dir := t.TempDir()
	var sw strings.Builder
	sw.WriteString("#!/bin/sh\nverb=$1\nfor a; do last=$a; done\ncase \"$verb\" in show|is-enabled) verb=\"$verb $last\";; esac\ncase \"$verb\" in\n")
	for k, v := range out {
		f := filepath.Join(dir, strings.ReplaceAll(k, " ", "_")+".out")
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		sw.WriteString("\"" + k + "\") cat '" + f + "'; exit " + itoa(code[k]) + ";;\n")
	}
	sw.WriteString("esac\necho \"fake systemctl: unexpected $*\" >&2\nexit 99\n")
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(sw.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestSystemdList(t *testing.T) {
	fakeSystemctl(t, map[string]string{"list-units": listUnits, "list-unit-files": listUnitFiles}, nil)
	list, err := List(context.Background(), Systemd)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Unit{}
	var names []string
	for _, u := range list {
		byName[u.Name] = u
		names = append(names, u.Name)
	}
	wantNames := []string{"-.mount", "autovt@.service", "bench-web.service", "bench-web.socket", "console-getty.service",
		"cron.service", "getty@.service", "getty@tty1.service", "home.mount", "lab-masked.service", "lab-tick.timer",
		"nginx.service", "postgresql@.service", "system-getty.slice", "systemd-remount-fs.service"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("names (sorted, each once):\n%q\nwant\n%q", names, wantNames)
	}
	for _, want := range []Unit{
		// In both lists.
		{Name: "nginx.service", Load: "loaded", Active: "active", Sub: "running", Enablement: "enabled"},
		{Name: "bench-web.service", Load: "loaded", Active: "inactive", Sub: "dead", Enablement: "static"},
		{Name: "bench-web.socket", Load: "loaded", Active: "active", Sub: "listening", Enablement: "enabled"},
		{Name: "systemd-remount-fs.service", Load: "masked", Active: "inactive", Sub: "dead", Enablement: "masked", Masked: true},
		// Loaded but without a unit file of its own: no enablement word.
		{Name: "getty@tty1.service", Load: "loaded", Active: "inactive", Sub: "dead"},
		{Name: "home.mount", Load: "not-found", Active: "inactive", Sub: "dead"},
		// Only a unit file, never loaded: inactive and dead.
		{Name: "lab-masked.service", Active: "inactive", Sub: "dead", Enablement: "masked", Masked: true},
		{Name: "console-getty.service", Active: "inactive", Sub: "dead", Enablement: "enabled-runtime"},
		{Name: "postgresql@.service", Active: "inactive", Sub: "dead", Enablement: "indirect"},
		{Name: "autovt@.service", Active: "inactive", Sub: "dead", Enablement: "alias"},
	} {
		want.Init = Systemd
		if got := norm(byName[want.Name]); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
}

func TestSystemdListFails(t *testing.T) {
	for _, verb := range []string{"list-units", "list-unit-files"} {
		t.Run(verb, func(t *testing.T) {
			fakeSystemctl(t, map[string]string{"list-units": listUnits, "list-unit-files": listUnitFiles}, map[string]int{verb: 1})
			if _, err := List(context.Background(), Systemd); err == nil || !strings.Contains(err.Error(), verb+": exit 1") {
				t.Errorf("error %v, want systemctl %s: exit 1", err, verb)
			}
		})
	}
}

func TestSystemdState(t *testing.T) {
	fakeSystemctl(t, map[string]string{
		"show bench-web.service":       showBenchWeb,
		"is-enabled bench-web.service": "static\n",
		"show postgresql.service": "RequiredBy=\nBoundBy=b.service\nConsistsOf=postgresql@15-main.service\nTriggeredBy=\n" +
			"LoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\nAlso=postgresql.socket\n",
		"is-enabled postgresql.service":         "disabled\n",
		"show systemd-remount-fs.service":       "LoadState=masked\nActiveState=inactive\nSubState=dead\nUnitFileState=masked\n",
		"is-enabled systemd-remount-fs.service": "masked\n",
		"show nosuch.service":                   "LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n",
		"is-enabled nosuch.service":             "",
		// is-enabled printing nothing for a unit that is loaded: show's word.
		"show run-x.service":       "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=transient\n",
		"is-enabled run-x.service": "",
	}, map[string]int{"is-enabled bench-web.service": 0, "is-enabled postgresql.service": 1, "is-enabled systemd-remount-fs.service": 1, "is-enabled nosuch.service": 1, "is-enabled run-x.service": 1})
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		want    Unit
		missing bool
	}{
		{"bench-web", Unit{Name: "bench-web.service", Init: Systemd, Load: "loaded", Active: "inactive", Sub: "dead",
			Enablement: "static", TriggeredBy: []string{"bench-web.socket"}}, false},
		{"postgresql.service", Unit{Name: "postgresql.service", Init: Systemd, Load: "loaded", Active: "inactive", Sub: "dead",
			Enablement: "disabled", Stoppers: []string{"b.service", "postgresql@15-main.service"}, Also: []string{"postgresql.socket"}}, false},
		{"systemd-remount-fs", Unit{Name: "systemd-remount-fs.service", Init: Systemd, Load: "masked", Active: "inactive", Sub: "dead",
			Enablement: "masked", Masked: true}, false},
		{"nosuch", Unit{Name: "nosuch.service", Init: Systemd, Load: "not-found", Active: "inactive", Sub: "dead",
			Enablement: "not-found"}, true},
		{"run-x", Unit{Name: "run-x.service", Init: Systemd, Load: "loaded", Active: "active", Sub: "running",
			Enablement: "transient"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := State(ctx, Systemd, tc.name)
			if tc.missing != errors.Is(err, ErrNotFound) || (!tc.missing && err != nil) {
				t.Errorf("error %v, want not-found %v", err, tc.missing)
			}
			if u = norm(u); !reflect.DeepEqual(u, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", u, tc.want)
			}
		})
	}
}

func TestListening(t *testing.T) {
	root := t.TempDir()
	proc := filepath.Join(root, "proc")
	saved := ProcRoot
	ProcRoot = root
	t.Cleanup(func() { ProcRoot = saved })
	write := func(rel, s string) {
		t.Helper()
		p := filepath.Join(proc, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// /proc/net/tcp{,6} as the kernel prints them: a header, then one
	// socket a line; state 0A is LISTEN, 01 ESTABLISHED.
	write("net/tcp", `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0B00D50A:0016 0100D50A:D8F2 01 00000000:00000000 02:0009F0B1 00000000     0        0 1003 4 0000000000000000 20 4 31 10 -1
   3: short line
`)
	write("net/tcp6", `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 100 0 0 10 0
`)
	for pid, socks := range map[string][]string{"1": {"1005"}, "411": {"1001", "1004"}, "412": {"1001"}, "500": {"1002"}} {
		for i, ino := range socks {
			if err := os.MkdirAll(filepath.Join(proc, pid, "fd"), 0o755); err != nil {
				t.Fatal(err)
			}
			symlink(t, "socket:["+ino+"]", filepath.Join(proc, pid, "fd", itoa(3+i)))
		}
		symlink(t, "/dev/null", filepath.Join(proc, pid, "fd", "0"))
	}
	write("self/fd/placeholder", "") // not a PID
	ls, err := Listening()
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{Proto: "tcp", Port: 22, Addr: "0.0.0.0", Inode: 1001, PIDs: []int{411, 412}},
		{Proto: "tcp6", Port: 22, Addr: "::", Inode: 1004, PIDs: []int{411}},
		{Proto: "tcp6", Port: 80, Addr: "::", Inode: 1005, PIDs: []int{1}},
		{Proto: "tcp", Port: 6379, Addr: "127.0.0.1", Inode: 1002, PIDs: []int{500}},
	}
	if !reflect.DeepEqual(ls, want) {
		t.Errorf("Listening() =\n%+v\nwant\n%+v", ls, want)
	}
	if got := Ports(ls); !reflect.DeepEqual(got, []int{22, 80, 6379}) {
		t.Errorf("Ports = %v", got)
	}
}
