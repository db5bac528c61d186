// Package labtest is test support: it finds the holiday lab that lab/up.sh brought up (real
// hosts in network namespaces, see lab/README.md) and runs commands on its hosts, over the
// real ssh client as a lab user or inside a host's network namespace from the outside.
//
// It is for tests only and imports nothing of holiday's but internal/testenv (itself a leaf),
// so any package's tests may use it without bending the layering.
package labtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/testenv"
)

// DefaultEnvPath is where lab/up.sh writes the lab's env file unless HOLIDAY_LAB_DIR is set.
const DefaultEnvPath = "/var/tmp/holiday-lab/env"

// Kind says how a host manages its services.
type Kind string

const (
	// Systemd hosts run systemd as PID 1 (systemd-nspawn): use systemctl.
	Systemd Kind = "systemd"
	// SysV hosts run no systemd: service(8) uses /etc/init.d, enablement is rc links.
	SysV Kind = "sysv"
)

// Lab is a running lab as described by its env file.
type Lab struct {
	Dir          string // LAB_DIR: the runtime dir
	SSHKey       string // LAB_SSH_KEY: private key that logs in as root, ops and guest
	KnownHosts   string // LAB_KNOWN_HOSTS: every host's key under its v4 and v6 address
	ControlAddr  string // LAB_CONTROL_ADDR: this machine's address on the lab bridge
	ControlAddr6 string // LAB_CONTROL_ADDR6
	NetnsPrefix  string // LAB_NETNS_PREFIX: host X lives in network namespace NetnsPrefix+X
	RootFS       string // LAB_ROOTFS: the cached tree every host's root is an overlay of
	S3Endpoint   string // LAB_S3_ENDPOINT: http://addr:port of the lab's versitygw
	S3Region     string // LAB_S3_REGION
	S3AccessKey  string // LAB_S3_ACCESS_KEY
	S3SecretKey  string // LAB_S3_SECRET_KEY
	Hosts        []*Host
	Env          map[string]string // every key of the env file, as read
}

// Host is one lab host.
type Host struct {
	Name  string // sys1, sys2, sysv1, light1…
	Addr  string // IPv4 address on the lab bridge
	Addr6 string // IPv6 address on the lab bridge
	Kind  Kind
	lab   *Lab
}

// EnvPath is the env file Load reads: $HOLIDAY_LAB_ENV, else $HOLIDAY_LAB_DIR/env, else
// DefaultEnvPath.
func EnvPath() string {
	if p := os.Getenv("HOLIDAY_LAB_ENV"); p != "" {
		return p
	}
	if d := os.Getenv("HOLIDAY_LAB_DIR"); d != "" {
		return d + "/env"
	}
	return DefaultEnvPath
}

// Load reads the env file at EnvPath and checks that it describes a usable lab.
func Load() (*Lab, error) {
	path := EnvPath()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, err := ParseEnv(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l, err := fromEnv(env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := os.Stat(l.SSHKey); err != nil {
		return nil, fmt.Errorf("%s: lab key: %w", path, err)
	}
	return l, nil
}

// ParseEnv reads KEY=VALUE lines; a value may be wrapped in double quotes. Blank lines and
// lines starting with # are skipped. The lab writes nothing that needs escapes.
func ParseEnv(r io.Reader) (map[string]string, error) {
	env := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"") {
			return nil, fmt.Errorf("line %d: want KEY=VALUE, got %q", n, line)
		}
		if strings.HasPrefix(v, `"`) {
			if len(v) < 2 || !strings.HasSuffix(v, `"`) {
				return nil, fmt.Errorf("line %d: unterminated quote in %q", n, line)
			}
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}

// pairs parses "a=x b=y" into an ordered list of names and a map.
func pairs(key, s string) ([]string, map[string]string, error) {
	var names []string
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" || v == "" {
			return nil, nil, fmt.Errorf("%s: bad entry %q", key, f)
		}
		if _, dup := m[k]; dup {
			return nil, nil, fmt.Errorf("%s: %q twice", key, k)
		}
		names = append(names, k)
		m[k] = v
	}
	return names, m, nil
}

func fromEnv(env map[string]string) (*Lab, error) {
	var missing []string
	get := func(k string) string {
		v, ok := env[k]
		if !ok || v == "" {
			missing = append(missing, k)
		}
		return v
	}
	l := &Lab{
		Dir: get("LAB_DIR"), SSHKey: get("LAB_SSH_KEY"), KnownHosts: get("LAB_KNOWN_HOSTS"),
		ControlAddr: get("LAB_CONTROL_ADDR"), ControlAddr6: get("LAB_CONTROL_ADDR6"),
		NetnsPrefix: get("LAB_NETNS_PREFIX"), RootFS: get("LAB_ROOTFS"),
		S3Endpoint: get("LAB_S3_ENDPOINT"), S3Region: get("LAB_S3_REGION"),
		S3AccessKey: get("LAB_S3_ACCESS_KEY"), S3SecretKey: get("LAB_S3_SECRET_KEY"),
		Env: env,
	}
	hosts, hosts6, kinds := get("LAB_HOSTS"), get("LAB_HOSTS6"), get("LAB_HOST_KINDS")
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	names, v4, err := pairs("LAB_HOSTS", hosts)
	if err != nil {
		return nil, err
	}
	_, v6, err := pairs("LAB_HOSTS6", hosts6)
	if err != nil {
		return nil, err
	}
	_, kind, err := pairs("LAB_HOST_KINDS", kinds)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		k := Kind(kind[n])
		if k != Systemd && k != SysV {
			return nil, fmt.Errorf("LAB_HOST_KINDS: host %s has kind %q, want systemd or sysv", n, kind[n])
		}
		if v6[n] == "" {
			return nil, fmt.Errorf("LAB_HOSTS6: no address for host %s", n)
		}
		l.Hosts = append(l.Hosts, &Host{Name: n, Addr: v4[n], Addr6: v6[n], Kind: k, lab: l})
	}
	if len(l.Hosts) == 0 {
		return nil, errors.New("LAB_HOSTS: no hosts")
	}
	return l, nil
}

// Require returns the lab, or skips the test with the reason when there is none. In CI
// (CI=true) a missing lab fails the test instead: there a skip would hide untested code.
// With -short it skips (also in CI): -short means unit tests only, no lab (make
// test-short, and check.sh's -race pass, which leaves the lab tests to the full run).
func Require(t testing.TB) *Lab {
	t.Helper()
	if testing.Short() {
		testenv.Short(t, "a lab test")
		return nil // a fake testing.TB's Skip returns
	}
	l, err := Load()
	if err == nil && os.Geteuid() != 0 {
		err = errors.New("the lab tests need root (ip netns exec, the lab key)")
	}
	if err != nil {
		testenv.Skip(t, fmt.Sprintf("lab not up: run `make lab-up` (root): %v", err))
		return nil
	}
	return l
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// MustHost returns the host called name or fails the test.
func (l *Lab) MustHost(t testing.TB, name string) *Host {
	t.Helper()
	h := l.Host(name)
	if h == nil {
		t.Fatalf("lab has no host %q (hosts: %s)", name, l.Env["LAB_HOSTS"])
	}
	return h
}

// Lock takes the host for the rest of the test, exclusively: `go test ./...` runs packages
// in parallel, so a test that changes a host (firewall, services, files, a reboot) holds
// this lock; tests that only look hold RLock. Released when the test ends.
func (h *Host) Lock(t testing.TB) { h.flock(t, syscall.LOCK_EX) }

// RLock takes the host shared for the rest of the test (see Lock).
func (h *Host) RLock(t testing.TB) { h.flock(t, syscall.LOCK_SH) }

func (h *Host) flock(t testing.TB, how int) {
	t.Helper()
	dir := filepath.Join(h.lab.Dir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", h.Name, err)
	}
	t.Cleanup(func() { f.Close() }) // closing the file releases the lock
}

// Netns is the name of the host's network namespace (for ip netns exec).
func (h *Host) Netns() string { return h.lab.NetnsPrefix + h.Name }

// String is the host's name.
func (h *Host) String() string { return h.Name }

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr string
	ExitCode       int // -1 when the command did not run to an exit
}

// ExitError is returned when a command ran but exited non-zero.
type ExitError struct {
	Cmd string
	Result
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: exit %d: %s", e.Cmd, e.ExitCode, strings.TrimSpace(e.Stderr))
}

// SSHArgs is the ssh command line (without the remote command) that logs in to addr as
// user with the lab key, checking the host key strictly against the lab's known_hosts.
func (h *Host) SSHArgs(user, addr string) []string {
	return []string{"ssh", "-F", "/dev/null", "-n",
		"-i", h.lab.SSHKey, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + h.lab.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
		"-l", user, addr}
}

// SSH runs cmd (a shell command line) on the host as user (root, ops or guest) over its IPv4
// address with the real ssh client. A non-zero exit is an *ExitError carrying the result.
func (h *Host) SSH(ctx context.Context, user, cmd string) (Result, error) {
	return h.SSHAt(ctx, user, h.Addr, cmd)
}

// SSHAt is SSH to a chosen address of the host (h.Addr or h.Addr6).
func (h *Host) SSHAt(ctx context.Context, user, addr, cmd string) (Result, error) {
	return run(ctx, append(h.SSHArgs(user, addr), "--", cmd))
}

// SSHStdin is SSH with stdin fed to cmd (a script for `bash -s`, a file
// for `cat >`).
func (h *Host) SSHStdin(ctx context.Context, user, cmd string, stdin io.Reader) (Result, error) {
	argv := slices.DeleteFunc(h.SSHArgs(user, h.Addr), func(a string) bool { return a == "-n" })
	return runStdin(ctx, append(argv, "--", cmd), stdin)
}

// InNetns runs argv inside the host's network namespace from the outside (ip netns exec),
// with this machine's binaries: what the network sees, not what the host says.
func (h *Host) InNetns(ctx context.Context, argv ...string) (Result, error) {
	return run(ctx, append([]string{"ip", "netns", "exec", h.Netns()}, argv...))
}

// MustSSH is SSH that fails the test on any error and returns stdout.
func (h *Host) MustSSH(t testing.TB, user, cmd string) string {
	t.Helper()
	r, err := h.SSH(context.Background(), user, cmd)
	if err != nil {
		t.Fatalf("%s as %s: %v", h.Name, user, err)
	}
	return r.Stdout
}

// MustInNetns is InNetns that fails the test on any error and returns stdout.
func (h *Host) MustInNetns(t testing.TB, argv ...string) string {
	t.Helper()
	r, err := h.InNetns(context.Background(), argv...)
	if err != nil {
		t.Fatalf("%s netns: %v", h.Name, err)
	}
	return r.Stdout
}

// commandTimeout bounds every command when the caller's context has no deadline.
const commandTimeout = 60 * time.Second

func run(ctx context.Context, argv []string) (Result, error) { return runStdin(ctx, argv, nil) }

func runStdin(ctx context.Context, argv []string, stdin io.Reader) (Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, commandTimeout)
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = stdin, &stdout, &stderr
	err := c.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: -1}
	if c.ProcessState != nil {
		r.ExitCode = c.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &ee) && r.ExitCode > 0:
		return r, &ExitError{Cmd: strings.Join(argv, " "), Result: r}
	default:
		return r, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
}

// WaitOff waits until a systemd host that powered itself off is off (its
// root kept, as lab/host-systemd.sh does) and reports whether it got there
// within timeout.
func (h *Host) WaitOff(timeout time.Duration) bool {
	off := filepath.Join(h.lab.Dir, "hosts", h.Name, "off")
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(off); err == nil {
			return true
		}
	}
	return false
}

// PowerOn presses the power button of a host WaitOff saw off (what
// lab/poweron.sh does): it boots again on the root it had.
func (h *Host) PowerOn(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(h.lab.Dir, "hosts", h.Name, "poweron"), nil, 0o644); err != nil {
		t.Fatalf("%s: pressing the power button: %v", h.Name, err)
	}
}

// Reboot reboots a systemd host from inside (`systemctl reboot`) and
// waits, 90 s at most, until it runs again on the same root: a new boot
// ID and PID 1 started anew, systemd running (or degraded), the boot
// settled (SettleBoot). Units lab/up.sh started by hand are not started
// again.
func (h *Host) Reboot(t testing.TB) {
	t.Helper()
	boot := func() string {
		r, err := h.SSH(context.Background(), "root", "cat /proc/sys/kernel/random/boot_id; cut -d' ' -f22 /proc/1/stat")
		if err != nil {
			return ""
		}
		return strings.TrimSpace(r.Stdout)
	}
	was := boot()
	if was == "" {
		t.Fatalf("cannot read %s's boot", h.Name)
	}
	h.SSH(context.Background(), "root", "systemctl reboot") // the connection may drop
	deadline := time.Now().Add(90 * time.Second)
	for {
		if now := boot(); now != "" && now != was {
			r, _ := h.SSH(context.Background(), "root", "systemctl is-system-running")
			if st := strings.TrimSpace(r.Stdout); st == "running" || st == "degraded" {
				h.SettleBoot(t)
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come back within 90 s; see %s/hosts/%s/console.log", h.Name, h.lab.Dir, h.Name)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// SettleBoot starts again every unit that failed during a systemd lab
// host's boot, logging why it failed. systemd-remount-fs and
// systemd-sysusers each did once in CI, on a loaded machine, after an
// in-host reboot or power-on: tests that compare the unit lists before
// and after judge holiday, not the luck of an nspawn boot. A unit that
// holiday stopped is never failed (it is stopped and disabled).
func (h *Host) SettleBoot(t testing.TB) {
	t.Helper()
	out := h.MustSSH(t, "root", "systemctl --failed --no-legend --plain | awk '{print $1}'")
	for _, u := range strings.Fields(out) {
		why := h.MustSSH(t, "root", "journalctl -b --no-pager -o cat -u "+u+" | tail -20; true")
		t.Logf("%s: %s failed during the boot (a lab artifact; started again):\n%s", h.Name, u, why)
		h.MustSSH(t, "root", "systemctl restart "+u+" || true")
	}
}
