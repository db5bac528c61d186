package device_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/device/devicesim"
	"github.com/holiday-ops/holiday/internal/sshx"
	"golang.org/x/crypto/ssh"
)

// sim starts a simulated device and returns it with a Target and Options
// that reach it: known_hosts holding its key, passwords in files.
func sim(t *testing.T, model string, f devicesim.Faults, enable bool) (*devicesim.Device, device.Target, device.Options) {
	t.Helper()
	d := &devicesim.Device{Model: model, User: "backup", Password: "s3cret-login", Faults: f}
	if enable && (model == "cisco-ios" || model == "arista-eos" || model == "h3c-comware") {
		d.EnablePassword = "s3cret-enable"
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(d.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	en := filepath.Join(dir, "enable")
	must(t, os.WriteFile(pw, []byte("s3cret-login\n"), 0o600))
	must(t, os.WriteFile(en, []byte("s3cret-enable\n"), 0o600))
	host, port := splitAddr(t, d.Addr)
	tg := device.Target{Name: "dev-" + model, Address: host, Port: port, Model: model, User: "backup",
		Password: device.Secret{File: pw}, Enable: device.Secret{File: en}}
	o := device.Options{KnownHosts: []string{kh}, ConnectTimeout: 5 * time.Second, Idle: 5 * time.Second, Timeout: 30 * time.Second}
	return d, tg, o
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	port := 0
	for _, c := range addr[i+1:] {
		port = port*10 + int(c-'0')
	}
	return addr[:i], port
}

var saveModels = map[string]bool{"cisco-ios": true, "arista-eos": true, "fortios": true, "huawei-vrp": true, "h3c-comware": true}
var startupModels = map[string]bool{"cisco-ios": true, "arista-eos": true, "huawei-vrp": true, "h3c-comware": true}

// TestDeviceFetchEveryModel reads every model plainly, with output split
// into 5-byte pieces (mid-line, mid-escape, mid-prompt), with the pager
// left on, with privileges to raise, and with unsaved changes to find and
// save; the config must be complete, clean of terminal noise, hold every
// canary secret, and show none once masked.
func TestDeviceFetchEveryModel(t *testing.T) {
	cases := []struct {
		name   string
		faults devicesim.Faults
		enable bool
		save   bool
	}{
		{name: "plain"},
		{name: "split", faults: devicesim.Faults{Split: true}, enable: true},
		{name: "pager-on", faults: devicesim.Faults{RefusePagingOff: true}, enable: true},
		{name: "unsaved-save", faults: devicesim.Faults{Unsaved: true}, save: true},
	}
	for _, model := range devicesim.Models() {
		for _, c := range cases {
			t.Run(model+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				d, tg, o := sim(t, model, c.faults, c.enable)
				tg.Save = c.save
				var logs strings.Builder
				o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				f, err := device.Fetch(context.Background(), tg, o)
				if err != nil {
					t.Fatalf("fetch: %v", err)
				}
				if strings.Contains(logs.String(), "CANARY") || strings.Contains(logs.String(), "s3cret") {
					t.Errorf("the debug log shows a secret:\n%s", logs.String())
				}
				for _, bad := range []string{"\x1b", "\x00", "\x07", "\b", "--More--", "---- More ----", "\r"} {
					if strings.Contains(f.Config, bad) {
						t.Errorf("config holds terminal noise %q:\n%s", bad, f.Config)
					}
				}
				canaries := d.Canaries()
				if len(canaries) < 2 {
					t.Fatalf("simulator config has %d canaries; the test needs them", len(canaries))
				}
				for _, c := range canaries {
					if !strings.Contains(f.Config, c) {
						t.Errorf("stored config lacks canary secret %s", c)
					}
				}
				if m := device.Mask(model, f.Config); strings.Contains(m, "CANARY") {
					t.Errorf("masked config still shows a canary:\n%s", grepLines(m, "CANARY"))
				}
				if strings.Contains(f.Config, "unsaved-change") != c.faults.Unsaved {
					t.Errorf("config shows the unsaved change: %v, want %v", !c.faults.Unsaved, c.faults.Unsaved)
				}
				wantUnsaved := device.UnsavedUnknown
				if model == "junos" || model == "routeros" {
					wantUnsaved = device.UnsavedNone
				}
				if startupModels[model] {
					wantUnsaved = device.UnsavedNone
					if c.faults.Unsaved {
						wantUnsaved = device.UnsavedFound
					}
				}
				if f.Unsaved != wantUnsaved {
					t.Errorf("Unsaved = %v, want %v", f.Unsaved, wantUnsaved)
				}
				wantSaves := 0
				if c.save && saveModels[model] {
					wantSaves = 1
				}
				if d.Saves() != wantSaves || f.Saved != (wantSaves == 1) {
					t.Errorf("saves on the device %d, Saved %v; want %d (skipped: %q)", d.Saves(), f.Saved, wantSaves, f.SaveSkipped)
				}
				if c.save && wantSaves == 0 && f.SaveSkipped == "" {
					t.Errorf("save asked for on %s, not run, and no reason given", model)
				}
				if c.faults.RefusePagingOff && !d.Faults.RefusePagingOff {
					t.Fatal("unreachable")
				}
			})
		}
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDeviceDiff: two reads of an unchanged device differ in volatile
// lines and re-encrypted ciphertext only, which gives 0 diff lines; a real
// change gives exactly its lines.
func TestDeviceDiff(t *testing.T) {
	for _, model := range devicesim.Models() {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			d, tg, o := sim(t, model, devicesim.Faults{}, false)
			a, err := device.Fetch(context.Background(), tg, o)
			must(t, err)
			b, err := device.Fetch(context.Background(), tg, o)
			must(t, err)
			// Comware prints nothing that varies between reads
			if a.Config == b.Config && model != "h3c-comware" {
				t.Fatalf("two raw reads are identical: the simulator's volatile lines do not vary, the test proves nothing")
			}
			if diff := device.Diff(model, "a", a.Config, "b", b.Config); diff != "" {
				t.Errorf("unchanged device gives a diff:\n%s", diff)
			}
			d.Change("holidaytest")
			c, err := device.Fetch(context.Background(), tg, o)
			must(t, err)
			diff := device.Diff(model, "b", b.Config, "c", c.Config)
			var changed []string
			for _, l := range strings.Split(diff, "\n") {
				if (strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-")) && !strings.HasPrefix(l, "+++") && !strings.HasPrefix(l, "---") {
					changed = append(changed, l)
				}
			}
			if len(changed) < 1 || len(changed) > 2 {
				t.Fatalf("a one-line change gives %d changed lines:\n%s", len(changed), diff)
			}
			for _, l := range changed {
				if strings.HasPrefix(l, "+") && !strings.Contains(l, "holidaytest") {
					t.Errorf("added line %q is not the change", l)
				}
			}
		})
	}
}

// TestDeviceFailures: every bad day fails with one clear error and stores
// nothing; none waits longer than its timeout.
func TestDeviceFailures(t *testing.T) {
	cases := []struct {
		name   string
		model  string
		faults devicesim.Faults
		setup  func(tg *device.Target, o *device.Options)
		want   string
		within time.Duration
		// interrupt: the run ends (Ctrl-C) that long after the start
		interrupt time.Duration
	}{
		{name: "cut-ios", model: "cisco-ios", faults: devicesim.Faults{CutAfter: 900}, want: "closed the session", within: 5 * time.Second},
		{name: "cut-junos-exec", model: "junos", faults: devicesim.Faults{CutAfter: 900}, want: "without an exit status", within: 5 * time.Second},
		{name: "cut-routeros-exec", model: "routeros", faults: devicesim.Faults{CutAfter: 300}, want: "without an exit status", within: 5 * time.Second},
		{name: "cut-fortios", model: "fortios", faults: devicesim.Faults{CutAfter: 900}, want: "closed the session", within: 5 * time.Second},
		{name: "hang-vrp", model: "huawei-vrp", faults: devicesim.Faults{HangAfter: 700}, want: "nothing new from the device for 1s", within: 4 * time.Second},
		{name: "hang-junos", model: "junos", faults: devicesim.Faults{HangAfter: 700}, want: "nothing new from the device for 1s", within: 4 * time.Second},
		{name: "whole-timeout-cli", model: "h3c-comware", faults: devicesim.Faults{HangAfter: 700}, setup: func(tg *device.Target, o *device.Options) {
			o.Timeout = 1500 * time.Millisecond
		}, want: "time ran out (last line:", within: 4 * time.Second},
		{name: "whole-timeout-exec", model: "routeros", faults: devicesim.Faults{HangAfter: 300}, setup: func(tg *device.Target, o *device.Options) {
			o.Timeout = 1500 * time.Millisecond
		}, want: "time ran out after 300 bytes (whole-device timeout 1.5s)", within: 4 * time.Second},
		{name: "busy", model: "cisco-ios", faults: devicesim.Faults{Busy: 10},
			want: "the device closed the connection during the SSH handshake (all its VTY lines busy, or its SSH server restarting?) (3 connections in", within: 4 * time.Second},
		{name: "no-banner", model: "arista-eos", faults: devicesim.Faults{NoBanner: true}, want: "SSH handshake did not finish within 1s", within: 4 * time.Second},
		{name: "interrupted-handshake", model: "arista-eos", faults: devicesim.Faults{NoBanner: true}, setup: func(tg *device.Target, o *device.Options) {
			o.ConnectTimeout = time.Minute
		}, interrupt: 300 * time.Millisecond, want: "context canceled", within: 2 * time.Second},
		{name: "wrong-password", model: "cisco-ios", setup: func(tg *device.Target, o *device.Options) {
			tg.Password = device.Secret{Env: "HOLIDAY_TEST_WRONG_PW"}
		}, want: `login refused for user "backup" with the password from $HOLIDAY_TEST_WRONG_PW (one attempt made`, within: 4 * time.Second},
		{name: "wrong-enable", model: "cisco-ios", setup: func(tg *device.Target, o *device.Options) {
			tg.Enable = device.Secret{Env: "HOLIDAY_TEST_WRONG_PW"}
		}, want: `"enable" did not raise privileges`, within: 4 * time.Second},
		{name: "enable-without-password", model: "h3c-comware", setup: func(tg *device.Target, o *device.Options) {
			tg.Enable = device.Secret{}
		}, want: "set enable_password_env or enable_password_file", within: 4 * time.Second},
		{name: "legacy-without-legacy-kex", model: "cisco-ios", faults: devicesim.Faults{LegacyOnly: true}, want: "set legacy_kex: true for this device", within: 4 * time.Second},
		{name: "unknown-host-key", model: "junos", setup: func(tg *device.Target, o *device.Options) {
			o.KnownHosts = []string{filepath.Join(t.TempDir(), "empty_known_hosts")}
		}, want: "host key unknown", within: 4 * time.Second},
		{name: "changed-host-key", model: "fortios", setup: func(tg *device.Target, o *device.Options) {
			o.KnownHosts = []string{otherKey(t, tg.Address, tg.Port)}
		}, want: "HOST KEY CHANGED", within: 4 * time.Second},
	}
	t.Setenv("HOLIDAY_TEST_WRONG_PW", "not-the-password")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, tg, o := sim(t, c.model, c.faults, true)
			o.Idle, o.ConnectTimeout = time.Second, time.Second
			if strings.HasPrefix(c.name, "whole-timeout") {
				o.Idle = 10 * time.Second // longer than the whole time
			}
			if c.setup != nil {
				c.setup(&tg, &o)
			}
			ctx := context.Background()
			if c.interrupt > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(c.interrupt, cancel)
			}
			start := time.Now()
			f, err := device.Fetch(ctx, tg, o)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("fetch succeeded with %d bytes; want an error containing %q", len(f.Config), c.want)
			}
			t.Logf("%s: %v", c.name, err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %v\nwant it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Errorf("error shows a secret: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			if took > c.within {
				t.Errorf("took %s, want under %s", took, c.within)
			}
			if c.name == "unknown-host-key" && !strings.Contains(sshx.HintOf(err), "--accept-new-host-keys") {
				t.Errorf("no hint for an unknown device key: %q", sshx.HintOf(err))
			}
			if c.name == "wrong-password" && (d.AuthAttempts() != 1 || d.Accepted() != 1) {
				t.Errorf("the device saw %d password attempts on %d connections, want 1", d.AuthAttempts(), d.Accepted())
			}
			if c.name == "busy" && d.Accepted() != 3 {
				t.Errorf("the busy device saw %d connections, want 3", d.Accepted())
			}
		})
	}
}

// TestDeviceSaveDidNotTake: a save that reports success but leaves the
// startup config as it was is reported as failed, and the running config
// is still read, complete.
func TestDeviceSaveDidNotTake(t *testing.T) {
	d, tg, o := sim(t, "huawei-vrp", devicesim.Faults{Unsaved: true, SaveIgnored: true}, false)
	tg.Save = true
	f, err := device.Fetch(context.Background(), tg, o)
	if err != nil {
		t.Fatalf("a failed save cost the backup: %v", err)
	}
	if f.Saved || f.SaveErr == nil || !strings.Contains(f.SaveErr.Error(), `"save" reported success, but the startup config still differs`) {
		t.Errorf("Saved %v, SaveErr %v", f.Saved, f.SaveErr)
	}
	if f.Unsaved != device.UnsavedFound || !strings.Contains(f.Config, "unsaved-change") || d.Saves() != 0 {
		t.Errorf("Unsaved %v, saves %d, config holds the change: %v", f.Unsaved, d.Saves(), strings.Contains(f.Config, "unsaved-change"))
	}
}

// otherKey writes a known_hosts file holding some other key for the
// address.
func otherKey(t *testing.T, host string, port int) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	k, err := ssh.NewPublicKey(pub)
	must(t, err)
	f := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[%s]:%d %s", host, port, ssh.MarshalAuthorizedKey(k))
	must(t, os.WriteFile(f, []byte(line), 0o600))
	return f
}

// TestDeviceBusyForAMoment: a device that closes the first connections
// before any SSH (every VTY line taken by another session) is dialed
// again after a pause, and its config is read whole; the password is
// offered once, on the connection that got in.
func TestDeviceBusyForAMoment(t *testing.T) {
	d, tg, o := sim(t, "cisco-ios", devicesim.Faults{Busy: 2}, true)
	f, err := device.Fetch(context.Background(), tg, o)
	if err != nil {
		t.Fatalf("fetch of a device busy for two connections: %v", err)
	}
	if !strings.Contains(f.Config, "hostname") || d.Accepted() != 3 || d.AuthAttempts() != 1 {
		t.Errorf("config of %d bytes, %d connections, %d password attempts; want the config, 3 and 1", len(f.Config), d.Accepted(), d.AuthAttempts())
	}
}

// TestDeviceKeyboardOnly: a device that offers keyboard-interactive
// alone and, like OpenSSH with PAM, sends a request with no question
// after the Password prompt logs in with one password attempt (that
// request was once taken for a second prompt and the login refused).
func TestDeviceKeyboardOnly(t *testing.T) {
	d, tg, o := sim(t, "arista-eos", devicesim.Faults{KeyboardOnly: true}, false)
	f, err := device.Fetch(context.Background(), tg, o)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if !strings.Contains(f.Config, "hostname") || d.AuthAttempts() != 1 {
		t.Errorf("config of %d bytes, %d password attempts; want the config and 1", len(f.Config), d.AuthAttempts())
	}
}

// TestDeviceAcceptNew: with AcceptNew an unknown device's key is added to
// known_hosts and the next connection is checked against it.
func TestDeviceAcceptNew(t *testing.T) {
	d, tg, o := sim(t, "arista-eos", devicesim.Faults{}, false)
	o.KnownHosts = []string{filepath.Join(t.TempDir(), "known_hosts")}
	o.AcceptNew = true
	if _, err := device.Fetch(context.Background(), tg, o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(o.KnownHosts[0])
	must(t, err)
	if !strings.Contains(string(b), strings.Fields(d.KnownHostsLine())[2]) {
		t.Fatalf("known_hosts lacks the device's key:\n%s", b)
	}
	o.AcceptNew = false
	if _, err := device.Fetch(context.Background(), tg, o); err != nil {
		t.Fatalf("second connection, key now known: %v", err)
	}
}

// TestDeviceLegacyKex: a device that speaks only group1, aes128-cbc and
// ssh-rsa connects with legacy_kex and only with it.
func TestDeviceLegacyKex(t *testing.T) {
	_, tg, o := sim(t, "cisco-ios", devicesim.Faults{LegacyOnly: true}, false)
	if _, err := device.Fetch(context.Background(), tg, o); err == nil {
		t.Fatal("a legacy-only device connected without legacy_kex")
	}
	tg.LegacyKex = true
	f, err := device.Fetch(context.Background(), tg, o)
	if err != nil {
		t.Fatalf("with legacy_kex: %v", err)
	}
	if !strings.HasSuffix(f.Config, "end\n") {
		t.Errorf("config does not end with end: %q", f.Config[max(0, len(f.Config)-40):])
	}
}

// TestDeviceRouterOSColours: without the +ct login flags RouterOS colours
// its export; the driver logs in with them and stores plain text.
func TestDeviceRouterOSColours(t *testing.T) {
	_, tg, o := sim(t, "routeros", devicesim.Faults{}, false)
	f, err := device.Fetch(context.Background(), tg, o)
	must(t, err)
	if strings.Contains(f.Config, "\x1b") {
		t.Fatal("export holds ANSI colours: +ct was not used")
	}
	saved := device.Drivers["routeros"].UserSuffix
	device.Drivers["routeros"].UserSuffix = ""
	defer func() { device.Drivers["routeros"].UserSuffix = saved }()
	f, err = device.Fetch(context.Background(), tg, o)
	if err == nil && !strings.Contains(f.Config, "\x1b") {
		t.Fatal("the simulator does not colour without +ct: the first half of this test proves nothing")
	}
}
