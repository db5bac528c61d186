package facts

import (
	"reflect"
	"testing"

	"github.com/holiday-ops/holiday/internal/procnet"
)

func TestClassify(t *testing.T) {
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0000000000000000 100 0 0 10 0
   1: 0B00D50A:0016 0100D50A:D431 01 00000000:00000000 02:000A7F7A 00000000     0        0 101 4 0000000000000000 20 4 31 10 -1
   2: 0B00D50A:9C40 0C00D50A:1538 01 00000000:00000000 02:000A7F7A 00000000     0        0 102 4 0000000000000000 20 4 31 10 -1
`
	socks, err := procnet.Parse("tcp", []byte(tcp))
	if err != nil {
		t.Fatal(err)
	}
	l, in := classify(socks)
	if len(l) != 1 || l[0].Local.Port() != 22 {
		t.Errorf("listeners = %v", l)
	}
	// The connection to port 22 is inbound; the one from port 40000 to
	// 10.213.0.12:5432 was opened by this host.
	if len(in) != 1 || in[0].Remote.String() != "10.213.0.1:54321" {
		t.Errorf("inbound = %v", in)
	}
}

func TestParseSave(t *testing.T) {
	empty := "# Generated\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [3:120]\nCOMMIT\n"
	if s := parseSave([]byte(empty)); len(s.tables) != 0 || s.rules != 0 {
		t.Errorf("empty tables counted: %+v", s)
	}
	used := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:LAB-BANS - [0:0]\n-A INPUT -j LAB-BANS\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
	s := parseSave([]byte(used))
	if !reflect.DeepEqual(s.tables, []string{"filter"}) || s.rules != 1 {
		t.Errorf("got %+v", s)
	}
	// iptables-nft-save's warning line alone is no rule.
	if s := parseSave([]byte("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n")); len(s.tables) != 0 {
		t.Errorf("warning counted as a table: %+v", s)
	}
}

func TestEmptyPasswords(t *testing.T) {
	shadow := "root:*:19000:0:99999:7:::\nops:!:19000::::::\nguest::19000::::::\nbad:$y$j9T$abc:19000::::::\n"
	if got := emptyPasswords([]byte(shadow)); !reflect.DeepEqual(got, []string{"guest"}) {
		t.Errorf("got %v", got)
	}
}

func TestParseAptSim(t *testing.T) {
	out := `Inst libssl3 [3.0.11-1~deb12u1] (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2024b-0+deb12u1 Debian:12.7/stable [all])
Conf libssl3 (3.0.13-1~deb12u1 Debian-Security:12/stable-security [amd64])
`
	total, sec, pkgs := parseAptSim([]byte(out))
	if total != 2 || sec != 1 || !reflect.DeepEqual(pkgs, []string{"libssl3"}) {
		t.Errorf("got %d %d %v", total, sec, pkgs)
	}
}

func TestSetSSHDLowercases(t *testing.T) {
	var s SSHD
	setSSHD(&s, "permitrootlogin", "Yes")
	if s.PermitRootLogin != "yes" {
		t.Errorf("not lowercased: %q", s.PermitRootLogin)
	}
}
