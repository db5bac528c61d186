// Package archiver turns file trees and streams into snapshots: it walks
// the source, cuts files into blobs (restic's content-defined chunker with
// the repository's polynomial, or fixed blocks for disks), hashes,
// compresses, encrypts and packs them on all cores, writes the trees, and
// stores the snapshot after the packs and the index.
//
// It must never import anything of holiday's above backup; it may import
// backup/repo, backup/backend and internal/....
package archiver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/restic/chunker"
	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/repo"
)

// Options shape a backup.
type Options struct {
	Tags      []string
	Hostname  string // default: this host's name
	BlockSize int    // > 0: fixed-size blocks instead of content-defined chunks
	Log       *slog.Logger
	// Progress, when set, is called about once a second with the bytes
	// read so far.
	Progress func(Stats)
	// ProgramVersion goes into the snapshot.
	ProgramVersion string
	// Parent is an earlier snapshot of the same paths: files whose size,
	// mtime, ctime and inode match it are not read again.
	Parent *repo.Snapshot
	// Verify, when set, is called with the root tree once the packs and
	// the index are stored, before the snapshot is written: an error
	// fails the backup and no snapshot is written (a caller whose
	// repository reads back what it stores waits for the verdict:
	// repo.WaitVerifiedTree).
	Verify func(ctx context.Context, root repo.ID) error
}

// Stats counts a backup's work.
type Stats struct {
	Files, Dirs, Others int64
	Unchanged           int64 // files taken from the parent without reading
	BytesRead           int64
	BytesAdded          int64 // plaintext of new blobs
	BytesStored         int64 // what the new blobs take in packs
	Unreadable          []string
	Elapsed             time.Duration
}

// MinBlockSize is the smallest fixed block size accepted.
const MinBlockSize = 1 << 20

// ErrIncomplete is returned (with a snapshot) when some sources could not
// be read; the snapshot holds everything else.
var ErrIncomplete = errors.New("some files could not be read")

type job struct {
	buf  *[]byte
	pool *bufPool
	n    int
	out  *repo.ID
	done func(error)
	// a block the worker reads itself, n bytes at off of f, into a
	// buffer of its own; buf is nil then
	f     *os.File
	off   int64
	reads *blockReads
}

// blockReads tracks the block reads of one file that workers do.
type blockReads struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (b *blockReads) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
}

var errShrank = errors.New("file shrank while being read")

// bufPool hands out at most cap(free) buffers of one size, allocated as
// needed and reused: memory is bounded whatever the source.
type bufPool struct {
	free chan *[]byte
	n    atomic.Int32
	size int
}

func newBufPool(count, size int) *bufPool {
	return &bufPool{free: make(chan *[]byte, count), size: size}
}

func (p *bufPool) get(ctx, gctx context.Context) (*[]byte, error) {
	select {
	case b := <-p.free:
		return b, nil
	default:
	}
	if int(p.n.Add(1)) <= cap(p.free) {
		b := make([]byte, p.size)
		return &b, nil
	}
	p.n.Add(-1)
	select {
	case b := <-p.free:
		return b, nil
	case <-gctx.Done():
		return nil, gctx.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *bufPool) put(b *[]byte) {
	select {
	case p.free <- b:
	default:
	}
}

type archiver struct {
	r    *repo.Repository
	opts Options
	// chunk buffers; small files (one blob below the chunker's minimum)
	// get small buffers, so that many can be in flight at once; blocks,
	// one per worker, are for the blocks workers read themselves (from
	// big, a worker could wait for buffers held by jobs queued behind its
	// own)
	big, small, blocks *bufPool
	jobs               chan job
	files              chan fileJob // regular files for the readers
	readers            sync.WaitGroup
	g                  *errgroup.Group
	gctx               context.Context
	cancel             context.CancelCauseFunc // cancels gctx
	werr               error                   // the first error of a blob worker (under mu)
	read               atomic.Int64
	mu                 sync.Mutex
	stats              Stats
}

func newArchiver(ctx context.Context, r *repo.Repository, opts Options) *archiver {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	cctx, cancel := context.WithCancelCause(ctx)
	g, gctx := errgroup.WithContext(cctx)
	bufSize := int(chunker.MaxSize)
	if opts.BlockSize > 0 {
		bufSize = opts.BlockSize
	}
	workers := runtime.GOMAXPROCS(0)
	a := &archiver{r: r, opts: opts, g: g, gctx: gctx, cancel: cancel,
		big: newBufPool(workers+2, bufSize), small: newBufPool(16, smallFile), blocks: newBufPool(workers, bufSize)}
	a.jobs = make(chan job, 16)
	a.files = make(chan fileJob, 64)
	for range fileReaders {
		a.readers.Add(1)
		go a.reader()
	}
	for range workers {
		g.Go(func() error {
			// after an error the worker keeps taking jobs until a.jobs is
			// closed and only lets them go: whoever queued them waits for
			// each one (a file's blob IDs, a file's block reads)
			var failed error
			for j := range a.jobs {
				if failed != nil {
					a.drop(&j, failed)
					continue
				}
				if j.f != nil && !a.readBlock(&j) {
					continue
				}
				data := (*j.buf)[:j.n]
				id, _, err := r.SaveBlob(gctx, repo.DataBlob, data, repo.HashData(data))
				j.pool.put(j.buf)
				if err == nil {
					*j.out = id
				} else {
					failed = err
					a.fail(err)
				}
				j.done(err)
			}
			return failed
		})
	}
	return a
}

// fail records a blob worker's error, the first one being the cause,
// and stops the backup's work.
func (a *archiver) fail(err error) {
	a.mu.Lock()
	if a.werr == nil {
		a.werr = err
	}
	a.mu.Unlock()
	a.cancel(err)
}

// drop lets a job go unhandled after an error: its buffer goes back,
// and its file's reader and content stop waiting for it.
func (a *archiver) drop(j *job, err error) {
	if j.buf != nil {
		j.pool.put(j.buf)
	}
	if j.f != nil {
		j.reads.fail(err)
		j.reads.wg.Done()
	}
	j.done(err)
}

// readBlock reads a job's block into a buffer of the worker's; false
// when it cannot (the file's reader is told, and the blob is left out).
func (a *archiver) readBlock(j *job) bool {
	defer j.reads.wg.Done()
	buf, err := a.blocks.get(a.gctx, a.gctx) // never waits: each worker holds at most one
	if err != nil {
		j.reads.fail(err)
		j.done(nil)
		return false
	}
	n, err := j.f.ReadAt((*buf)[:j.n], j.off)
	if n < j.n {
		if err == nil || err == io.EOF {
			err = errShrank
		}
		a.blocks.put(buf)
		j.reads.fail(err)
		j.done(nil)
		return false
	}
	a.read.Add(int64(n))
	j.buf, j.pool = buf, a.blocks
	return true
}

// saveBlocks stores a regular file of (at stat time) size bytes in fixed
// blocks: its whole blocks are read by the workers themselves, side by
// side, each into its own buffer, then the rest (the last partial block
// and whatever the file has grown by) is read here.
func (a *archiver) saveBlocks(ctx context.Context, ch *chunker.Chunker, f *os.File, size int64, c *content) (int64, error) {
	bs := int64(a.opts.BlockSize)
	whole := size / bs
	reads := &blockReads{}
	var err error
	for i := int64(0); i < whole && err == nil; i++ {
		reads.wg.Add(1)
		select {
		case a.jobs <- job{n: int(bs), out: c.next(), done: c.done, f: f, off: i * bs, reads: reads}:
			continue
		case <-a.gctx.Done():
			err = a.gctx.Err()
		case <-ctx.Done():
			err = ctx.Err()
		}
		c.done(nil)
		reads.wg.Done()
	}
	reads.wg.Wait() // f stays open until the workers have read it
	if err == nil {
		err = reads.err
	}
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(whole*bs, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := a.saveStream(ctx, ch, f, c)
	return whole*bs + n, err
}

// smallFile is the size below which a file is one blob (the chunker's
// minimum) and is read whole into a small buffer.
const smallFile = int(chunker.MinSize)

// content collects a file's blob IDs in order while workers fill them in;
// segments never move, so workers may write through pointers.
type content struct {
	segs [][]repo.ID
	last int // entries used in the last segment
	n    int
	hint int // expected number of blobs, sizes the first segment
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

func (c *content) next() *repo.ID {
	if len(c.segs) == 0 || c.last == len(c.segs[len(c.segs)-1]) {
		size := 1024
		if len(c.segs) == 0 && c.hint > 0 && c.hint < size {
			size = c.hint
		}
		c.segs = append(c.segs, make([]repo.ID, size))
		c.last = 0
	}
	p := &c.segs[len(c.segs)-1][c.last]
	c.last++
	c.n++
	c.wg.Add(1)
	return p
}

func (c *content) done(err error) {
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	c.wg.Done()
}

func (c *content) ids() ([]repo.ID, error) {
	c.wg.Wait()
	if c.err != nil {
		return nil, c.err
	}
	out := make([]repo.ID, 0, c.n)
	for i, seg := range c.segs {
		if i == len(c.segs)-1 {
			seg = seg[:c.last]
		}
		out = append(out, seg...)
	}
	return out, nil
}

// saveStream cuts rd into blobs and hands them to the workers; it returns
// when rd is consumed, not when the blobs are stored (wait on c).
func (a *archiver) saveStream(ctx context.Context, ch *chunker.Chunker, rd io.Reader, c *content) (int64, error) {
	var total int64
	submit := func(buf *[]byte, n int) error {
		total += int64(n)
		return a.submit(ctx, buf, a.big, n, c)
	}
	if a.opts.BlockSize > 0 {
		for {
			buf, err := a.big.get(ctx, a.gctx)
			if err != nil {
				return total, err
			}
			n, err := io.ReadFull(rd, (*buf)[:a.opts.BlockSize])
			if n > 0 {
				if serr := submit(buf, n); serr != nil {
					return total, serr
				}
			} else {
				a.big.put(buf)
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
		}
	}
	ch.Reset(rd, a.r.Config().ChunkerPolynomial)
	for {
		buf, err := a.big.get(ctx, a.gctx)
		if err != nil {
			return total, err
		}
		chunk, err := ch.Next((*buf)[:0])
		if err == io.EOF {
			a.big.put(buf)
			return total, nil
		}
		if err != nil {
			a.big.put(buf)
			return total, err
		}
		if &chunk.Data[0] != &(*buf)[0] {
			// the chunker grew the buffer (cannot happen with MaxSize buffers)
			*buf = chunk.Data[:cap(chunk.Data)]
		}
		if err := submit(buf, int(chunk.Length)); err != nil {
			return total, err
		}
	}
}

// submit hands one blob to the workers.
func (a *archiver) submit(ctx context.Context, buf *[]byte, pool *bufPool, n int, c *content) error {
	a.read.Add(int64(n))
	j := job{buf: buf, pool: pool, n: n, out: c.next(), done: c.done}
	select {
	case a.jobs <- j:
		return nil
	case <-a.gctx.Done():
		c.done(nil)
		return a.gctx.Err()
	case <-ctx.Done():
		c.done(nil)
		return ctx.Err()
	}
}

// newChunker returns a chunker for one reading goroutine; New builds
// tables and a read buffer, so each reader keeps its own and resets it.
func (a *archiver) newChunker() *chunker.Chunker {
	return chunker.New(bytes.NewReader(nil), a.r.Config().ChunkerPolynomial)
}

func (a *archiver) finish() error {
	close(a.files)
	a.readers.Wait()
	close(a.jobs)
	_ = a.g.Wait() // the workers' errors are in werr, the first one first
	a.cancel(nil)
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.werr
}

func (a *archiver) warn(path string, err error) {
	a.mu.Lock()
	a.stats.Unreadable = append(a.stats.Unreadable, path)
	a.mu.Unlock()
	a.opts.Log.Warn("cannot read, left out of the snapshot", "path", path, "err", err)
}

// pendingNode is a node whose content or subtree is still being stored:
// the walk moves on while workers store a file's blobs and a goroutine
// per folder waits for its entries and stores its tree, so the walk never
// stalls at the end of a folder.
type pendingNode struct {
	node    *repo.Node
	path    string
	c       *content
	read    chan struct{} // closed when a file has been read
	readErr error
	done    chan struct{} // closed when a folder's tree is stored
	err     error
}

// wait completes the node: content IDs for a file, subtree for a folder.
func (p *pendingNode) wait() error {
	if p.read != nil {
		<-p.read
		if p.readErr != nil {
			return p.readErr
		}
	}
	if p.c != nil {
		ids, err := p.c.ids()
		if err != nil {
			// only storing a blob fails here
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		p.node.Content = ids
		p.c = nil
	}
	if p.done != nil {
		<-p.done
		return p.err
	}
	return nil
}

type fileJob struct {
	path string
	p    *pendingNode
}

// fileReaders read files in parallel: reading is mostly waiting for the
// disk, and one reader cannot keep the blob workers busy on a tree of
// small files.
const fileReaders = 2

func (a *archiver) reader() {
	defer a.readers.Done()
	ch := a.newChunker()
	for j := range a.files {
		j.p.readErr = a.readFile(a.gctx, ch, j.path, j.p)
		close(j.p.read)
	}
}

// saveFile queues a regular file for the readers; its node completes
// when its blobs are stored.
func (a *archiver) saveFile(ctx context.Context, path string, n *repo.Node) (*pendingNode, error) {
	p := &pendingNode{node: n, path: path, read: make(chan struct{})}
	select {
	case a.files <- fileJob{path, p}:
		return p, nil
	case <-a.gctx.Done():
		return nil, a.gctx.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readFile reads a regular file into blobs.
func (a *archiver) readFile(ctx context.Context, ch *chunker.Chunker, path string, p *pendingNode) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("changed into a %v while being read", fi.Mode().Type())
	}
	hint := int(fi.Size()/int64(chunker.MinSize)) + 1
	if a.opts.BlockSize > 0 {
		hint = int(fi.Size()/int64(a.opts.BlockSize)) + 1
	}
	c := &content{hint: hint}
	var size int64
	if fi.Size() < int64(smallFile) && (a.opts.BlockSize == 0 || fi.Size() < int64(a.opts.BlockSize)) {
		size, err = a.saveSmall(ctx, ch, f, c)
	} else if a.opts.BlockSize > 0 {
		size, err = a.saveBlocks(ctx, ch, f, fi.Size(), c)
	} else {
		size, err = a.saveStream(ctx, ch, f, c)
	}
	if err != nil {
		c.wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read: %w", err)
	}
	p.node.Size = uint64(size)
	p.c = c
	a.mu.Lock()
	a.stats.Files++
	a.mu.Unlock()
	return nil
}

// saveSmall stores a file that stat says is below the chunker's minimum
// as one blob, read whole into a small buffer. A file that has grown
// meanwhile goes through the chunker after all.
func (a *archiver) saveSmall(ctx context.Context, ch *chunker.Chunker, f *os.File, c *content) (int64, error) {
	buf, err := a.small.get(ctx, a.gctx)
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(f, *buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if n == 0 {
			a.small.put(buf)
			return 0, nil
		}
		return int64(n), a.submit(ctx, buf, a.small, n, c)
	case err != nil:
		a.small.put(buf)
		return 0, err
	}
	// grew to at least the minimum: chunk what we have and the rest
	head := append([]byte(nil), (*buf)[:n]...)
	a.small.put(buf)
	return a.saveStream(ctx, ch, io.MultiReader(bytes.NewReader(head), f), c)
}

// saveDir walks a directory's entries; its tree is stored in the
// background once they are complete.
func (a *archiver) saveDir(ctx context.Context, path string, n *repo.Node, parent *repo.Tree) (*pendingNode, error) {
	d, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var pend []*pendingNode
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := a.gctx.Err(); err != nil {
			break
		}
		p, err := a.saveAny(ctx, filepath.Join(path, name), name, parent.Find(name))
		if err != nil {
			if isFatal(err) {
				return nil, err
			}
			a.warn(filepath.Join(path, name), err)
			continue
		}
		pend = append(pend, p)
	}
	p := &pendingNode{node: n, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		id, err := a.saveTree(ctx, pend)
		if err != nil {
			p.err = err
			return
		}
		n.Subtree = id
	}()
	return p, nil
}

func isFatal(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errStorage)
}

var errStorage = errors.New("storage")

func (a *archiver) saveTree(ctx context.Context, pend []*pendingNode) (*repo.ID, error) {
	t := &repo.Tree{Nodes: make([]*repo.Node, 0, len(pend))}
	for _, p := range pend {
		if err := p.wait(); err != nil {
			if isFatal(err) || p.read == nil {
				return nil, err
			}
			a.warn(p.path, err) // a file that could not be read is left out
			continue
		}
		if err := t.Insert(p.node); err != nil {
			return nil, err
		}
	}
	id, err := a.r.SaveTree(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("%w: store tree: %w", errStorage, err)
	}
	return &id, nil
}

// saveAny archives one path of any type as a node called name.
// saveAny archives one path of any type as a node called name; pnode is
// the same entry in the parent snapshot, if any.
func (a *archiver) saveAny(ctx context.Context, path, name string, pnode *repo.Node) (*pendingNode, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	n, err := NodeFromFileInfo(path, name, fi)
	if err != nil {
		return nil, err
	}
	switch n.Type {
	case repo.NodeFile:
		if a.unchanged(pnode, n) {
			n.Content = pnode.Content
			a.mu.Lock()
			a.stats.Files++
			a.stats.Unchanged++
			a.mu.Unlock()
			return &pendingNode{node: n}, nil
		}
		return a.saveFile(ctx, path, n)
	case repo.NodeDir:
		a.mu.Lock()
		a.stats.Dirs++
		a.mu.Unlock()
		return a.saveDir(ctx, path, n, a.parentTree(ctx, pnode))
	default:
		a.mu.Lock()
		a.stats.Others++
		a.mu.Unlock()
	}
	return &pendingNode{node: n}, nil
}

// parentTree loads the parent snapshot's tree for a folder; nil when
// there is none or it cannot be read (then everything is read afresh).
func (a *archiver) parentTree(ctx context.Context, pnode *repo.Node) *repo.Tree {
	if pnode == nil || pnode.Type != repo.NodeDir || pnode.Subtree == nil {
		return nil
	}
	t, err := a.r.LoadTree(ctx, *pnode.Subtree)
	if err != nil {
		a.opts.Log.Warn("parent snapshot tree unreadable; reading the folder afresh", "err", err)
		return nil
	}
	return t
}

// unchanged reports whether a file can take its content from the parent
// snapshot without being read: restic's rule (same type, size, mtime,
// ctime and inode) and every blob still in the index.
func (a *archiver) unchanged(p, n *repo.Node) bool {
	if p == nil || p.Type != repo.NodeFile || p.Size != n.Size || !p.ModTime.Equal(n.ModTime) ||
		!p.ChangeTime.Equal(n.ChangeTime) || p.Inode != n.Inode {
		return false
	}
	for _, id := range p.Content {
		if !a.r.Index().Has(repo.BlobHandle{ID: id, Type: repo.DataBlob}) {
			return false
		}
	}
	return true
}

// vdir is a directory on the way from / to a target.
type vdir struct {
	path  string
	nodes map[string]*vdir
	leaf  string // the target path, when this component is a target itself
}

func (a *archiver) saveVirtual(ctx context.Context, v *vdir, parent *repo.Tree) (*repo.ID, error) {
	names := make([]string, 0, len(v.nodes))
	for k := range v.nodes {
		names = append(names, k)
	}
	slices.Sort(names)
	var pend []*pendingNode
	for _, name := range names {
		child := v.nodes[name]
		if child.leaf != "" {
			p, err := a.saveAny(ctx, child.leaf, name, parent.Find(name))
			if err != nil {
				if isFatal(err) {
					return nil, err
				}
				a.warn(child.leaf, err)
				continue
			}
			pend = append(pend, p)
			continue
		}
		fi, err := os.Lstat(child.path)
		if err != nil {
			return nil, err
		}
		n, err := NodeFromFileInfo(child.path, name, fi)
		if err != nil {
			return nil, err
		}
		if n.Subtree, err = a.saveVirtual(ctx, child, a.parentTree(ctx, parent.Find(name))); err != nil {
			return nil, err
		}
		pend = append(pend, &pendingNode{node: n})
	}
	return a.saveTree(ctx, pend)
}

func (a *archiver) progress(stop <-chan struct{}) {
	if a.opts.Progress == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			a.opts.Progress(a.snapshotStats(time.Time{}))
		}
	}
}

func (a *archiver) snapshotStats(start time.Time) Stats {
	a.mu.Lock()
	s := a.stats
	a.mu.Unlock()
	s.BytesRead = a.read.Load()
	s.BytesAdded, s.BytesStored = a.r.Added()
	if !start.IsZero() {
		s.Elapsed = time.Since(start)
	}
	return s
}

// FindParent returns the latest snapshot of the same host and the same
// paths (restic's choice of parent), or nil.
func FindParent(ctx context.Context, r *repo.Repository, host string, paths []string) (*repo.Snapshot, error) {
	if host == "" {
		host, _ = os.Hostname()
	}
	var abs []string
	for _, p := range paths {
		ap, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		abs = append(abs, ap)
	}
	slices.Sort(abs)
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	for i := len(sns) - 1; i >= 0; i-- {
		sp := slices.Clone(sns[i].Paths)
		slices.Sort(sp)
		if sns[i].Hostname == host && slices.Equal(sp, abs) {
			return sns[i], nil
		}
	}
	return nil, nil
}

// Backup archives paths (files or directories, made absolute) into a new
// snapshot. Write order is packs, then index, then snapshot. If some
// entries could not be read the snapshot is still written and the error
// wraps ErrIncomplete.
func Backup(ctx context.Context, r *repo.Repository, paths []string, opts Options) (*repo.Snapshot, Stats, error) {
	if len(paths) == 0 {
		return nil, Stats{}, fmt.Errorf("nothing to back up: no paths given")
	}
	root := &vdir{path: "/", nodes: map[string]*vdir{}}
	var abs []string
	for _, p := range paths {
		ap, err := filepath.Abs(p)
		if err != nil {
			return nil, Stats{}, err
		}
		if _, err := os.Lstat(ap); err != nil {
			return nil, Stats{}, fmt.Errorf("source %s: %w", p, err)
		}
		abs = append(abs, ap)
		if ap == "/" {
			return nil, Stats{}, fmt.Errorf("backing up / as a whole is not supported; name its folders")
		}
		cur := root
		parts := strings.Split(strings.TrimPrefix(ap, "/"), "/")
		for i, part := range parts {
			next, ok := cur.nodes[part]
			if !ok {
				next = &vdir{path: filepath.Join(cur.path, part), nodes: map[string]*vdir{}}
				cur.nodes[part] = next
			}
			if i == len(parts)-1 {
				next.leaf = ap
			}
			cur = next
		}
	}
	return run(ctx, r, opts, abs, func(a *archiver) (*repo.ID, error) {
		var parent *repo.Tree
		if opts.Parent != nil {
			parent = a.parentTree(ctx, &repo.Node{Type: repo.NodeDir, Subtree: opts.Parent.Tree})
		}
		return a.saveVirtual(ctx, root, parent)
	})
}

// BackupReader archives a stream (a dump, a disk image over SSH) as one
// file called name in a new snapshot.
func BackupReader(ctx context.Context, r *repo.Repository, rd io.Reader, name string, opts Options) (*repo.Snapshot, Stats, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, Stats{}, fmt.Errorf("invalid stdin file name %q", name)
	}
	return run(ctx, r, opts, []string{"/" + name}, func(a *archiver) (*repo.ID, error) {
		now := time.Now()
		n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, ModTime: now, AccessTime: now, ChangeTime: now,
			UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
		c := &content{}
		size, err := a.saveStream(ctx, a.newChunker(), rd, c)
		if err != nil {
			c.wg.Wait()
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		n.Size = uint64(size)
		a.mu.Lock()
		a.stats.Files++
		a.mu.Unlock()
		return a.saveTree(ctx, []*pendingNode{{node: n, c: c}})
	})
}

func run(ctx context.Context, r *repo.Repository, opts Options, paths []string, body func(*archiver) (*repo.ID, error)) (*repo.Snapshot, Stats, error) {
	if opts.BlockSize != 0 && opts.BlockSize < MinBlockSize {
		return nil, Stats{}, fmt.Errorf("block size %d is below the minimum of 1 MiB", opts.BlockSize)
	}
	if opts.BlockSize > int(chunker.MaxSize)*2 {
		return nil, Stats{}, fmt.Errorf("block size %d is above the maximum of 16 MiB", opts.BlockSize)
	}
	start := time.Now()
	r.StartWriter(ctx)
	a := newArchiver(ctx, r, opts)
	stop := make(chan struct{})
	go a.progress(stop)
	defer close(stop)
	tree, err := body(a)
	werr := a.finish()
	if err == nil || werr != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
		// the walk stopped because a blob could not be stored: that is
		// the cause, not the cancellation it led to
		err = werr
	}
	if err != nil {
		_ = r.Flush(context.WithoutCancel(ctx)) // what was packed stays usable for the next run
		return nil, a.snapshotStats(start), err
	}
	stats := a.snapshotStats(start)
	if err := r.Flush(ctx); err != nil {
		return nil, stats, fmt.Errorf("store packs and index: %w", err)
	}
	if opts.Verify != nil {
		if err := opts.Verify(ctx, *tree); err != nil {
			return nil, stats, fmt.Errorf("the repository did not read back what was stored, no snapshot is written: %w", err)
		}
	}
	host := opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	sn := &repo.Snapshot{Time: start, Tree: tree, Paths: paths, Hostname: host, Tags: opts.Tags,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ProgramVersion: opts.ProgramVersion}
	if opts.Parent != nil {
		sn.Parent = &opts.Parent.ID
	}
	if u := lookupUser(uint32(os.Getuid())); u != "" {
		sn.Username = u
	}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, stats, fmt.Errorf("store snapshot: %w", err)
	}
	if len(stats.Unreadable) > 0 {
		return sn, stats, fmt.Errorf("%w: %d left out of snapshot %s (first: %s)", ErrIncomplete, len(stats.Unreadable), sn.ID.Str(), stats.Unreadable[0])
	}
	return sn, stats, nil
}
