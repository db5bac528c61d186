package procnet

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseHexAddrPort(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:0016":                         "127.0.0.1:22",
		"0B00D50A:1F90":                         "10.213.0.11:8080",
		"00000000000000000000000000000000:0050": "[::]:80",
		"0000000000000000FFFF00000B00D50A:0016": "10.213.0.11:22", // v4-mapped, unmapped
	} {
		got, err := parseHexAddrPort(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got.String() != want {
			t.Errorf("%s = %s, want %s", in, got, want)
		}
	}
	// fd00:213::11 as the kernel prints it: four little-endian words.
	a := netip.MustParseAddr("fd00:213::11").As16()
	var hexs strings.Builder
	for i := 0; i < 16; i += 4 {
		for j := 3; j >= 0; j-- {
			hexs.WriteString(strings.ToUpper(hexByte(a[i+j])))
		}
	}
	got, err := parseHexAddrPort(hexs.String() + ":0016")
	if err != nil || got.String() != "[fd00:213::11]:22" {
		t.Errorf("fd00:213::11 round trip = %v, %v", got, err)
	}
	for _, bad := range []string{"0100007F", "0100007:0016", "0100007F:zz", "01:0016"} {
		if _, err := parseHexAddrPort(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

const tcpTable = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0000000000000000 100 0 0 10 0
   1: 0B00D50A:0016 0100D50A:D431 01 00000000:00000000 02:000A7F7A 00000000     0        0 101 4 0000000000000000 20 4 31 10 -1
`

const udpTable = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  7: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 200 2 0000000000000000 0
  8: 0B00D50A:A000 0C00D50A:0035 01 00000000:00000000 00:00000000 00000000     0        0 201 2 0000000000000000 0
`

// TestReadOwners reads a /proc copy under a root: two tables (no IPv6),
// and fd links of which some are sockets the caller wants.
func TestReadOwners(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(pid, fd, target string) {
		t.Helper()
		dir := filepath.Join(root, "proc", pid, "fd")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(dir, fd)); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/net/tcp", tcpTable)
	write("proc/net/udp", udpTable)
	link("100", "3", "socket:[100]")
	link("100", "4", "socket:[100]") // a dup'ed fd: the PID once
	link("9", "5", "socket:[100]")   // numeric order: 9 before 100
	link("9", "6", "socket:[201]")   // not wanted
	link("9", "7", "/dev/null")

	socks, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range socks {
		got = append(got, s.Proto+" "+s.Local.String()+" "+s.Remote.String()+" "+s.State+" "+s.Inode)
	}
	want := []string{
		"tcp 0.0.0.0:22 0.0.0.0:0 0A 100",
		"tcp 10.213.0.11:22 10.213.0.1:54321 01 101",
		"udp 0.0.0.0:68 0.0.0.0:0 07 200",
		"udp 10.213.0.11:40960 10.213.0.12:53 01 201",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Read =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var listening []string
	for _, s := range socks {
		if s.Listening() {
			listening = append(listening, s.Inode)
		}
	}
	if !reflect.DeepEqual(listening, []string{"100", "200"}) {
		t.Errorf("listening inodes = %v, want [100 200]", listening)
	}

	owners := Owners(root, map[string]bool{"100": true, "200": true})
	if want := map[string][]int{"100": {9, 100}}; !reflect.DeepEqual(owners, want) {
		t.Errorf("Owners = %v, want %v", owners, want)
	}
}

func TestParseBadLine(t *testing.T) {
	bad := strings.Replace(tcpTable, "0B00D50A:0016", "0B00D50A", 1)
	if _, err := Parse("tcp", []byte(bad)); err == nil || !strings.Contains(err.Error(), "/proc/net/tcp") {
		t.Errorf("err = %v, want one naming /proc/net/tcp", err)
	}
}
