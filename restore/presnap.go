package restore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/restic/chunker"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// PreSnapshotter takes the snapshot of what a rollback is about to
// replace, before it replaces anything: the paths under roots as the
// host holds them now, tagged as given, with the host's name.
//
// The backup data path (the agent chunks and hashes, only chunks the
// repository lacks cross SSH) is being built beside rollback; until it
// lands, StreamSnapshotter stands in for it.
type PreSnapshotter interface {
	SnapshotFiles(ctx context.Context, h *actions.Host, roots, tags []string) (*repo.Snapshot, error)
}

// StreamSnapshotter snapshots a host's files through the rollback-read
// operation: the host sends every node under the roots with its whole
// content, and the control node chunks, packs and stores it. It sends
// more than the backup data path will (no dedup before the wire), and is
// here until that path lands; the snapshot it writes is an ordinary one
// (stock restic lists, checks and restores it).
type StreamSnapshotter struct {
	Repo    *repo.Repository
	Version string // holiday's version, in the snapshot
}

// SnapshotFiles implements PreSnapshotter.
func (s StreamSnapshotter) SnapshotFiles(ctx context.Context, h *actions.Host, roots, tags []string) (*repo.Snapshot, error) {
	st, err := starterOf(h)
	if err != nil {
		return nil, err
	}
	r := s.Repo
	start := time.Now()
	r.StartWriter(ctx)
	stream, err := st.Start(ctx, OpRollbackRead, scanArgs{Roots: roots, Parents: true})
	if err != nil {
		return nil, err
	}
	defer stream.Close()

	trees := map[string]*repo.Tree{"/": {}}
	dirNodes := map[string]*repo.Node{}
	ch := chunker.New(bytes.NewReader(nil), r.Config().ChunkerPolynomial)
	buf := make([]byte, chunker.MaxSize)
	for {
		var it Item
		if err := stream.ReadJSON(agentproto.FrameMessage, &it); err != nil {
			return nil, fmt.Errorf("%s: reading its files: %w", h.Name, err)
		}
		if it.Path == "" {
			break
		}
		n := it.Node
		if n == nil || !strings.HasPrefix(it.Path, "/") || path.Clean(it.Path) != it.Path || n.Name != path.Base(it.Path) {
			return nil, fmt.Errorf("%s: the host sent a malformed node for %q", h.Name, it.Path)
		}
		parent := trees[path.Dir(it.Path)]
		if parent == nil {
			return nil, fmt.Errorf("%s: the host sent %s before its directory", h.Name, it.Path)
		}
		switch n.Type {
		case repo.NodeFile:
			ids, size, err := saveContent(ctx, r, ch, buf, &dataReader{c: stream.Conn})
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", h.Name, it.Path, err)
			}
			if size != n.Size {
				return nil, fmt.Errorf("%s: %s: got %d bytes, the node says %d", h.Name, it.Path, size, n.Size)
			}
			n.Content = ids
		case repo.NodeDir:
			trees[it.Path] = &repo.Tree{}
			dirNodes[it.Path] = n
		}
		if err := parent.Insert(n); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", h.Name, it.Path, err)
		}
	}
	if err := stream.Result(nil); err != nil {
		return nil, err
	}
	// Trees bottom-up: a directory's subtree ID is known once its
	// children's are.
	dirs := make([]string, 0, len(dirNodes))
	for p := range dirNodes {
		dirs = append(dirs, p)
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, p := range dirs {
		id, err := r.SaveTree(ctx, trees[p])
		if err != nil {
			return nil, err
		}
		dirNodes[p].Subtree = &id
	}
	root, err := r.SaveTree(ctx, trees["/"])
	if err != nil {
		return nil, err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, fmt.Errorf("store packs and index: %w", err)
	}
	sn := &repo.Snapshot{Time: start, Tree: &root, Paths: roots, Hostname: h.Name, Tags: tags,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ProgramVersion: s.Version}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, fmt.Errorf("store snapshot: %w", err)
	}
	return sn, nil
}

// saveContent chunks rd with the repository's polynomial and stores
// each chunk.
func saveContent(ctx context.Context, r *repo.Repository, ch *chunker.Chunker, buf []byte, rd io.Reader) ([]repo.ID, uint64, error) {
	ch.Reset(rd, r.Config().ChunkerPolynomial)
	ids := []repo.ID{}
	var size uint64
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			return ids, size, nil
		}
		if err != nil {
			return nil, 0, err
		}
		id, _, err := r.SaveBlob(ctx, repo.DataBlob, c.Data, repo.ID{})
		if err != nil {
			return nil, 0, err
		}
		ids = append(ids, id)
		size += uint64(c.Length)
	}
}

// dataReader reads Data frames up to the EOF frame.
type dataReader struct {
	c    *agentproto.Conn
	rest []byte
	eof  bool
}

func (d *dataReader) Read(p []byte) (int, error) {
	for len(d.rest) == 0 {
		if d.eof {
			return 0, io.EOF
		}
		t, b, err := d.c.ReadFrame()
		if err != nil {
			return 0, err
		}
		switch t {
		case agentproto.FrameData:
			d.rest = b
		case agentproto.FrameEOF:
			d.eof = true
		default:
			return 0, fmt.Errorf("agent protocol: got a %s frame inside a file's content", t)
		}
	}
	n := copy(p, d.rest)
	d.rest = d.rest[n:]
	return n, nil
}
