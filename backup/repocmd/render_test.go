package repocmd

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/golden"
)

// go test ./backup/repocmd -update rewrites testdata/*.golden from the
// printers' current output; review the diff before committing it.

// id returns a fixed ID whose bytes all are b.
func id(b byte) repo.ID {
	var x repo.ID
	for i := range x {
		x[i] = b
	}
	return x
}

func ptr[T any](v T) *T { return &v }

var t0 = time.Date(2024, 12, 20, 17, 30, 5, 0, time.UTC)

func init() {
	// the snapshots table prints local time; fix it for the golden files
	time.Local = time.UTC
}

func testSnapshots() []*repo.Snapshot {
	return []*repo.Snapshot{
		{ID: id(0x1a), Time: t0, Tree: ptr(id(0x2b)), Paths: []string{"/etc", "/srv/www"}, Hostname: "web1", Username: "root", ProgramVersion: "holiday dev"},
		{ID: id(0x3c), Time: t0.Add(26 * time.Hour), Parent: ptr(id(0x1a)), Tree: ptr(id(0x4d)), Paths: []string{"/dev/sda"}, Hostname: "a-very-long-hostname-indeed", Tags: []string{"holiday", "disk"}},
	}
}

func TestGoldenSnapshots(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sns    []*repo.Snapshot
		asJSON bool
	}{
		{"snapshots", testSnapshots(), false},
		{"snapshots_json", testSnapshots(), true},
		{"snapshots_empty", nil, false},
		{"snapshots_empty_json", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := PrintSnapshots(&b, tc.sns, tc.asJSON); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

func TestGoldenKeys(t *testing.T) {
	keys := []repo.Keys{
		{Name: id(0x5e).String(), Current: true, KeyFile: repo.KeyFile{Created: t0, Username: "root", Hostname: "control"}},
		{Name: id(0x6f).String(), KeyFile: repo.KeyFile{Created: t0.Add(time.Minute), Username: "operator", Hostname: "safe-at-another-site"}},
	}
	for _, asJSON := range []bool{false, true} {
		name := "keys"
		if asJSON {
			name += "_json"
		}
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := PrintKeys(&b, keys, asJSON); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name+".golden"), b.Bytes())
		})
	}
}

func TestGoldenCheck(t *testing.T) {
	damaged := &checker.Report{
		Snapshots: 3, Packs: 12, PacksRead: 12, BlobsRead: 340, BytesRead: 5 << 20,
		Problems: []checker.Problem{
			{Kind: "pack", Object: id(0x7a).String(), Err: "hash does not match", Hits: []string{
				"snapshot 1a1a1a1a: /etc/passwd", "snapshot 3c3c3c3c: /srv/www (whole directory)"}},
			{Kind: "index", Object: id(0x8b).String(), Err: "cannot decrypt"},
		},
		Unreferenced: []string{id(0x9c).String(), id(0xad).String()},
	}
	for _, tc := range []struct {
		name             string
		rep              *checker.Report
		readData, asJSON bool
	}{
		{"check_ok", &checker.Report{Snapshots: 3, Packs: 12, Problems: []checker.Problem{}}, false, false},
		{"check_ok_read_data", &checker.Report{Snapshots: 3, Packs: 12, PacksRead: 12, BlobsRead: 340, BytesRead: 1536, Problems: []checker.Problem{}}, true, false},
		{"check_damaged", damaged, true, false},
		{"check_damaged_json", damaged, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := PrintCheck(&b, tc.rep, tc.readData, tc.asJSON); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

func TestGoldenLs(t *testing.T) {
	entries := []struct {
		p string
		n repo.Node
	}{
		{"/etc", repo.Node{Name: "etc", Type: repo.NodeDir, Mode: 0o755, ModTime: t0, Subtree: ptr(id(0x11))}},
		{"/etc/passwd", repo.Node{Name: "passwd", Type: "file", Mode: 0o644, ModTime: t0, Size: 1834, Content: []repo.ID{id(0x22)}}},
		{"/etc/localtime", repo.Node{Name: "localtime", Type: repo.NodeSymlink, Mode: 0o777, ModTime: t0, LinkTarget: "/usr/share/zoneinfo/UTC"}},
		{"/etc/shadow", repo.Node{Name: "shadow", Type: "file", Mode: 0o640, ModTime: t0, GID: 42, Size: 1020, Content: []repo.ID{id(0x33)}}},
		{"/dev/null", repo.Node{Name: "null", Type: repo.NodeCharDev, Mode: 0o666, ModTime: t0, Device: 259}},
		{"/tmp/a b\"c", repo.Node{Name: "a b\"c", Type: repo.NodeFifo, Mode: 0o600, ModTime: t0, UID: 1000, GID: 1000}},
	}
	for _, tc := range []struct {
		name   string
		format LsFormat
	}{{"ls", LsShort}, {"ls_long", LsLong}, {"ls_json", LsJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			for _, e := range entries {
				if err := PrintLsEntry(&b, e.p, &e.n, tc.format); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), b.Bytes())
		})
	}
}

func TestGoldenSummaries(t *testing.T) {
	sn := &repo.Snapshot{ID: id(0x1a)}
	st := archiver.Stats{Files: 1200, Dirs: 80, Unchanged: 1100, BytesRead: 3 << 30, BytesAdded: 12 << 20, BytesStored: 5 << 20,
		Unreadable: []string{"/etc/secret"}, Elapsed: 2500 * time.Millisecond}
	rst := restorer.Stats{Files: 1200, Dirs: 80, Others: 3, Bytes: 3 << 30, Errors: 1}
	var text, js bytes.Buffer
	for _, x := range []struct {
		w      *bytes.Buffer
		asJSON bool
	}{{&text, false}, {&js, true}} {
		if err := PrintBackup(x.w, sn, st, x.asJSON); err != nil {
			t.Fatal(err)
		}
		if err := PrintRestore(x.w, sn, "/srv/restore", rst, 1500*time.Millisecond, x.asJSON); err != nil {
			t.Fatal(err)
		}
	}
	golden.Check(t, filepath.Join("testdata", "summaries"+".golden"), text.Bytes())
	golden.Check(t, filepath.Join("testdata", "summaries_json"+".golden"), js.Bytes())
}

func TestHumanAndParseSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.00 GiB"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %q, want %q", n, got, want)
		}
	}
	for s, want := range map[string]int{"4M": 4 << 20, "1MiB": 1 << 20, "1048576": 1 << 20, " 2g ": 2 << 30, "8KiB": 8 << 10, "10B": 10, "abc": 0, "0": 0, "-1M": 0} {
		got, err := ParseSize(s)
		if want == 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", s, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
}
