package hostbackup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// pipeLink runs the host side in-process on a pair of pipes: the real
// protocol both ways, without SSH.
type pipeLink struct {
	*agentproto.Conn
	done chan error
}

func (l *pipeLink) Result(v any) error {
	var r agentproto.Result
	if err := l.ReadJSON(agentproto.FrameResult, &r); err != nil {
		return err
	}
	if r.Error != nil {
		return r.Error
	}
	return json.Unmarshal(r.Value, v)
}

// startHost starts serveHost on req; tamper, when set, rewrites the
// host's frames on their way (a lying host).
func startHost(t *testing.T, req Request, tamper func(agentproto.FrameType, []byte) []byte) *pipeLink {
	t.Helper()
	return startHostWith(t, tamper, func(ctx context.Context, conn *agentproto.Conn) (*Result, error) { return serveHost(ctx, conn, req) })
}

// startHostWith is startHost with the host's side of the operation given.
func startHostWith(t *testing.T, tamper func(agentproto.FrameType, []byte) []byte, serve func(context.Context, *agentproto.Conn) (*Result, error)) *pipeLink {
	t.Helper()
	toHostR, toHostW := io.Pipe()
	// a real pipe, as the agent's stdout is: disk blocks are spliced into it
	fromHostR, fromHostW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	hostConn := agentproto.NewConn(toHostR, fromHostW)
	var out io.Reader = fromHostR
	if tamper != nil {
		pr, pw := io.Pipe()
		go func() {
			in := agentproto.NewConn(fromHostR, io.Discard)
			o := agentproto.NewConn(nil, pw)
			for {
				ft, p, err := in.ReadFrame()
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				o.WriteFrame(ft, tamper(ft, p))
			}
		}()
		out = pr
	}
	l := &pipeLink{Conn: agentproto.NewConn(out, toHostW), done: make(chan error, 1)}
	go func() {
		res, err := serve(context.Background(), hostConn)
		r := agentproto.Result{}
		if err != nil {
			r.Error = &agentproto.RemoteError{Code: "failed", Message: err.Error()}
		} else {
			r.Value, _ = json.Marshal(res)
		}
		hostConn.WriteJSON(agentproto.FrameResult, r)
		l.done <- err
	}()
	t.Cleanup(func() { toHostW.Close(); fromHostR.Close(); fromHostW.Close() })
	return l
}

func testRepo(t *testing.T) (*Store, *repo.Repository) {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(context.Background(), r), r
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func backupFiles(t *testing.T, s *Store, host string, paths, exclude []string, parent *repo.Snapshot, known *Known) (*repo.Snapshot, Stats, error) {
	t.Helper()
	req := Request{Source: SourceFiles, Paths: paths, Exclude: exclude, Polynomial: uint64(s.R.Config().ChunkerPolynomial)}
	l := startHost(t, req, nil)
	sn, _, st, err := Backup(context.Background(), s, l, req, Options{Hostname: host, Paths: paths, Parent: parent, Known: known})
	return sn, st, err
}

func content(t *testing.T, r *repo.Repository, sn *repo.Snapshot, p string) (string, bool) {
	t.Helper()
	n, err := restorer.FindNode(context.Background(), r, *sn.Tree, p)
	if err != nil {
		return "", false
	}
	var b bytes.Buffer
	if err := restorer.Dump(context.Background(), r, n, &b); err != nil {
		t.Fatal(err)
	}
	return b.String(), true
}

// TestFilesRoundTrip: a tree goes through the protocol with its excludes;
// a second backup with the first as parent reads no file and sends no
// chunk; a changed file is read and only its new chunk crosses.
func TestFilesRoundTrip(t *testing.T) {
	s, r := testRepo(t)
	src := filepath.Join(t.TempDir(), "srv")
	rnd := make([]byte, 6<<20) // random: several content-defined chunks
	rand.NewChaCha8([32]byte{1}).Read(rnd)
	big := string(rnd)
	writeTree(t, src, map[string]string{"a.conf": "alpha", "sub/b.conf": "beta", "sub/big": big, "skip.log": "no", "sub/deep/c": "gamma", "empty": ""})
	if err := os.Symlink("a.conf", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	first, st, err := backupFiles(t, s, "h1", []string{src}, []string{"*.log"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 6-1 || st.Unchanged != 0 || st.BlobsSent == 0 {
		t.Errorf("first: %+v; want 5 files read, chunks sent", st)
	}
	for p, want := range map[string]string{"a.conf": "alpha", "sub/big": big, "sub/deep/c": "gamma", "empty": ""} {
		if got, ok := content(t, r, first, filepath.Join(src, p)); !ok || got != want {
			t.Errorf("%s: got %d bytes (found %v), want %d", p, len(got), ok, len(want))
		}
	}
	if _, ok := content(t, r, first, filepath.Join(src, "skip.log")); ok {
		t.Error("skip.log is in the snapshot despite the exclude")
	}
	n, err := restorer.FindNode(context.Background(), r, *first.Tree, filepath.Join(src, "link"))
	if err != nil || n.Type != repo.NodeSymlink || n.LinkTarget != "a.conf" {
		t.Errorf("link: %+v, %v", n, err)
	}

	// unchanged: nothing read, nothing sent
	known, err := HostKnown(context.Background(), r, "h1")
	if err != nil {
		t.Fatal(err)
	}
	second, st, err := backupFiles(t, s, "h1", []string{src}, []string{"*.log"}, first, known)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unchanged != 5 || st.BlobsSent != 0 || st.BytesSent != 0 {
		t.Errorf("unchanged second backup: %+v; want 5 unchanged, nothing sent", st)
	}
	if got, _ := content(t, r, second, filepath.Join(src, "sub/big")); got != big {
		t.Errorf("unchanged big file: %d bytes, want %d", len(got), len(big))
	}

	// one file changed: it alone is read; chunks the host sent before
	// (the big file's) are not sent again
	if err := os.WriteFile(filepath.Join(src, "sub/big"), []byte(big+"tail"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, st, err := backupFiles(t, s, "h1", []string{src}, []string{"*.log"}, second, known)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unchanged != 4 || st.BlobsSent == 0 || st.BytesSent > int64(len(big))/2 {
		t.Errorf("one file changed: %+v; want 4 unchanged and only the changed tail's chunks sent", st)
	}
	if got, _ := content(t, r, third, filepath.Join(src, "sub/big")); got != big+"tail" {
		t.Errorf("changed file: %d bytes, want %d", len(got), len(big)+4)
	}
}

// TestNoProbing: a blob another host stored is still asked for: the
// answer "have it" comes only for this host's own blobs.
func TestNoProbing(t *testing.T) {
	s, r := testRepo(t)
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "other"), map[string]string{"secret": "the other host's data"})
	writeTree(t, filepath.Join(dir, "mine"), map[string]string{"guess": "the other host's data"})
	if _, _, err := backupFiles(t, s, "other", []string{filepath.Join(dir, "other")}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	known, err := HostKnown(context.Background(), r, "prober")
	if err != nil {
		t.Fatal(err)
	}
	if known.Len() != 0 {
		t.Fatalf("prober knows %d blobs before any backup of its own", known.Len())
	}
	_, st, err := backupFiles(t, s, "prober", []string{filepath.Join(dir, "mine")}, nil, nil, known)
	if err != nil {
		t.Fatal(err)
	}
	if st.BlobsSent != 1 {
		t.Errorf("prober's backup sent %d blobs; want 1: the blob in the repo from another host must still be asked for", st.BlobsSent)
	}
	// and once it is the prober's own, it is not asked again
	known, _ = HostKnown(context.Background(), r, "prober")
	if _, st, err = backupFiles(t, s, "prober", []string{filepath.Join(dir, "mine")}, nil, nil, known); err != nil || st.BlobsSent != 0 {
		t.Errorf("prober's own blob asked again: %+v, %v", st, err)
	}
}

// TestHashMismatch: a host that sends other bytes than the ID it
// announced fails the snapshot; nothing refers to the data.
func TestHashMismatch(t *testing.T) {
	s, r := testRepo(t)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "honest"})
	req := Request{Source: SourceFiles, Paths: []string{src}, Polynomial: uint64(r.Config().ChunkerPolynomial)}
	l := startHost(t, req, func(ft agentproto.FrameType, p []byte) []byte {
		if ft == agentproto.FrameData {
			return []byte("forged")
		}
		return p
	})
	sn, _, _, err := Backup(context.Background(), s, l, req, Options{Hostname: "liar", Paths: req.Paths})
	if !errors.Is(err, ErrHashMismatch) || sn != nil {
		t.Fatalf("forged data: snapshot %v, err %v; want ErrHashMismatch and no snapshot", sn, err)
	}
	sns, _ := r.Snapshots(context.Background(), nil)
	if len(sns) != 0 {
		t.Errorf("%d snapshots after a forged chunk", len(sns))
	}
}

// TestMissingSource: a source that does not exist fails in one line.
func TestMissingSource(t *testing.T) {
	s, _ := testRepo(t)
	_, _, err := backupFiles(t, s, "h", []string{"/nonexistent/holiday"}, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "source /nonexistent/holiday: no such file or directory") {
		t.Fatalf("err = %v", err)
	}
}

// TestBuilder: the tree builder refuses walks that do not form a tree.
func TestBuilder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		paths []string
		types []string
		want  string
	}{
		{"file before its folder", []string{"/a/b"}, []string{repo.NodeFile}, "comes before its folder"},
		{"twice", []string{"/a", "/a"}, []string{repo.NodeFile, repo.NodeFile}, "sent twice"},
		{"relative", []string{"a"}, []string{repo.NodeFile}, "bad path"},
		{"dotdot", []string{"/x/../a"}, []string{repo.NodeFile}, "bad path"},
		{"ok", []string{"/a", "/a/b", "/a/c"}, []string{repo.NodeDir, repo.NodeFile, repo.NodeFile}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder()
			var err error
			for i, p := range tc.paths {
				if err = b.add(p, &repo.Node{Name: filepath.Base(p), Type: tc.types[i]}); err != nil {
					break
				}
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestVerifyReadsBackWhatItWrote: Verify reads back the trees and chunks a
// backup stored and nothing older (an unchanged backup stores no tree and
// sends no chunk), and a damaged pack of the backup fails it. The
// earlier snapshots' blobs (HostKnown) arrive in the background.
func TestVerifyReadsBackWhatItWrote(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be, err := local.Create(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(ctx, r)
	src := filepath.Join(dir, "srv")
	writeTree(t, src, map[string]string{"a": "alpha", "sub/b": "beta", "sub/deep/c": "gamma"})
	first, st, err := backupFiles(t, s, "h1", []string{src}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.NewTrees) < 4 || len(st.NewBlobs) != 3 {
		t.Fatalf("first backup: %d new trees, %d new chunks; want every folder's tree and the 3 files' chunks", len(st.NewTrees), len(st.NewBlobs))
	}
	if err := Verify(ctx, r, first, st); err != nil {
		t.Fatalf("verify of a sound backup: %v", err)
	}
	// the first walk may have moved the folders' atimes (relatime):
	// the third backup is the unchanged one
	between, _, err := backupFiles(t, s, "h1", []string{src}, nil, first, HostKnownLater(ctx, r, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	second, st2, err := backupFiles(t, s, "h1", []string{src}, nil, between, HostKnownLater(ctx, r, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(st2.NewTrees) != 0 || len(st2.NewBlobs) != 0 || st2.Unchanged != 3 {
		t.Errorf("unchanged backup: %+v, %d new trees; want nothing new", st2, len(st2.NewTrees))
	}
	if err := Verify(ctx, r, second, st2); err != nil {
		t.Errorf("verify of an unchanged backup: %v", err)
	}
	// damage every pack the first backup wrote: its verify must fail
	packs, _ := filepath.Glob(filepath.Join(dir, "repo", "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no packs written")
	}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[40] ^= 0xff
		os.Chmod(p, 0o600)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Verify(ctx, r, first, st); err == nil {
		t.Error("verify of a damaged backup passed")
	}
	// a snapshot whose root the index does not hold
	bad := *second
	bad.Tree = &repo.ID{1}
	if err := Verify(ctx, r, &bad, Stats{}); err == nil || !strings.Contains(err.Error(), "root tree") {
		t.Errorf("verify of a snapshot without its root: %v", err)
	}
}

// TestPolynomialLater: a files Request without the chunker polynomial
// (sent before the repository was open) gets it with the first verdict:
// the files are chunked with it, exactly as with it in the Request, and a
// host asked to read before it has one refuses.
func TestPolynomialLater(t *testing.T) {
	s, r := testRepo(t)
	src := filepath.Join(t.TempDir(), "srv")
	rnd := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{2}).Read(rnd)
	writeTree(t, src, map[string]string{"a": "alpha", "sub/big": string(rnd)})
	req := Request{Source: SourceFiles, Paths: []string{src}}
	sn, _, st, err := Backup(context.Background(), s, startHost(t, req, nil), req, Options{Hostname: "h1", Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 2 || st.BlobsSent == 0 {
		t.Fatalf("stats %+v; want both files read", st)
	}
	with, _, err := backupFiles(t, s, "h1", []string{src}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "sub/big"} {
		a, _ := restorer.FindNode(context.Background(), r, *sn.Tree, filepath.Join(src, p))
		b, _ := restorer.FindNode(context.Background(), r, *with.Tree, filepath.Join(src, p))
		if a == nil || b == nil || len(a.Content) == 0 || !slices.Equal(a.Content, b.Content) {
			t.Errorf("%s: chunks %v with the polynomial later, %v in the request", p, a, b)
		}
	}
	// a control node that asks for reads without sending it
	l := startHost(t, req, nil)
	if _, _, err := l.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	l.WriteJSON(agentproto.FrameMessage, Down{Verdict: &Verdict{Upto: 10, Read: []int64{1}}})
	go func() { // whatever else the host sends, up to its Result
		for {
			if _, _, err := l.ReadFrame(); err != nil {
				return
			}
		}
	}()
	if err := <-l.done; err == nil || !strings.Contains(err.Error(), "without a valid chunker polynomial") {
		t.Errorf("host asked to read without a polynomial: %v", err)
	}
}
