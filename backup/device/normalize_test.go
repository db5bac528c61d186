package device_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/device/devicesim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file; got:\n%s", path, got)
	}
}

// TestDeviceGolden: what holiday shows of each simulated config (masked)
// and what it diffs (normalized, then masked), as golden files; and the
// normalized text of two different reads is the same.
func TestDeviceGolden(t *testing.T) {
	for _, model := range devicesim.Models() {
		t.Run(model, func(t *testing.T) {
			raw1, err := devicesim.Render(model, "edge-"+model, 1)
			must(t, err)
			raw2, err := devicesim.Render(model, "edge-"+model, 2)
			must(t, err)
			golden(t, model+".masked", device.Mask(model, raw1))
			golden(t, model+".normalized", device.Mask(model, device.Normalize(model, raw1)))
			if n1, n2 := device.Normalize(model, raw1), device.Normalize(model, raw2); n1 != n2 {
				t.Errorf("normalized reads differ:\n%s", device.Diff(model, "read1", raw1, "read2", raw2))
			}
		})
	}
}

// TestDeviceMask: one line per syntax, and lines that look like secrets
// but are not (they must stay visible, or diffs would hide real changes).
func TestDeviceMask(t *testing.T) {
	cases := []struct{ model, in, want string }{
		{"cisco-ios", "enable secret 5 $1$abcd$efgh", "enable secret 5 <removed>"},
		{"cisco-ios", "username bob privilege 15 password 0 hunter2", "username bob privilege 15 password 0 <removed>"},
		{"cisco-ios", "snmp-server community public RO 10", "snmp-server community <removed> RO 10"},
		{"cisco-ios", "tacacs-server key 7 0822455D0A16", "tacacs-server key 7 <removed>"},
		{"cisco-ios", " key 7 0822455D0A16", " key 7 <removed>"},
		{"cisco-ios", "crypto isakmp key s3cr3t address 0.0.0.0", "crypto isakmp key <removed> address 0.0.0.0"},
		{"cisco-ios", " pre-shared-key local mykey", " pre-shared-key local <removed>"},
		{"cisco-ios", "service password-encryption", "service password-encryption"},
		{"cisco-ios", "no service password-recovery", "no service password-recovery"},
		{"cisco-ios", " description password reset desk", " description password reset desk"},
		{"arista-eos", "username admin privilege 15 role network-admin secret sha512 $6$x$y", "username admin privilege 15 role network-admin secret sha512 <removed>"},
		{"junos", `    encrypted-password "$6$abc"; ## SECRET-DATA`, `    encrypted-password "<removed>"; ## SECRET-DATA`},
		{"junos", `    community public {`, `    community <removed> {`},
		{"junos", `            pre-shared-key ascii-text "$9$abc"; ## SECRET-DATA`, `            pre-shared-key ascii-text "<removed>"; ## SECRET-DATA`},
		{"junos", `    host-name edge1;`, `    host-name edge1;`},
		{"routeros", "add name=vpn password=abc profile=default", "add name=vpn password=<removed> profile=default"},
		{"routeros", `add group=read name=backup password="a b\"c"`, `add group=read name=backup password="<removed>"`},
		{"routeros", "/snmp community\nadd addresses=10.0.0.0/8 name=public\n/interface bridge\nadd name=bridge1\n", "/snmp community\nadd addresses=10.0.0.0/8 name=<removed>\n/interface bridge\nadd name=bridge1\n"},
		{"fortios", "        set password ENC SH2abc==", "        set password ENC <removed>"},
		{"fortios", "        set psksecret ENC abc", "        set psksecret ENC <removed>"},
		{"fortios", "config system snmp community\n    edit 1\n        set name \"public\"\n    next\nend\nconfig system interface\n    edit \"wan1\"\n        set name \"wan1\"\n", "config system snmp community\n    edit 1\n        set name \"<removed>\"\n    next\nend\nconfig system interface\n    edit \"wan1\"\n        set name \"wan1\"\n"},
		{"huawei-vrp", " local-user admin password irreversible-cipher %^%#abc%^%#", " local-user admin password irreversible-cipher <removed>"},
		{"huawei-vrp", "snmp-agent community read cipher %^%#x y%^%#", "snmp-agent community read cipher <removed>"},
		{"huawei-vrp", " authentication-mode aaa", " authentication-mode aaa"},
		{"h3c-comware", " snmp-agent community write simple private", " snmp-agent community write simple <removed>"},
		{"h3c-comware", " key authentication simple radpass", " key authentication simple <removed>"},
		{"h3c-comware", " password hash $h$6$abc", " password hash <removed>"},
		{"h3c-comware", " authentication-mode scheme", " authentication-mode scheme"},
		{"cisco-ios", "crypto pki\n-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\ndef\n-----END RSA PRIVATE KEY-----\n", "crypto pki\n-----BEGIN RSA PRIVATE KEY-----\n<removed>\n-----END RSA PRIVATE KEY-----\n"},
		{"no-such-model", "anything", "<removed>\n"},
	}
	for _, c := range cases {
		if got := device.Mask(c.model, c.in); got != c.want {
			t.Errorf("Mask(%s, %q)\n got %q\nwant %q", c.model, c.in, got, c.want)
		}
	}
}

// TestDeviceNormalize: volatile lines go, re-encrypted ciphertext gets a
// fixed word, everything else stays byte for byte.
func TestDeviceNormalize(t *testing.T) {
	cases := []struct{ model, in, want string }{
		{"cisco-ios", "! Last configuration change at 10:00:01 UTC Sat Dec 5 2026\nhostname r1\nntp clock-period 17179869\nend\n", "hostname r1\nend\n"},
		{"arista-eos", "! Time: Sat Dec  5 10:00:00 2026\nhostname s1\n", "hostname s1\n"},
		{"routeros", "# 2026-12-05 10:00:00 by RouterOS 7.16\n# software id = X\n/system identity\n", "# software id = X\n/system identity\n"},
		{"fortios", "#conf_file_ver=1234\n    set password ENC abc==\n", "    set password ENC <encrypted>\n"},
		{"huawei-vrp", "2026-12-05 10:00:00.123+08:00\n super password level 15 cipher %^%#abc%^%#\n", " super password level 15 cipher <encrypted>\n"},
		{"junos", "## Last commit: 2026-12-05 10:00:00 UTC by admin\nversion 22.4;\n", "version 22.4;\n"},
		{"cisco-ios", "hostname r1\r\n", "hostname r1\n"},
	}
	for _, c := range cases {
		if got := device.Normalize(c.model, c.in); got != c.want {
			t.Errorf("Normalize(%s, %q)\n got %q\nwant %q", c.model, c.in, got, c.want)
		}
	}
	if strings.Contains(device.Diff("cisco-ios", "a", "hostname r1\n", "b", "hostname r1\n"), "r1") {
		t.Error("equal configs give a diff")
	}
}
