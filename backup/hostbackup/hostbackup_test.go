package hostbackup

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/crypto"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/testenv"
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
func startHost(t testing.TB, req Request, tamper func(agentproto.FrameType, []byte) []byte) *pipeLink {
	t.Helper()
	return startHostWith(t, tamper, func(ctx context.Context, conn *agentproto.Conn) (*Result, error) { return serveHost(ctx, conn, req) })
}

// startHostWith is startHost with the host's side of the operation given.
func startHostWith(t testing.TB, tamper func(agentproto.FrameType, []byte) []byte, serve func(context.Context, *agentproto.Conn) (*Result, error)) *pipeLink {
	t.Helper()
	toHostR, toHostW := io.Pipe()
	// a real pipe, as the agent's stdout is (disk blocks are spliced
	// into it), drained at once into a bufPipe: the host's writes never
	// wait for the control node's reads, as with an SSH channel's window
	hostR, fromHostW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fromHostR, bufW := newBufPipe()
	go func() {
		_, _ = io.Copy(bufW, hostR)
		bufW.Close()
	}()
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
	t.Cleanup(func() { toHostW.Close(); fromHostR.Close(); fromHostW.Close(); hostR.Close() })
	return l
}

// bufPipe is a pipe whose writes never wait for its reader, as an SSH
// channel's window lets the host write ahead of the control node's reads.
type bufPipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    bytes.Buffer
	closed bool
}

func newBufPipe() (*bufPipe, *bufPipe) {
	p := &bufPipe{}
	p.cond = sync.NewCond(&p.mu)
	return p, p
}

func (p *bufPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, io.ErrClosedPipe
	}
	p.buf.Write(b)
	p.cond.Broadcast()
	return len(b), nil
}

func (p *bufPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.buf.Len() == 0 && !p.closed {
		p.cond.Wait()
	}
	if p.buf.Len() == 0 {
		return 0, io.EOF
	}
	return p.buf.Read(b)
}

func (p *bufPipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return nil
}

func testRepo(t *testing.T) (*Store, *repo.Repository) {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	return NewStore(context.Background(), r), r
}

func writeTree(t testing.TB, root string, files map[string]string) {
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
	rnd := make([]byte, 9<<20) // random, over the 8 MiB maximum chunk: two chunks at least
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
	// (the big file's) are not sent again. Content-defined boundaries
	// before the old end stay where they were, so only the last chunk,
	// now with the appended tail, crosses (its size depends on the
	// repository's random polynomial: 0.5 to 8 MiB).
	bigNode, err := restorer.FindNode(context.Background(), r, *second.Tree, filepath.Join(src, "sub/big"))
	if err != nil || len(bigNode.Content) < 2 {
		t.Fatalf("big file in the second snapshot: %+v, %v; want several chunks", bigNode, err)
	}
	last, ok := r.Index().Lookup(repo.BlobHandle{ID: bigNode.Content[len(bigNode.Content)-1], Type: repo.DataBlob})
	if !ok {
		t.Fatal("the big file's last chunk is not in the index")
	}
	lastLen := int64(last.UncompressedLength)
	if lastLen == 0 {
		lastLen = int64(last.Length) - crypto.Extension
	}
	if err := os.WriteFile(filepath.Join(src, "sub/big"), []byte(big+"tail"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, st, err := backupFiles(t, s, "h1", []string{src}, []string{"*.log"}, second, known)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unchanged != 4 || st.BlobsSent != 1 || st.BytesSent != lastLen+4 {
		t.Errorf("one file changed: %+v; want 4 unchanged and only the last chunk sent again: 1 blob, %d bytes", st, lastLen+4)
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

// packWatch is a repository backend (on a directory) that counts the
// packs stored and how each is read, and can damage packs as they are
// stored (Mangle: a store that mangles what it was given).
type packWatch struct {
	*faulty.Backend
	backend.TempFiler // the directory's: packs are not written to $TMPDIR, which the tests back up
	mu                sync.Mutex
	stored            map[string]bool      // pack names
	whole             map[string]int       // pack name → loads of the whole pack
	ranged            int                  // loads of part of a pack (a blob)
	onSave            func(backend.Handle) // when set, after each file stored
}

func newPackWatch(t *testing.T, dir string) *packWatch {
	t.Helper()
	be, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := &packWatch{Backend: faulty.New(be), TempFiler: be, stored: map[string]bool{}, whole: map[string]int{}}
	w.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	w.OnLoad = func(h backend.Handle, length int, offset int64) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if length == 0 && offset == 0 {
			w.whole[h.Name]++
		} else {
			w.ranged++
		}
	}
	return w
}

func (w *packWatch) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker) error {
	err := w.Backend.Save(ctx, h, rd)
	if err == nil && h.Type == backend.PackFile {
		w.mu.Lock()
		w.stored[h.Name] = true
		w.mu.Unlock()
	}
	if err == nil && w.onSave != nil {
		w.onSave(h)
	}
	return err
}

// verify runs verify again for a backup (Backup ran it before writing
// the snapshot) and checks that it reads no blob by itself (the
// read-back did).
func (w *packWatch) verify(t *testing.T, r *repo.Repository, sn *repo.Snapshot, st Stats) error {
	t.Helper()
	w.mu.Lock()
	before := w.ranged
	w.mu.Unlock()
	err := verify(context.Background(), r, *sn.Tree, st)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ranged != before {
		t.Errorf("Verify read %d blobs one by one; want none (the packs were read back)", w.ranged-before)
	}
	return err
}

// readOnce checks that every pack stored was read back exactly once,
// whole, and returns how many blobs the packs stored hold.
func (w *packWatch) readOnce(t *testing.T, r *repo.Repository) int {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.whole) != len(w.stored) {
		t.Errorf("%d packs stored, %d read back; want each pack read back once", len(w.stored), len(w.whole))
	}
	for p := range w.stored {
		if w.whole[p] != 1 {
			t.Errorf("pack %.8s read back %d times, want once", p, w.whole[p])
		}
	}
	n := 0
	r.Index().Each(func(pb repo.PackedBlob) bool {
		if _, ok := w.stored[pb.Pack.String()]; ok {
			n++
		}
		return true
	})
	return n
}

// TestVerifyReadsBackWhatItWrote: the packs a backup stores are read
// back as they are stored, each once and whole, and the blobs in them
// are exactly the trees and chunks the backup wrote (an unchanged backup
// stores no tree, sends no chunk and reads nothing back); a store that
// damages a pack as it stores it fails the backup, naming the pack and
// the blob, and no snapshot is written; once the store is sound again,
// the next backup stores those blobs again and passes.
func TestVerifyReadsBackWhatItWrote(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be := newPackWatch(t, filepath.Join(dir, "repo"))
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
	if err := be.verify(t, r, first, st); err != nil {
		t.Fatalf("verify of a sound backup: %v", err)
	}
	if n := be.readOnce(t, r); n != len(st.NewTrees)+len(st.NewBlobs) {
		t.Errorf("the packs read back hold %d blobs; the backup wrote %d trees and %d chunks", n, len(st.NewTrees), len(st.NewBlobs))
	}
	// the first walk may have moved the folders' atimes (relatime):
	// the third backup is the unchanged one
	between, stb, err := backupFiles(t, s, "h1", []string{src}, nil, first, KnownLater(func() (*Known, error) { return HostKnown(ctx, r, "h1") }))
	if err != nil {
		t.Fatal(err)
	}
	if err := be.verify(t, r, between, stb); err != nil {
		t.Fatal(err)
	}
	be.readOnce(t, r)
	second, st2, err := backupFiles(t, s, "h1", []string{src}, nil, between, KnownLater(func() (*Known, error) { return HostKnown(ctx, r, "h1") }))
	if err != nil {
		t.Fatal(err)
	}
	// a folder above the source (/tmp) changes with every other test
	// creating files there: its tree is new, faithfully; nothing below
	above := aboveTrees(t, r, second, src)
	if slices.ContainsFunc(st2.NewTrees, func(id repo.ID) bool { return !above[id] }) || len(st2.NewBlobs) != 0 || st2.Unchanged != 3 {
		t.Errorf("unchanged backup: %+v, %d new trees (%d of folders above the source); want nothing new", st2, len(st2.NewTrees), len(above))
	}
	if err := be.verify(t, r, second, st2); err != nil {
		t.Errorf("verify of an unchanged backup: %v", err)
	}
	be.readOnce(t, r)

	// the store flips the first byte of every pack it stores from now
	// on: the first blob of each (this backup's) fails, and Verify with
	// it, naming one of them and counting the others
	var mu sync.Mutex
	damaged := map[string]bool{}
	be.Mangle = func(h backend.Handle, b []byte) []byte {
		mu.Lock()
		damaged[h.Name] = true
		mu.Unlock()
		b[0] ^= 1
		return b
	}
	writeTree(t, src, map[string]string{"d": "delta", "sub/e": "epsilon"})
	before := snapshotCount(t, r)
	third, st3, err := backupFiles(t, s, "h1", []string{src}, nil, second, KnownLater(func() (*Known, error) { return HostKnown(ctx, r, "h1") }))
	if err == nil || third != nil {
		t.Fatalf("a backup whose packs the store damaged: snapshot %v, %v; want it failed", third, err)
	}
	named := false
	mu.Lock()
	for p := range damaged {
		for _, id := range append(st3.NewTrees, st3.NewBlobs...) {
			if strings.Contains(err.Error(), p[:8]) && strings.Contains(err.Error(), id.Str()) {
				named = true
			}
		}
	}
	mu.Unlock()
	if !named || !strings.Contains(err.Error(), "MAC mismatch") || !strings.Contains(err.Error(), "nothing of it is stored as a snapshot") {
		t.Errorf("a damaged backup: %v; want one of its blobs and a damaged pack named", err)
	}
	if n := snapshotCount(t, r); n != before {
		t.Errorf("%d snapshots after the damaged backup, %d before; want none written", n, before)
	}
	// the store is sound again: what failed is stored again
	be.Mangle = nil
	fourth, st4, err := backupFiles(t, s, "h1", []string{src}, nil, second, KnownLater(func() (*Known, error) { return HostKnown(ctx, r, "h1") }))
	if err != nil {
		t.Fatalf("the backup after the damaged one: %v", err)
	}
	if len(st4.NewBlobs) != len(st3.NewBlobs) || len(st4.NewTrees) == 0 {
		t.Errorf("the backup after the damaged one stored %d chunks and %d trees; want the %d chunks again and trees", len(st4.NewBlobs), len(st4.NewTrees), len(st3.NewBlobs))
	}
	if err := be.verify(t, r, fourth, st4); err != nil {
		t.Error(err)
	}
	if got, ok := content(t, r, fourth, filepath.Join(src, "sub/e")); !ok || got != "epsilon" {
		t.Errorf("the file stored again: %q, %v", got, ok)
	}
	// a root the index does not hold
	if err := verify(ctx, r, repo.ID{1}, Stats{}); err == nil || !strings.Contains(err.Error(), "root tree") {
		t.Errorf("verify of a snapshot without its root: %v", err)
	}
	// no snapshot refers to a blob whose copy failed
	resticCheck(t, filepath.Join(dir, "repo"))
}

// resticCheck runs stock restic's check (the structure: every snapshot's
// trees and blobs listed by an index, every listed pack present and of
// its listed size) on the repository in dir, password pw.
func resticCheck(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); it is the format oracle")
	}
	cmd := exec.Command("restic", "-r", dir, "--no-cache", "check")
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=pw")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("restic check: %v\n%s", err, out)
	}
}

// aboveTrees returns the trees of sn that hold the folders above path
// (the root's, /tmp's, …), not path's own.
func aboveTrees(t *testing.T, r *repo.Repository, sn *repo.Snapshot, path string) map[repo.ID]bool {
	t.Helper()
	out := map[repo.ID]bool{}
	id := *sn.Tree
	for _, name := range strings.Split(strings.Trim(filepath.Dir(path), "/"), "/") {
		out[id] = true
		tree, err := r.LoadTree(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(tree.Nodes, func(n *repo.Node) bool { return n.Name == name })
		if i < 0 || tree.Nodes[i].Subtree == nil {
			t.Fatalf("snapshot of %v: no folder %q on the way to %s", sn.Paths, name, path)
		}
		id = *tree.Nodes[i].Subtree
	}
	return out
}

func snapshotCount(t *testing.T, r *repo.Repository) int {
	t.Helper()
	n := 0
	if err := r.List(context.Background(), backend.SnapshotFile, func(repo.ID, int64) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestVerifySeveralHosts: hosts backing up at once into one Store each
// get their own verdict. Four hosts at once: every pack is read back
// once and each host verifies. Then one pack holds two hosts' chunks
// (h2 runs its whole backup while h1's chunks wait in the pack being
// filled) and the store damages h1's first chunk in it: h1's backup
// fails naming that pack and chunk; h2's, whose chunks were read back
// sound from the same pack, passes (the flush stores them again in a new
// pack: no index file lists a pack that failed its read-back).
func TestVerifySeveralHosts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be := newPackWatch(t, filepath.Join(dir, "repo"))
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(ctx, r)
	rnd := func(seed byte) string {
		b := make([]byte, 100<<10)
		rand.NewChaCha8([32]byte{seed}).Read(b)
		return string(b)
	}
	var g errgroup.Group
	for i := range 4 {
		g.Go(func() error {
			src := filepath.Join(dir, fmt.Sprintf("host%d", i))
			writeTree(t, src, map[string]string{"x": rnd(byte(10 + i)), "sub/y": rnd(byte(20 + i))})
			sn, st, err := backupFiles(t, s, fmt.Sprintf("host%d", i), []string{src}, nil, nil, nil)
			if err == nil {
				err = be.verify(t, r, sn, st)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	be.readOnce(t, r)

	// one data pack being filled (the writer starts again after the
	// flushes above, with one packer)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// damage the first blob of the next pack that holds only chunks
	var once atomic.Bool
	var pb repo.PackedBlob    // that blob, in that pack
	var dmg []repo.PackedBlob // every blob in that pack
	be.Mangle = func(h backend.Handle, b []byte) []byte {
		hl := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
		blobs, err := r.OpenPackHeader(repo.ID{}, b[len(b)-4-hl:len(b)-4])
		if err != nil || slices.ContainsFunc(blobs, func(pb repo.PackedBlob) bool { return pb.Type != repo.DataBlob }) || !once.CompareAndSwap(false, true) {
			return nil
		}
		dmg = blobs
		pb = blobs[0]
		pb.Pack, _ = repo.ParseID(h.Name)
		b[0] ^= 1
		return b
	}
	src1, src2 := filepath.Join(dir, "h1"), filepath.Join(dir, "h2")
	writeTree(t, src1, map[string]string{"a": rnd(1), "b": rnd(2)})
	writeTree(t, src2, map[string]string{"c": rnd(3), "d": rnd(4)})
	type verdict struct {
		st  Stats
		err error
	}
	h2done := make(chan verdict, 1)
	h2 := func() {
		_, st, err := backupFiles(t, s, "h2", []string{src2}, nil, nil, nil)
		h2done <- verdict{st, err}
	}
	// h1's last message waits until its chunks are in the pack being
	// filled and h2's backup is over
	req := Request{Source: SourceFiles, Paths: []string{src1}, Polynomial: uint64(r.Config().ChunkerPolynomial)}
	var v2 verdict
	l := startHost(t, req, func(ft agentproto.FrameType, p []byte) []byte {
		var up Up
		if ft == agentproto.FrameMessage && json.Unmarshal(p, &up) == nil && up.Done {
			for plain, _ := r.Added(); plain < 2*100<<10; plain, _ = r.Added() {
				time.Sleep(time.Millisecond)
			}
			go h2()
			v2 = <-h2done
		}
		return p
	})
	_, _, st1, err1 := Backup(ctx, s, l, req, Options{Hostname: "h1", Paths: []string{src1}})
	if v2.err != nil {
		t.Errorf("h2, whose chunks were read back sound: %v", v2.err)
	}
	if len(st1.NewBlobs) == 0 || pb.ID != st1.NewBlobs[0] {
		t.Fatalf("the damaged pack's first blob is %s, h1's first chunk %v", pb.ID.Str(), st1.NewBlobs[:min(1, len(st1.NewBlobs))])
	}
	holds := func(st Stats) bool {
		return slices.ContainsFunc(st.NewBlobs, func(id repo.ID) bool {
			return slices.ContainsFunc(dmg, func(q repo.PackedBlob) bool { return q.ID == id })
		})
	}
	if pb.Offset != 0 || !holds(v2.st) {
		t.Fatalf("h1's first chunk at %d of pack %s, h2 has chunks in it: %v; want the pack shared, h1's chunk first", pb.Offset, pb.Pack.Str(), holds(v2.st))
	}
	if err1 == nil || !strings.Contains(err1.Error(), pb.Pack.Str()) || !strings.Contains(err1.Error(), pb.ID.Str()) {
		t.Errorf("h1, whose first chunk the store damaged: %v; want pack %s and chunk %s named", err1, pb.Pack.Str(), pb.ID.Str())
	}
}

// TestVerifyTreeSharedBeforeVerdict: a host whose snapshot holds trees
// another host stored moments before, while their pack is still being
// read back, does not rely on them: the other host's flush (and with it
// every save through the store) waits for that pack's verdict before
// its index file, and the store damaged the pack, so the trees left the
// index and the second host stores its own copies and passes, while the
// first fails naming the pack and writes no snapshot. Its next backup
// stores the trees again and passes; stock restic's check passes.
func TestVerifyTreeSharedBeforeVerdict(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	be := newPackWatch(t, filepath.Join(dir, "repo"))
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(ctx, r)
	shared, own := filepath.Join(dir, "src", "shared"), filepath.Join(dir, "src", "own")
	writeTree(t, shared, map[string]string{"a": "alpha", "sub/b": "beta"})
	writeTree(t, own, map[string]string{"c": "gamma"})
	// read everything once: the atimes move now (relatime), not between
	// the two hosts' walks, whose trees of shared are then the same
	if err := filepath.WalkDir(filepath.Join(dir, "src"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			_, err = os.ReadFile(p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// the store damages the header of the first pack of trees (every
	// tree in it fails), whose read-back waits until h1 has flushed
	var damaged atomic.Value
	be.Mangle = func(h backend.Handle, b []byte) []byte {
		hl := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
		blobs, err := r.OpenPackHeader(repo.ID{}, b[len(b)-4-hl:len(b)-4])
		if err != nil || slices.ContainsFunc(blobs, func(pb repo.PackedBlob) bool { return pb.Type != repo.TreeBlob }) || !damaged.CompareAndSwap(nil, h.Name) {
			return nil
		}
		b[len(b)-10] ^= 1
		return b
	}
	gate, reached := make(chan struct{}), make(chan struct{})
	var reachedOnce sync.Once
	count := be.OnLoad
	be.OnLoad = func(h backend.Handle, length int, offset int64) {
		count(h, length, offset)
		if length == 0 && offset == 0 && damaged.Load() == h.Name {
			reachedOnce.Do(func() { close(reached) })
			<-gate
		}
	}
	indexes := make(chan struct{}, 16)
	be.onSave = func(h backend.Handle) {
		if h.Type == backend.IndexFile {
			indexes <- struct{}{}
		}
	}
	type result struct {
		sn  *repo.Snapshot
		st  Stats
		err error
	}
	run := func(host string, paths ...string) chan result {
		c := make(chan result, 1)
		go func() {
			sn, st, err := backupFiles(t, s, host, paths, nil, nil, nil)
			c <- result{sn, st, err}
		}()
		return c
	}
	timeout := func(what string) {
		t.Helper()
		t.Fatalf("timed out waiting for %s", what)
	}
	h2 := run("h2", shared)
	select {
	case <-reached: // h2's trees are stored and indexed, their pack being read back
	case <-time.After(10 * time.Second):
		timeout("the read-back of h2's trees")
	}
	h1 := run("h1", shared, own)
	// no index file while h2's pack is being read back
	select {
	case <-indexes:
		t.Fatal("an index file was written while a pack it would list was still being read back")
	case <-time.After(300 * time.Millisecond):
	}
	close(gate)
	r1, r2 := <-h1, <-h2
	pack := damaged.Load().(string)[:8]
	if r2.err == nil || r2.sn != nil || !strings.Contains(r2.err.Error(), pack) || !strings.Contains(r2.err.Error(), "nothing of it is stored as a snapshot") {
		t.Errorf("h2, whose trees the store damaged in pack %s: snapshot %v, %v; want it failed naming the pack", pack, r2.sn, r2.err)
	}
	if r1.err != nil || r1.sn == nil {
		t.Errorf("h1, whose trees h2 stored in the damaged pack %s moments before: %v; want it to store its own and pass", pack, r1.err)
	} else if got, ok := content(t, r, r1.sn, filepath.Join(shared, "sub/b")); !ok || got != "beta" {
		t.Errorf("h1: sub/b is %q, %v", got, ok)
	}
	if n := snapshotCount(t, r); n != 1 {
		t.Errorf("%d snapshots written; want h1's alone", n)
	}
	// the failed copies left the index: h2's next backup stores (or
	// finds h1's) trees and passes
	for _, host := range []string{"h2"} {
		paths := []string{shared}
		res := <-run(host, paths...)
		if res.err != nil {
			t.Fatalf("%s again: %v", host, res.err)
		}
		if got, ok := content(t, r, res.sn, filepath.Join(shared, "sub/b")); !ok || got != "beta" {
			t.Errorf("%s again: sub/b is %q, %v", host, got, ok)
		}
	}
	resticCheck(t, filepath.Join(dir, "repo"))
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

// pausedDump is a dump that sends first, waits until release is closed
// (or 10 s), then sends rest.
type pausedDump struct {
	first, rest []byte
	release     chan struct{}
	waited      bool
}

func (d *pausedDump) Read(p []byte) (int, error) {
	if len(d.first) > 0 {
		n := copy(p, d.first)
		d.first = d.first[n:]
		return n, nil
	}
	if !d.waited {
		d.waited = true
		select {
		case <-d.release:
		case <-time.After(10 * time.Second):
		}
	}
	if len(d.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, d.rest)
	d.rest = d.rest[n:]
	return n, nil
}

func (d *pausedDump) Wait() error { return nil }

// TestStreamProgressEstimate: while a dump runs, Progress reports its
// expected size (Options.Expected) as Total, marked Estimated; the
// final Stats carry the dump's real size, no estimate.
func TestStreamProgressEstimate(t *testing.T) {
	s, _ := testRepo(t)
	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{3}).Read(data)
	d := &pausedDump{first: data[:1<<20], rest: data[1<<20:], release: make(chan struct{})}
	RegisterDumper(func(context.Context, StreamSpec) (Dump, error) { return d, nil })
	t.Cleanup(func() { RegisterDumper(nil) })
	req := Request{Source: SourceStream, Stream: &StreamSpec{Engine: "postgres", Database: "shop", Name: "shop.pgdump"},
		Polynomial: uint64(s.R.Config().ChunkerPolynomial)}
	var reports []Stats
	o := Options{Hostname: "h1", Paths: []string{"/postgres/shop"}, Expected: func() int64 { return 4 << 20 },
		Progress: func(st Stats) {
			if reports = append(reports, st); len(reports) == 1 {
				close(d.release)
			}
		}}
	_, _, st, err := Backup(context.Background(), s, startHost(t, req, nil), req, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 {
		t.Fatal("no progress report while the dump was paused")
	}
	if r := reports[0]; r.Total != 4<<20 || !r.Estimated || r.Done != r.Bytes || r.Bytes > 1<<20 {
		t.Errorf("report during the dump: %+v; want Total 4 MiB estimated, Done = Bytes <= 1 MiB", r)
	}
	if st.Total != 3<<20 || st.Done != 3<<20 || st.Bytes != 3<<20 || st.Estimated {
		t.Errorf("final stats: %+v; want Total, Done and Bytes 3 MiB, not estimated", st)
	}

	// without Expected, no total while it runs (no time left shown)
	d = &pausedDump{first: data[:1<<20], rest: data[1<<20:], release: make(chan struct{})}
	reports, o.Expected = nil, nil
	if _, _, _, err := Backup(context.Background(), s, startHost(t, req, nil), req, o); err != nil {
		t.Fatal(err)
	}
	if len(reports) == 0 || reports[0].Total != 0 || reports[0].Estimated {
		t.Errorf("reports without an expected size: %+v; want Total 0, not estimated", reports)
	}
}

// TestLockConflictStopsBackup: under a shared lock confirmed in the
// background (repo.LockSharedAsync, as `holiday backup` takes it), an
// exclusive lock that appears during the settle wait — another node's
// prune whose first check missed ours — stops the backup before any
// index or snapshot is written: the error says whose lock it is, and
// nothing refers to what crossed. Without the racer the same backup is
// stored.
func TestLockConflictStopsBackup(t *testing.T) {
	for _, tc := range []struct {
		name            string
		racer           bool
		snapshots, idxs int
	}{
		{"no conflict", false, 1, 1},
		{"exclusive lock during the settle wait", true, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			be := faulty.New(mem.New())
			r, err := repo.Init(ctx, be, "pw")
			if err != nil {
				t.Fatal(err)
			}
			var raced atomic.Bool
			be.AfterSave = func(h backend.Handle) {
				if !tc.racer || h.Type != backend.LockFile || !raced.CompareAndSwap(false, true) {
					return
				}
				doc, _ := json.Marshal(repo.Lock{Time: time.Now(), Exclusive: true, Hostname: "maintenance", Username: "ops", PID: 4242})
				if _, err := r.SaveUnpacked(ctx, backend.LockFile, doc); err != nil {
					t.Error(err)
				}
			}
			h, err := r.LockSharedAsync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Unlock(ctx)
			src := t.TempDir()
			rnd := make([]byte, 1<<20)
			rand.NewChaCha8([32]byte{2}).Read(rnd)
			writeTree(t, src, map[string]string{"etc/a.conf": "alpha", "data": string(rnd)})
			sn, _, err := backupFiles(t, NewStore(ctx, r), "h1", []string{src}, nil, nil, nil)
			if tc.racer {
				if !errors.Is(err, repo.ErrLocked) || sn != nil || !strings.Contains(err.Error(), "an exclusive lock") || !strings.Contains(err.Error(), "on maintenance") {
					t.Fatalf("snapshot %v, err %v; want none, and the exclusive lock on maintenance named", sn, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			for ft, want := range map[backend.FileType]int{backend.SnapshotFile: tc.snapshots, backend.IndexFile: tc.idxs} {
				n := 0
				_ = be.List(ctx, ft, func(backend.FileInfo) error { n++; return nil })
				if n != want {
					t.Errorf("%d %v files, want %d", n, ft, want)
				}
			}
		})
	}
}

// countingBackend counts the pack reads.
// countingBackend counts the ranged loads of packs: the reads of single
// blobs (a whole-pack load is the read-back of a pack just stored).
type countingBackend struct {
	backend.Backend
	packLoads atomic.Int64
}

func (b *countingBackend) Load(ctx context.Context, h backend.Handle, length int, offset int64) (io.ReadCloser, error) {
	if h.Type == backend.PackFile && length > 0 {
		b.packLoads.Add(1)
	}
	return b.Backend.Load(ctx, h, length, offset)
}

// TestTreesReadOnce: HostKnownIn's walk (side by side) and the parent
// walk share the parent's trees (Trees): an unchanged backup reads each
// tree of the host's snapshots once, and the set is exactly the blobs of
// the host's own snapshots, as a plain walk finds them.
func TestTreesReadOnce(t *testing.T) {
	ctx := context.Background()
	be := &countingBackend{Backend: mem.New()}
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStore(ctx, r)
	dir := t.TempDir()
	src := filepath.Join(dir, "h1")
	files := map[string]string{}
	for i := range 40 {
		files[fmt.Sprintf("d%d/sub%d/f%d", i%8, i%3, i)] = fmt.Sprintf("file %d", i)
	}
	writeTree(t, src, files)
	writeTree(t, filepath.Join(dir, "h2"), map[string]string{"x/other": "another host's file"})
	first, _, err := backupFiles(t, s, "h1", []string{src}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := backupFiles(t, s, "h2", []string{filepath.Join(dir, "h2")}, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	writeTree(t, src, map[string]string{"d1/new": "a new file"})
	parent, _, err := backupFiles(t, s, "h1", []string{src}, nil, first, nil)
	if err != nil {
		t.Fatal(err)
	}
	// what a plain walk of h1's snapshots finds
	want := map[repo.ID]struct{}{}
	distinct := map[repo.ID]bool{}
	var walk func(id repo.ID)
	walk = func(id repo.ID) {
		if distinct[id] {
			return
		}
		distinct[id] = true
		tr, err := r.LoadTree(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tr.Nodes {
			for _, c := range n.Content {
				want[c] = struct{}{}
			}
			if n.Subtree != nil {
				walk(*n.Subtree)
			}
		}
	}
	walk(*first.Tree)
	walk(*parent.Tree)

	be.packLoads.Store(0)
	trees := NewTrees(r, *parent.Tree)
	known := KnownLater(func() (*Known, error) { return hostKnownOf(ctx, r, "h1", trees) })
	req := Request{Source: SourceFiles, Paths: []string{src}, Polynomial: uint64(r.Config().ChunkerPolynomial)}
	_, _, st, err := Backup(ctx, s, startHost(t, req, nil), req, Options{Hostname: "h1", Paths: req.Paths, Parent: parent, Known: known, Trees: trees})
	if err != nil {
		t.Fatal(err)
	}
	if st.Unchanged != 41 || st.BlobsSent != 0 {
		t.Errorf("unchanged backup: %d files unchanged, %d chunks sent; want 41 and none", st.Unchanged, st.BlobsSent)
	}
	if n := be.packLoads.Load(); n != int64(len(distinct)) {
		t.Errorf("%d tree reads for %d distinct trees of the host: each must be read once", n, len(distinct))
	}
	if !maps.Equal(known.ids, want) {
		t.Errorf("HostKnown holds %d blobs, a plain walk of the host's snapshots %d", len(known.ids), len(want))
	}
}

// BenchmarkUnchangedBackup: an unchanged backup of 5,000 small files in
// 100 folders through the real protocol on pipes (host and control node
// in one process, a repository in memory): the host's walk, the
// verdicts against the parent, the earlier snapshots' blobs
// (KnownLater) and the snapshot's trees, as `holiday backup` runs
// them after the repository is open.
func BenchmarkUnchangedBackup(b *testing.B) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		b.Fatal(err)
	}
	s := NewStore(ctx, r)
	src := filepath.Join(b.TempDir(), "srv")
	files := map[string]string{}
	for i := range 5000 {
		files[fmt.Sprintf("d%02d/sub%d/f%03d", i/100, i/100%7, i%100)] = fmt.Sprintf("file %d\n", i)
	}
	writeTree(b, src, files)
	run := func(parent *repo.Snapshot) *repo.Snapshot {
		var roots []repo.ID
		if parent != nil {
			roots = append(roots, *parent.Tree)
		}
		trees := NewTrees(r, roots...)
		req := Request{Source: SourceFiles, Paths: []string{src}, Polynomial: uint64(r.Config().ChunkerPolynomial)}
		sn, _, st, err := Backup(ctx, s, startHost(b, req, nil), req,
			Options{Hostname: "h1", Paths: req.Paths, Parent: parent, Known: KnownLater(func() (*Known, error) { return hostKnownOf(ctx, r, "h1", trees) }), Trees: trees})
		if err != nil {
			b.Fatal(err)
		}
		if parent != nil && st.Unchanged != 5000 {
			b.Fatalf("%d files unchanged, want 5000", st.Unchanged)
		}
		return sn
	}
	parent := run(run(nil)) // the second: the first walk moved the folders' atimes
	for b.Loop() {
		run(parent)
	}
}

// hostKnownOf is HostKnownIn on a fresh listing of r's snapshots.
func hostKnownOf(ctx context.Context, r *repo.Repository, host string, trees *Trees) (*Known, error) {
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	return HostKnownIn(ctx, r, sns, host, trees)
}

// TestKnownReadInterrupted: a step that ends (an interrupt, its timeout)
// while the read of the host's earlier snapshots is still going on
// returns at once, with why; it does not wait for that read.
func TestKnownReadInterrupted(t *testing.T) {
	s, _ := testRepo(t)
	src := filepath.Join(t.TempDir(), "srv")
	writeTree(t, src, map[string]string{"a.conf": "alpha"})
	stuck := make(chan struct{})
	defer close(stuck)
	known := KnownLater(func() (*Known, error) { <-stuck; return NewKnown(), nil })
	req := Request{Source: SourceFiles, Paths: []string{src}, Polynomial: uint64(s.R.Config().ChunkerPolynomial)}
	l := startHost(t, req, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	time.AfterFunc(200*time.Millisecond, func() { cancel(errors.New("interrupted")) })
	done := make(chan error, 1)
	go func() {
		_, _, _, err := Backup(ctx, s, l, req, Options{Hostname: "h1", Paths: []string{src}, Known: known})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("backup interrupted while the earlier snapshots are read: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backup still waits for the read of the earlier snapshots 10s after the interrupt")
	}
}

// TestExclusiveContext: Exclusive gives fn the caller's context (the
// host step's: an interrupt ends fn's flush), while the pack writer runs
// on the run's, so other hosts' saves go on after it.
func TestExclusiveContext(t *testing.T) {
	s, _ := testRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Exclusive(ctx, func(ctx context.Context) error { return ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Errorf("fn's context after the step's ended: %v; want it ended", err)
	}
	if err := s.SaveBlob(context.Background(), []byte("after"), repo.Hash([]byte("after"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Errorf("another host's save and flush after it: %v", err)
	}
}
