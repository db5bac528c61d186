package labtest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const sampleEnv = `LAB_DIR=/var/tmp/holiday-lab
LAB_SSH_KEY=%s
LAB_KNOWN_HOSTS=/var/tmp/holiday-lab/known_hosts
LAB_HOSTS="sys1=10.213.0.11 sysv1=10.213.0.13"
LAB_HOSTS6="sys1=fd00:213::11 sysv1=fd00:213::13"
LAB_HOST_KINDS="sys1=systemd sysv1=sysv"
LAB_NETNS_PREFIX=hlab-
LAB_ROOTFS=/var/cache/holiday-lab/rootfs-x
LAB_CONTROL_ADDR=10.213.0.1
LAB_CONTROL_ADDR6=fd00:213::1
LAB_S3_ENDPOINT=http://10.213.0.1:7070
LAB_S3_REGION=us-east-1
LAB_S3_ACCESS_KEY=LABACCESSKEY
LAB_S3_SECRET_KEY=LABSECRETKEY0123456789
`

func writeEnv(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, []byte("not a real key"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "env")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(body, "%s", key)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOLIDAY_LAB_ENV", p)
	return key
}

func TestLoadSample(t *testing.T) {
	key := writeEnv(t, sampleEnv)
	l, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if l.SSHKey != key || l.S3SecretKey != "LABSECRETKEY0123456789" || l.ControlAddr6 != "fd00:213::1" {
		t.Errorf("fields: %+v", l)
	}
	if len(l.Hosts) != 2 {
		t.Fatalf("hosts: %d, want 2", len(l.Hosts))
	}
	got := fmt.Sprintf("%s %s %s %s|%s %s %s %s",
		l.Hosts[0].Name, l.Hosts[0].Addr, l.Hosts[0].Addr6, l.Hosts[0].Kind,
		l.Hosts[1].Name, l.Hosts[1].Addr, l.Hosts[1].Addr6, l.Hosts[1].Kind)
	if want := "sys1 10.213.0.11 fd00:213::11 systemd|sysv1 10.213.0.13 fd00:213::13 sysv"; got != want {
		t.Errorf("hosts:\n got %s\nwant %s", got, want)
	}
	if h := l.Host("sysv1"); h == nil || h.Netns() != "hlab-sysv1" {
		t.Errorf("Host(sysv1) = %v", h)
	}
	if l.Host("nope") != nil {
		t.Error("Host(nope) found something")
	}
}

func TestLoadRejects(t *testing.T) {
	for name, mutate := range map[string]func(string) string{
		"missing key":      func(s string) string { return strings.Replace(s, "LAB_S3_REGION=us-east-1\n", "", 1) },
		"bad kind":         func(s string) string { return strings.Replace(s, "sysv1=sysv", "sysv1=upstart", 1) },
		"no v6 for host":   func(s string) string { return strings.Replace(s, " sysv1=fd00:213::13", "", 1) },
		"unterminated":     func(s string) string { return strings.Replace(s, `sysv1=sysv"`, "sysv1=sysv", 1) },
		"not key=value":    func(s string) string { return s + "garbage\n" },
		"duplicate host":   func(s string) string { return strings.Replace(s, "sysv1=10.213.0.13", "sys1=10.213.0.13", 1) },
		"missing key file": func(s string) string { return strings.Replace(s, "LAB_SSH_KEY=%s", "LAB_SSH_KEY=/nonexistent/key", 1) },
	} {
		t.Run(name, func(t *testing.T) {
			writeEnv(t, mutate(sampleEnv))
			if l, err := Load(); err == nil {
				t.Errorf("Load accepted it: %+v", l)
			}
		})
	}
}

func TestParseEnvCommentsAndQuotes(t *testing.T) {
	env, err := ParseEnv(strings.NewReader("# c\n\nA=1\nB=\"x y\"\nC=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if env["A"] != "1" || env["B"] != "x y" || env["C"] != "" || len(env) != 3 {
		t.Errorf("got %q", env)
	}
}

// recordingTB catches Skip/Fatalf instead of ending the goroutine, so Require's choice can be seen.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Skip(args ...any)                  { r.skipped = fmt.Sprint(args...) }
func (r *recordingTB) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestRequireWithoutLab(t *testing.T) {
	setShort(t, false)
	t.Setenv("HOLIDAY_LAB_ENV", filepath.Join(t.TempDir(), "no-such-env"))
	t.Run("skips outside CI", func(t *testing.T) {
		t.Setenv("CI", "")
		r := &recordingTB{TB: t}
		if l := Require(r); l != nil {
			t.Fatal("Require returned a lab")
		}
		if r.failed != "" || !strings.Contains(r.skipped, "lab not up: run `make lab-up` (root)") {
			t.Errorf("skipped=%q failed=%q", r.skipped, r.failed)
		}
	})
	t.Run("fails in CI", func(t *testing.T) {
		t.Setenv("CI", "true")
		r := &recordingTB{TB: t}
		if l := Require(r); l != nil {
			t.Fatal("Require returned a lab")
		}
		if r.skipped != "" || !strings.Contains(r.failed, "lab not up") {
			t.Errorf("skipped=%q failed=%q", r.skipped, r.failed)
		}
	})
}

// With -short, Require skips without looking for the lab, also in CI: -short asks for
// unit tests only.
func TestRequireShort(t *testing.T) {
	setShort(t, true)
	t.Setenv("CI", "true")
	t.Setenv("HOLIDAY_LAB_ENV", filepath.Join(t.TempDir(), "no-such-env"))
	r := &recordingTB{TB: t}
	if l := Require(r); l != nil {
		t.Fatal("Require returned a lab")
	}
	if r.failed != "" || r.skipped != "a lab test: not with -short" {
		t.Errorf("skipped=%q failed=%q", r.skipped, r.failed)
	}
}

// setShort sets -short for the rest of the test, whatever the run asked for.
func setShort(t *testing.T, on bool) {
	was := testing.Short()
	if err := flag.Set("test.short", strconv.FormatBool(on)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flag.Set("test.short", strconv.FormatBool(was)) })
}
