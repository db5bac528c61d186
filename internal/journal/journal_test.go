package journal

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testKey = Key(bytes.Repeat([]byte{7}, 32))

func writeSample(t testing.TB, path string) string {
	t.Helper()
	w, err := Create(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, e := range []Entry{
		{Run: "r1", Host: "web1", Phase: RunBegin},
		{Run: "r1", Host: "web1", Step: "service:nginx", Kind: "service", Phase: Intent, Record: json.RawMessage(`{"active":"active","enabled":"enabled"}`)},
		{Run: "r1", Host: "web1", Step: "service:nginx", Kind: "service", Phase: Result, Record: json.RawMessage(`{"active":"inactive","enabled":"disabled"}`)},
		{Run: "r1", Host: "web1", Step: "service:redis", Kind: "service", Phase: Intent, Record: json.RawMessage(`{"active":"active"}`)},
	} {
		if _, err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	return w.Head()
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web1.journal")
	head := writeSample(t, path)
	j, err := ReadFile(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Entries) != 4 || j.Head != head || j.Torn {
		t.Fatalf("read back %d entries, head %q torn %v; want 4, %q, false", len(j.Entries), j.Head, j.Torn, head)
	}
	steps := j.Steps("r1")
	if len(steps) != 2 {
		t.Fatalf("got %d steps, want 2", len(steps))
	}
	if steps[0].ID != "service:nginx" || steps[0].Result == nil {
		t.Errorf("step 0 = %+v, want nginx with a result", steps[0])
	}
	if steps[1].ID != "service:redis" || steps[1].Result != nil {
		t.Errorf("step 1 = %+v, want redis with intent only (crash before result)", steps[1])
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestCreateRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	writeSample(t, path)
	if _, err := Create(path, testKey); err == nil {
		t.Fatal("Create over an existing journal succeeded")
	}
}

// Every way of altering a journal must be caught, with the line named.
func TestTamperDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	writeSample(t, path)
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1] // last element is "" after the final newline

	for _, tc := range []struct {
		name   string
		edit   func() string
		key    Key
		wantIn string
	}{
		{"changed record", func() string {
			return strings.Replace(string(orig), `"active":"active","enabled":"enabled"`, `"active":"inactive","enabled":"enabled"`, 1)
		}, testKey, "line 2: MAC mismatch"},
		{"removed line", func() string { return lines[0] + lines[2] + lines[3] }, testKey, "line 2: sequence 3 where 2"},
		{"swapped lines", func() string { return lines[0] + lines[2] + lines[1] + lines[3] }, testKey, "line 2: sequence"},
		{"renumbered after removal", func() string {
			return lines[0] + strings.Replace(lines[2], `"seq":3`, `"seq":2`, 1)
		}, testKey, "line 2: MAC mismatch"},
		{"other control node's key", func() string { return string(orig) }, Key(bytes.Repeat([]byte{8}, 32)), "line 1: MAC mismatch"},
		{"garbage line", func() string { return lines[0] + "{not json}\n" }, testKey, "line 2: not a journal entry"},
		{"unknown field", func() string { return strings.Replace(string(orig), `"seq":1,`, `"seq":1,"x":1,`, 1) }, testKey, "line 1: not a journal entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.edit()), tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.wantIn) {
				t.Fatalf("Read = %v, want an error containing %q", err, tc.wantIn)
			}
		})
	}
}

// A crash while writing leaves a partial last line: it is reported as torn,
// not as damage, and Append cuts it off before going on.
func TestTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	head := writeSample(t, path)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":5,"time":"2027-`)
	f.Close()

	j, err := ReadFile(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !j.Torn || len(j.Entries) != 4 || j.Head != head {
		t.Fatalf("torn=%v entries=%d; want torn with 4 entries", j.Torn, len(j.Entries))
	}
	w, err := Append(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	e, err := w.Write(Entry{Run: "r1", Host: "web1", Step: "service:redis", Phase: Result, Time: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if e.Seq != 5 {
		t.Errorf("appended seq %d, want 5", e.Seq)
	}
	j, err = ReadFile(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if j.Torn || len(j.Entries) != 5 || j.Steps("r1")[1].Result == nil {
		t.Fatalf("after append: torn=%v entries=%d", j.Torn, len(j.Entries))
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "journal.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) || len(k1) != 32 {
		t.Fatalf("key not stable: %x vs %x", k1, k2)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("zz\n"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged key: err = %v", err)
	}
}

// FuzzRead: the decoder never panics, and whatever it accepts re-encodes to
// a journal it accepts again with the same head.
func FuzzRead(f *testing.F) {
	path := filepath.Join(f.TempDir(), "j")
	writeSample(f, path)
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("{}\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Read(bytes.NewReader(data), testKey)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, e := range j.Entries {
			b, _ := json.Marshal(e)
			buf.Write(append(b, '\n'))
		}
		j2, err := Read(&buf, testKey)
		if err != nil || j2.Head != j.Head || len(j2.Entries) != len(j.Entries) {
			t.Fatalf("accepted journal does not re-read: %v", err)
		}
	})
}

// After a failed write the writer refuses further entries: appending after
// a partial line would turn a recoverable torn tail into mid-file damage.
func TestWriterStopsAfterFailedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	w, err := Create(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(Entry{Run: "r", Host: "h", Phase: RunBegin}); err != nil {
		t.Fatal(err)
	}
	// Simulate the device failing under the writer: the file is closed
	// beneath it, so the next write fails.
	w.f.Close()
	if _, err := w.Write(Entry{Run: "r", Host: "h", Step: "s", Phase: Intent}); err == nil {
		t.Fatal("write to a closed file succeeded")
	}
	// Even with a working file again, the writer stays stopped.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	w.f = f
	_, err = w.Write(Entry{Run: "r", Host: "h", Step: "s", Phase: Result})
	if err == nil || !strings.Contains(err.Error(), "an earlier write failed") {
		t.Fatalf("write after a failure: err = %v, want the writer to refuse", err)
	}
	w.Close()
	if j, err := ReadFile(path, testKey); err != nil || len(j.Entries) != 1 {
		t.Fatalf("journal after failure: %v, %d entries; want it readable with 1", err, len(j.Entries))
	}
}

// SignedWith tells the key a journal was written with from its first
// entry; Fingerprint names a key without revealing it; ParseKey reads
// what Encode writes.
func TestSignedWithAndKeyNames(t *testing.T) {
	dir := t.TempDir()
	k1, _ := NewKey()
	k2, _ := NewKey()
	path := filepath.Join(dir, "j")
	w, err := Create(path, k1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(Entry{Run: "r", Host: "h", Phase: RunBegin})
	w.Write(Entry{Run: "r", Host: "h", Phase: RunEnd})
	w.Close()
	data, _ := os.ReadFile(path)
	second := data[bytes.IndexByte(data, '\n')+1:] // starts at seq 2
	for _, tc := range []struct {
		name string
		data []byte
		key  Key
		want bool
	}{
		{"its key", data, k1, true},
		{"another key", data, k2, false},
		{"first entry altered", bytes.Replace(data, []byte(`"host":"h"`), []byte(`"host":"x"`), 1), k1, false},
		{"not the first entry", second, k1, false},
		{"no complete line", data[:20], k1, false},
		{"empty", nil, k1, false},
	} {
		if got := SignedWith(tc.data, tc.key); got != tc.want {
			t.Errorf("%s: SignedWith = %v, want %v", tc.name, got, tc.want)
		}
	}
	if k1.Fingerprint() == k2.Fingerprint() || len(k1.Fingerprint()) != 16 || strings.Contains(string(k1.Encode()), k1.Fingerprint()) {
		t.Errorf("fingerprints %s, %s: want 16 hex digits, distinct, not part of the key", k1.Fingerprint(), k2.Fingerprint())
	}
	back, err := ParseKey(k1.Encode())
	if err != nil || !bytes.Equal(back, k1) {
		t.Errorf("ParseKey(Encode) = %x, %v", back, err)
	}
	if _, err := ParseKey([]byte("abc\n")); err == nil {
		t.Error("ParseKey of a short key: no error")
	}
}
