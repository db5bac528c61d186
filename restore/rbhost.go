package restore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/restic/chunker"
	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/atomicfile"
)

// The host side of `holiday rollback` for files: two agent operations
// (the pre-rollback snapshot is the host-backup operation's).
//
//	rollback-scan   lists the host's nodes under the roots, each file with
//	                its chunk IDs (the repository's chunker polynomial,
//	                which is no secret), so the control node can tell
//	                changed content from unchanged without reading it
//	rollback-apply  takes removals in its arguments, then nodes with
//	                content from the control node, and writes them
//
// Nodes travel as Message frames holding an Item; a file's content
// follows its Item as Data frames and an EOF frame. An Item with an
// empty path ends the list. The host only ever receives the plaintext of
// its own files, never a key.
const (
	OpRollbackScan  = "rollback-scan"
	OpRollbackApply = "rollback-apply"
)

// AgentHandlers are the host-side operations of `holiday rollback`, for
// the agent's registry (cmd/holiday/agent.go).
func AgentHandlers() []agent.Handler {
	return append([]agent.Handler{
		{Name: OpRollbackScan, Class: agent.ClassRead, Run: hostScan},
		{Name: OpRollbackApply, Class: agent.ClassChange, Run: hostApply},
	}, diskHandlers()...)
}

// scanArgs are rollback-scan's arguments.
type scanArgs struct {
	Roots []string    `json:"roots"`
	Pol   chunker.Pol `json:"pol"` // chunk files with it
}

// applyArgs are rollback-apply's arguments.
type applyArgs struct {
	Roots  []string `json:"roots"`
	Remove []string `json:"remove"` // top-most paths, removed first
}

// applyEntry is one node rollback-apply writes.
type applyEntry struct {
	Item
	Op     string `json:"op"` // a Change op, or "" for a directory whose metadata is set again at the end
	LinkTo string `json:"link_to,omitempty"`
}

// ApplyStats is what rollback-apply did.
type ApplyStats struct {
	Written int   `json:"written"`
	Meta    int   `json:"meta"`
	Removed int   `json:"removed"`
	Bytes   int64 `json:"bytes"`
}

func decodeArgs(op *agent.Op, v any) error {
	if err := json.Unmarshal(op.Args, v); err != nil {
		return &agentproto.RemoteError{Code: "bad-args", Message: "decoding arguments: " + err.Error()}
	}
	return nil
}

func checkRoots(roots []string) error {
	for _, r := range roots {
		if !strings.HasPrefix(r, "/") || path.Clean(r) != r || r == "/" {
			return &agentproto.RemoteError{Code: "bad-args", Message: fmt.Sprintf("root %q: not a clean absolute path below /", r)}
		}
	}
	return nil
}

// walkRoots calls fn for every node under roots (not following
// symlinks), in lexical order, parents before children. A root that does
// not exist is skipped: it holds nothing.
func walkRoots(ctx context.Context, roots []string, fn func(p string, fi fs.FileInfo) error) error {
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root && errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return fn(p, fi)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func hostScan(ctx context.Context, op *agent.Op) (any, error) {
	var a scanArgs
	if err := decodeArgs(op, &a); err != nil {
		return nil, err
	}
	if err := checkRoots(a.Roots); err != nil {
		return nil, err
	}
	if a.Pol == 0 {
		return nil, &agentproto.RemoteError{Code: "bad-args", Message: "no chunker polynomial"}
	}
	ch := chunker.New(bytes.NewReader(nil), a.Pol)
	buf := make([]byte, chunker.MaxSize)
	n := 0
	err := walkRoots(ctx, a.Roots, func(p string, fi fs.FileInfo) error {
		node, err := archiver.NodeFromFileInfo(p, path.Base(p), fi)
		if err != nil {
			return err
		}
		if node.Type == repo.NodeFile {
			if node.Content, err = chunkIDs(ch, a.Pol, buf, p); err != nil {
				return err
			}
		}
		n++
		return op.Conn.WriteJSON(agentproto.FrameMessage, Item{Path: p, Node: node})
	})
	if err != nil {
		return nil, err
	}
	if err := op.Conn.WriteJSON(agentproto.FrameMessage, Item{}); err != nil {
		return nil, err
	}
	return map[string]int{"nodes": n}, nil
}

// chunkIDs are the blob IDs a backup of the file at p would give it.
func chunkIDs(ch *chunker.Chunker, pol chunker.Pol, buf []byte, p string) ([]repo.ID, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ch.Reset(f, pol)
	ids := []repo.ID{}
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			return ids, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		ids = append(ids, repo.Hash(c.Data))
	}
}

func hostApply(ctx context.Context, op *agent.Op) (any, error) {
	var a applyArgs
	if err := decodeArgs(op, &a); err != nil {
		return nil, err
	}
	if err := checkRoots(a.Roots); err != nil {
		return nil, err
	}
	w := &hostWriter{roots: a.Roots, conn: op.Conn, dirty: map[string]bool{}, open: map[string]*os.Root{}}
	defer w.close()
	return w.run(ctx, a.Remove)
}

// hostWriter applies one rollback-apply stream.
type hostWriter struct {
	roots []string
	open  map[string]*os.Root // by root, opened at its first change
	conn  *agentproto.Conn
	st    ApplyStats
	dirs  []Item          // metadata set last, deepest first
	dirty map[string]bool // directories whose entries changed: synced at the end
}

func (w *hostWriter) inside(p string) error {
	if path.Clean(p) != p || !underAny(p, w.roots) {
		return fmt.Errorf("%q is outside the rollback's roots %v", p, w.roots)
	}
	return nil
}

// place is where a change is made: a name in a root opened with os.Root,
// so that a directory under it swapped for a symlink while the rollback
// runs (by a user who owns it, pointing to /etc) is not followed out of
// the root; or, for a root itself, its path (its parents are the host's
// own directories above the roots).
type place struct {
	root *os.Root // nil: name is the absolute path of a root
	name string
}

// at is the place of p, which inside has checked.
func (w *hostWriter) at(p string) (place, error) {
	for _, r := range w.roots {
		if !under(p, r) {
			continue
		}
		if p == r {
			// a change to the root itself may replace it: the next
			// change below it opens it again
			if rt := w.open[r]; rt != nil {
				rt.Close()
				delete(w.open, r)
			}
			return place{name: p}, nil
		}
		rt := w.open[r]
		if rt == nil {
			var err error
			if rt, err = os.OpenRoot(r); err != nil {
				return place{}, err
			}
			w.open[r] = rt
		}
		rel, err := filepath.Rel(r, p)
		if err != nil {
			return place{}, err
		}
		return place{root: rt, name: rel}, nil
	}
	return place{}, w.inside(p)
}

func (w *hostWriter) close() {
	for _, rt := range w.open {
		rt.Close()
	}
}

func (pl place) removeAll() error {
	if pl.root == nil {
		return os.RemoveAll(pl.name)
	}
	return pl.root.RemoveAll(pl.name)
}

func (pl place) mkdir() error {
	if pl.root == nil {
		return os.Mkdir(pl.name, 0o700)
	}
	return pl.root.Mkdir(pl.name, 0o700)
}

func (pl place) lstat() (fs.FileInfo, error) {
	if pl.root == nil {
		return os.Lstat(pl.name)
	}
	return pl.root.Lstat(pl.name)
}

func (pl place) create() (*os.File, error) {
	const flag, perm = os.O_CREATE | os.O_EXCL | os.O_WRONLY, 0o600
	if pl.root == nil {
		return os.OpenFile(pl.name, flag, perm)
	}
	return pl.root.OpenFile(pl.name, flag, perm)
}

// sibling is name in the same directory.
func (pl place) sibling(name string) place {
	return place{root: pl.root, name: filepath.Join(filepath.Dir(pl.name), name)}
}

// renameTo renames pl (a sibling of to) over to.
func (pl place) renameTo(to place) error {
	if pl.root == nil {
		return os.Rename(pl.name, to.name)
	}
	return pl.root.Rename(pl.name, to.name)
}

// inDir runs fn with a handle on pl's directory and pl's name in it.
func (pl place) inDir(fn func(dirfd int, name string) error) error {
	if pl.root == nil {
		return fn(unix.AT_FDCWD, pl.name)
	}
	d, err := pl.root.Open(filepath.Dir(pl.name))
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(int(d.Fd()), filepath.Base(pl.name))
}

func (pl place) setMeta(n *repo.Node) error {
	return pl.inDir(func(dirfd int, name string) error { return restorer.SetMetaAt(dirfd, name, n) })
}

func (w *hostWriter) run(ctx context.Context, remove []string) (ApplyStats, error) {
	for _, p := range remove {
		if err := w.inside(p); err != nil {
			return w.st, err
		}
		pl, err := w.at(p)
		if err == nil {
			err = pl.removeAll()
		}
		if err != nil {
			return w.st, fmt.Errorf("remove %s: %w", p, err)
		}
		w.dirty[filepath.Dir(p)] = true
		w.st.Removed++
	}
	for {
		if err := ctx.Err(); err != nil {
			return w.st, err
		}
		var e applyEntry
		if err := w.conn.ReadJSON(agentproto.FrameMessage, &e); err != nil {
			return w.st, fmt.Errorf("reading the next node: %w", err)
		}
		if e.Path == "" {
			break
		}
		if err := w.inside(e.Path); err != nil {
			return w.st, err
		}
		if e.Node == nil {
			return w.st, fmt.Errorf("%s: no node", e.Path)
		}
		if err := w.one(e); err != nil {
			return w.st, fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	var errs []error
	for i := len(w.dirs) - 1; i >= 0; i-- {
		pl, err := w.at(w.dirs[i].Path)
		if err == nil {
			err = pl.setMeta(w.dirs[i].Node)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", w.dirs[i].Path, err))
		}
	}
	// The renames and removals are durable once their directories are.
	for d := range w.dirty {
		if err := atomicfile.SyncDir(d); err != nil {
			errs = append(errs, fmt.Errorf("sync %s: %w", d, err))
		}
	}
	return w.st, errors.Join(errs...)
}

// tempName is a fresh name beside a file: what is written there is
// renamed over the file only once complete, so a dropped connection
// never leaves a half-written file in its place.
func tempName() string {
	var b [6]byte
	rand.Read(b[:])
	return ".holiday-rollback-" + hex.EncodeToString(b[:])
}

func (w *hostWriter) one(e applyEntry) error {
	n := e.Node
	pl, err := w.at(e.Path)
	if err != nil {
		return err
	}
	if n.Type == repo.NodeDir {
		switch e.Op {
		case OpReplace:
			if err := pl.removeAll(); err != nil {
				return err
			}
			fallthrough
		case OpCreate:
			if err := pl.mkdir(); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			w.dirty[filepath.Dir(e.Path)] = true
			w.st.Written++
		case OpMeta:
			w.st.Meta++
		}
		w.dirs = append(w.dirs, e.Item)
		return nil
	}
	if e.Op == OpMeta {
		w.st.Meta++
		return pl.setMeta(n)
	}
	tmp := pl.sibling(tempName())
	done := false
	defer func() {
		if !done {
			tmp.removeAll()
		}
	}()
	switch {
	case e.Op == OpLink:
		if err := w.link(e.LinkTo, e.Path, tmp); err != nil {
			return err
		}
	case n.Type == repo.NodeFile:
		if err := w.content(tmp, n); err != nil {
			return err
		}
	default:
		if err := tmp.inDir(func(dirfd int, name string) error { return restorer.CreateSpecialAt(dirfd, name, n) }); err != nil {
			return err
		}
	}
	if e.Op != OpLink {
		if err := tmp.setMeta(n); err != nil {
			return err
		}
	}
	if fi, err := pl.lstat(); err == nil && fi.IsDir() {
		if err := pl.removeAll(); err != nil {
			return err
		}
	}
	if err := tmp.renameTo(pl); err != nil {
		return err
	}
	w.dirty[filepath.Dir(e.Path)] = true
	done = true
	w.st.Written++
	return nil
}

// link makes tmp, the temporary name beside p, a hard link to the file
// at target, in the same root through it, else by their paths.
func (w *hostWriter) link(target, p string, tmp place) error {
	if err := w.inside(target); err != nil {
		return err
	}
	from, err := w.at(target)
	if err != nil {
		return err
	}
	if from.root != nil && from.root == tmp.root {
		return tmp.root.Link(from.name, tmp.name)
	}
	return os.Link(target, filepath.Join(filepath.Dir(p), filepath.Base(tmp.name)))
}

// content writes the Data frames that follow a file's entry into tmp,
// zero blocks as holes, and syncs it.
func (w *hostWriter) content(tmp place, n *repo.Node) error {
	f, err := tmp.create()
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for {
		t, p, err := w.conn.ReadFrame()
		if err != nil {
			return fmt.Errorf("reading content: %w", err)
		}
		if t == agentproto.FrameEOF {
			break
		}
		if t != agentproto.FrameData {
			return fmt.Errorf("agent protocol: got a %s frame inside a file's content", t)
		}
		if err := restorer.WriteSparse(f, p, off); err != nil {
			return err
		}
		off += int64(len(p))
	}
	if uint64(off) != n.Size {
		return fmt.Errorf("got %d bytes of content, the snapshot has %d", off, n.Size)
	}
	if err := f.Truncate(off); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	w.st.Bytes += off
	return f.Close()
}
