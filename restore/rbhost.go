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
	w := &hostWriter{roots: a.Roots, conn: op.Conn, dirty: map[string]bool{}}
	return w.run(ctx, a.Remove)
}

// hostWriter applies one rollback-apply stream.
type hostWriter struct {
	roots []string
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

func (w *hostWriter) run(ctx context.Context, remove []string) (ApplyStats, error) {
	for _, p := range remove {
		if err := w.inside(p); err != nil {
			return w.st, err
		}
		if err := os.RemoveAll(p); err != nil {
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
		if err := restorer.SetMeta(w.dirs[i].Path, w.dirs[i].Node); err != nil {
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

// tempName is a fresh name beside p: what is written there is renamed
// over p only once complete, so a dropped connection never leaves a
// half-written file in p's place.
func tempName(p string) string {
	var b [6]byte
	rand.Read(b[:])
	return filepath.Join(filepath.Dir(p), ".holiday-rollback-"+hex.EncodeToString(b[:]))
}

func (w *hostWriter) one(e applyEntry) error {
	n := e.Node
	if n.Type == repo.NodeDir {
		switch e.Op {
		case OpReplace:
			if err := os.RemoveAll(e.Path); err != nil {
				return err
			}
			fallthrough
		case OpCreate:
			if err := os.Mkdir(e.Path, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
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
		return restorer.SetMeta(e.Path, n)
	}
	tmp := tempName(e.Path)
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	switch {
	case e.Op == OpLink:
		if err := w.inside(e.LinkTo); err != nil {
			return err
		}
		if err := os.Link(e.LinkTo, tmp); err != nil {
			return err
		}
	case n.Type == repo.NodeFile:
		if err := w.content(tmp, n); err != nil {
			return err
		}
	default:
		if err := restorer.CreateSpecial(tmp, n); err != nil {
			return err
		}
	}
	if e.Op != OpLink {
		if err := restorer.SetMeta(tmp, n); err != nil {
			return err
		}
	}
	if fi, err := os.Lstat(e.Path); err == nil && fi.IsDir() {
		if err := os.RemoveAll(e.Path); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, e.Path); err != nil {
		return err
	}
	w.dirty[filepath.Dir(e.Path)] = true
	done = true
	w.st.Written++
	return nil
}

// content writes the Data frames that follow a file's entry into tmp,
// zero blocks as holes, and syncs it.
func (w *hostWriter) content(tmp string, n *repo.Node) error {
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
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
