// Package journal is holiday's write-ahead log: one file per host and run,
// one JSON line per entry, each entry fsynced before the step it describes
// goes on, and all entries chained with an HMAC keyed on the control node so
// a rewritten, reordered or truncated-in-the-middle journal shows.
//
// A step writes an intent entry (the prior state, observed before any
// change) and then a result entry (what it actually did). A crash between
// the two leaves the intent alone, which is enough to revert from.
//
// The package knows nothing about actions or hosts beyond their names; it
// imports nothing of holiday's but internal/atomicfile.
package journal

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/internal/atomicfile"
)

// Phase says what an entry records.
type Phase string

// The phases of a step, in the order they are written.
const (
	Intent       Phase = "intent"        // prior state, before the change
	Result       Phase = "result"        // what the change actually did
	RevertIntent Phase = "revert-intent" // about to revert this step
	RevertResult Phase = "revert-result" // what the revert did
	RunBegin     Phase = "run-begin"     // a run starts on this host
	RunEnd       Phase = "run-end"       // a run ended on this host
)

// Entry is one line of the journal.
type Entry struct {
	Seq    uint64          `json:"seq"`            // 1, 2, … without gaps
	Time   time.Time       `json:"time"`           // when it was written (control node's clock)
	Run    string          `json:"run"`            // the run's ID
	Host   string          `json:"host"`           // the plan's host name
	Step   string          `json:"step,omitempty"` // a step's stable ID within the run, e.g. "service:nginx"
	Kind   string          `json:"kind,omitempty"` // the action kind, e.g. "service"
	Phase  Phase           `json:"phase"`
	Record json.RawMessage `json:"record,omitempty"` // the action's record (prior or done state)
	Error  string          `json:"error,omitempty"`  // the step's error, if it failed
	MAC    string          `json:"mac"`              // hex HMAC-SHA256 over the previous MAC and this entry
}

// Key is the control node's journal key. Keep it off the hosts.
type Key []byte

// NewKey returns a fresh random key.
func NewKey() (Key, error) {
	k := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, fmt.Errorf("journal: generating key: %w", err)
	}
	return k, nil
}

// LoadOrCreateKey reads the key at path, creating it (0600, 32 random
// bytes, hex) when it does not exist yet. The new key is written
// atomically: a crash never leaves a damaged key file, which would make
// every journal signed with it unverifiable.
func LoadOrCreateKey(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(b)
		if err != nil {
			return nil, fmt.Errorf("journal key %s is damaged: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading journal key: %w", err)
	}
	k, err := NewKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating journal key: %w", err)
	}
	if err := atomicfile.WriteNew(path, k.Encode(), 0o600); err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return LoadOrCreateKey(path)
		}
		return nil, fmt.Errorf("creating journal key: %w", err)
	}
	return k, nil
}

// mac computes an entry's MAC: HMAC-SHA256(key, prev || json(entry without MAC)).
func mac(key Key, prev string, e Entry) (string, error) {
	e.MAC = ""
	body, err := json.Marshal(e)
	if err != nil {
		return "", err
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Writer appends entries to one journal file. It is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	f    *os.File
	key  Key
	seq  uint64
	head string
	now  func() time.Time
	// broken is the first failed write or sync. The file may then hold a
	// partial or unacknowledged line, so nothing more may follow it: a
	// later entry would sit after damage and make the whole journal
	// unreadable, where a torn last line is recoverable.
	broken error
}

// Create starts a new journal at path; it refuses to overwrite one.
func Create(path string, key Key) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating journal: %w", err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("creating journal: %w", err)
	}
	return &Writer{f: f, key: key, now: time.Now}, nil
}

// Append opens an existing journal to add entries after verifying it. A
// torn last line (a crash while writing it) is cut off first: it was never
// acknowledged, so nothing relied on it.
func Append(path string, key Key) (*Writer, error) {
	j, err := ReadFile(path, key)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening journal: %w", err)
	}
	if j.Torn {
		if err := f.Truncate(j.validBytes); err != nil {
			f.Close()
			return nil, fmt.Errorf("cutting torn last entry of %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("cutting torn last entry of %s: %w", path, err)
		}
	}
	return &Writer{f: f, key: key, seq: uint64(len(j.Entries)), head: j.Head, now: time.Now}, nil
}

// Write fills in e's sequence number, time and MAC, appends it and fsyncs
// before returning. Only after Write returns may the caller go on to the
// change the entry announces.
func (w *Writer) Write(e Entry) (Entry, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return e, errors.New("journal: write after close")
	}
	if w.broken != nil {
		return e, fmt.Errorf("journal: an earlier write failed, no more entries go to %s: %w", w.f.Name(), w.broken)
	}
	e.Seq = w.seq + 1
	if e.Time.IsZero() {
		e.Time = w.now().UTC()
	}
	m, err := mac(w.key, w.head, e)
	if err != nil {
		return e, fmt.Errorf("journal: encoding entry: %w", err)
	}
	e.MAC = m
	line, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("journal: encoding entry: %w", err)
	}
	line = append(line, '\n')
	if _, err := w.f.Write(line); err != nil {
		w.broken = err
		return e, fmt.Errorf("journal: writing %s: %w", w.f.Name(), err)
	}
	if err := w.f.Sync(); err != nil {
		w.broken = err
		return e, fmt.Errorf("journal: syncing %s: %w", w.f.Name(), err)
	}
	w.seq, w.head = e.Seq, m
	return e, nil
}

// Head returns the MAC of the last entry written: the value the run summary
// prints so a rewritten journal can be recognised later.
func (w *Writer) Head() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.head
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Journal is a verified journal read back.
type Journal struct {
	Entries []Entry
	Head    string // MAC of the last entry; "" for an empty journal
	// Torn is set when the file ended in a partial line: a crash while an
	// entry was being written. That entry is not in Entries.
	Torn       bool
	validBytes int64
}

// ReadFile reads and verifies the journal at path.
func ReadFile(path string, key Key) (*Journal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening journal: %w", err)
	}
	defer f.Close()
	j, err := Read(f, key)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	return j, nil
}

// maxLine bounds one entry; records are small state descriptions, not data.
const maxLine = 16 << 20

// Read verifies a journal from r: every line parses, sequence numbers run
// 1, 2, … and every MAC matches the chain. Any mismatch is an error naming
// the line; only a final line without its newline is tolerated (Torn).
func Read(r io.Reader, key Key) (*Journal, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	j := &Journal{}
	var offset int64
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > maxLine {
				return nil, fmt.Errorf("line %d: entry longer than %d bytes", lineNo, maxLine)
			}
			var more []byte
			more, err = br.ReadSlice('\n')
			line = append(append([]byte{}, line...), more...)
		}
		if err == io.EOF {
			if len(line) > 0 {
				j.Torn = true // written partially, never acknowledged
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		var e Entry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("line %d: not a journal entry: %v", lineNo, err)
		}
		if want := uint64(len(j.Entries)) + 1; e.Seq != want {
			return nil, fmt.Errorf("line %d: sequence %d where %d was expected: entries were removed or reordered", lineNo, e.Seq, want)
		}
		m, err := mac(key, j.Head, e)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", lineNo, err)
		}
		if !hmac.Equal([]byte(m), []byte(e.MAC)) {
			return nil, fmt.Errorf("line %d: MAC mismatch: the journal was altered, or written with another control node's key", lineNo)
		}
		j.Entries = append(j.Entries, e)
		j.Head = e.MAC
		offset += int64(len(line))
		j.validBytes = offset
	}
	return j, nil
}

// Step is one step of a run as the journal tells it: its intent, and the
// result and revert entries if they were written.
type Step struct {
	ID, Kind     string
	Intent       Entry
	Result       *Entry // nil: crashed between intent and result
	RevertIntent *Entry
	RevertResult *Entry
}

// Reverted reports whether a revert of the step completed without error.
func (s Step) Reverted() bool { return s.RevertResult != nil && s.RevertResult.Error == "" }

// Steps groups the entries of run into steps, in the order their intents
// were written. Restore walks them backwards.
func (j *Journal) Steps(run string) []Step {
	var steps []Step
	at := map[string]int{}
	for _, e := range j.Entries {
		if e.Run != run || e.Step == "" {
			continue
		}
		i, ok := at[e.Step]
		if e.Phase == Intent && !ok {
			at[e.Step] = len(steps)
			steps = append(steps, Step{ID: e.Step, Kind: e.Kind, Intent: e})
			continue
		}
		if !ok {
			continue // a result without an intent cannot be acted on
		}
		e := e
		switch e.Phase {
		case Result:
			steps[i].Result = &e
		case RevertIntent:
			steps[i].RevertIntent = &e
		case RevertResult:
			steps[i].RevertResult = &e
		}
	}
	return steps
}

// Salvaged is what Salvage kept of a journal whose chain is broken.
type Salvaged struct {
	Entries  []Entry  // every entry whose own MAC verifies, in file order
	Problems []string // what was dropped or out of order, by line
}

// Salvage reads a journal whose chain does not verify (entries removed,
// reordered, or two writers interleaved) and keeps every entry whose own
// MAC verifies: one computed over some earlier line's MAC (or the empty
// chain start) with this key. Those entries were written by a holder of
// the key as they are; the rest are dropped and named in Problems. It is
// for `restore --salvage` alone: an operator's explicit choice, recorded
// in the journal rewritten from it.
func Salvage(r io.Reader, key Key) (*Salvaged, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	s := &Salvaged{}
	prevs := []string{""} // MACs an entry may chain from
	var last uint64
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if err == io.EOF {
			s.Problems = append(s.Problems, fmt.Sprintf("line %d: torn (written partially, never acknowledged): dropped", lineNo))
			break
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("line %d: not a journal entry: dropped", lineNo))
			continue
		}
		ok := false
		for i := len(prevs) - 1; i >= 0 && !ok; i-- {
			m, err := mac(key, prevs[i], e)
			ok = err == nil && hmac.Equal([]byte(m), []byte(e.MAC))
		}
		prevs = append(prevs, e.MAC)
		if !ok {
			s.Problems = append(s.Problems, fmt.Sprintf("line %d (seq %d, %s %s): its MAC does not verify with this key: dropped", lineNo, e.Seq, e.Phase, e.Step))
			continue
		}
		if e.Seq != last+1 {
			s.Problems = append(s.Problems, fmt.Sprintf("line %d: sequence %d after %d (kept: its MAC verifies)", lineNo, e.Seq, last))
		}
		last = e.Seq
		s.Entries = append(s.Entries, e)
	}
	return s, nil
}

// SignedWith reports whether data's first entry was written with key: its
// MAC verifies from the start of a chain. It tells which control node's
// key a journal was written with (this one's, or the key stored with the
// run in the repository) before the whole chain is verified with it.
func SignedWith(data []byte, key Key) bool {
	line, _, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return false
	}
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil || e.Seq != 1 {
		return false
	}
	m, err := mac(key, "", e)
	return err == nil && hmac.Equal([]byte(m), []byte(e.MAC))
}

// Fingerprint names a key without revealing it: the first 8 bytes of
// HMAC-SHA256(key, "holiday journal key fingerprint"), in hex. Messages
// and snapshots' tags may show it.
func (k Key) Fingerprint() string {
	h := hmac.New(sha256.New, k)
	h.Write([]byte("holiday journal key fingerprint"))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Encode is the key as its file holds it: hex and a newline.
func (k Key) Encode() []byte { return []byte(fmt.Sprintf("%x\n", []byte(k))) }

// ParseKey reads a key as Encode writes it.
func ParseKey(b []byte) (Key, error) {
	k, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(k) < 16 {
		return nil, errors.New("not a journal key: want at least 32 hex digits")
	}
	return k, nil
}
