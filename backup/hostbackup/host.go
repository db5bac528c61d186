package hostbackup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/restic/chunker"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// Dump is a running dump on the host: its output, and Wait, which says
// whether it ended well (non-nil if the tool exited non-zero, was killed
// or the stream was cut short). backup/dbdump's *Dump is one.
type Dump interface {
	io.Reader
	Wait() error
}

// DumpStarter starts a dump on the host.
type DumpStarter func(ctx context.Context, s StreamSpec) (Dump, error)

var (
	dumperMu sync.Mutex
	dumper   DumpStarter
)

// RegisterDumper sets how the agent starts database dumps (backup/dbdump
// provides it); without one a stream source is refused.
func RegisterDumper(f DumpStarter) {
	dumperMu.Lock()
	dumper = f
	dumperMu.Unlock()
}

// Handler is the agent operation. It reads the host and, for a disk with
// freeze, freezes and thaws its filesystem: the change class.
func Handler() agent.Handler {
	return agent.Handler{Name: OpName, Class: agent.ClassChange, Run: func(ctx context.Context, op *agent.Op) (any, error) {
		var req Request
		if err := json.Unmarshal(op.Args, &req); err != nil {
			return nil, fmt.Errorf("host-backup: bad arguments: %w", err)
		}
		return serveHost(ctx, op.Conn, req)
	}}
}

// Tunables of the host side.
const (
	// window bounds the chunk data read but not yet sent or let go: the
	// control node's answers have this much reading to arrive in.
	window = 64 << 20
	// nodeBatch and contentBatch bound the entries and chunks of one Up
	// message; batchBytes the chunk data one Up{Contents} stands for.
	nodeBatch    = 512
	contentBatch = 256
	batchBytes   = 8 << 20
	// nodeFlush sends a partial batch of entries after this long, so
	// that the reads of a slow walk are not held back.
	nodeFlush = 20 * time.Millisecond
)

// host is one host-backup operation on the agent.
type host struct {
	conn *agentproto.Conn
	req  Request
	pol  chunker.Pol
	ch   *chunker.Chunker
	cbuf []byte // the chunker's output buffer, one for the operation
	seq  int64
	res  Result
	// window is the bound on chunk data held (the window tunable;
	// smaller in tests)
	window int
	// unasked: the control node needs every chunk (Down.Unasked); the
	// chunks are neither hashed nor offered any more
	unasked atomic.Bool
	// flushed: a batch of contents went out; answered is closed with
	// the control node's first answer to one (Want): from then on,
	// unasked says the mode
	flushed  atomic.Bool
	answered chan struct{}
	// spare holds disk block buffers the sender is done with, for the
	// next blocks (a block is as large as 16 MiB: allocating and
	// zeroing one per block costs more than hashing it)
	spare chan []byte

	mu      sync.Mutex
	cond    *sync.Cond
	err     error          // the first failure; everything stops
	upto    int64          // verdicts are known up to this entry
	read    map[int64]bool // files the control node wants read
	wants   []Want         // wants not yet taken by the sender
	owedV   int            // verdicts the control node still owes
	owedW   int            // wants the control node still owes
	held    int            // bytes of chunk data in the window
	queue   []heldBatch    // Up{Contents} sent, awaiting their want
	owedP   bool           // a stream's polynomial is still owed (a Request without it)
	sending bool           // the sender has a batch out of the queue
	ended   bool           // no more batches
	sendOK  chan struct{}  // closed when the sender is done
	cancel  context.CancelFunc

	// the current batches being filled
	nodes    []Entry
	nodesAt  time.Time
	contents []Content
	data     []chunkData // data of the chunks of contents, in order (none: zero)
	bytes    int
	pending  []pendingFile // files sent whose verdict or read is to come
}

// chunkData is a chunk's data to send: in memory, or, for a disk block
// sent unasked, where it is on the device (agentproto.WriteFrameFrom
// has the kernel move it to the link from the page cache).
type chunkData struct {
	b   []byte
	dev *os.File
	off int64
	n   int
}

func (d chunkData) none() bool { return d.b == nil && d.dev == nil }

type heldBatch struct {
	data  []chunkData
	bytes int
	// up is an unasked batch's message, which the sender writes just
	// before its data (no want to wait for)
	up *Up
}

type pendingFile struct {
	seq  int64
	path string
}

func (h *host) fail(err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
		h.cancel()
	}
	h.cond.Broadcast()
	h.mu.Unlock()
}

func (h *host) failed() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func serveHost(ctx context.Context, conn *agentproto.Conn, req Request) (*Result, error) {
	return newHost(conn, req).serve(ctx, (*host).source)
}

func newHost(conn *agentproto.Conn, req Request) *host {
	h := &host{conn: conn, req: req, pol: chunker.Pol(req.Polynomial), upto: -1, read: map[int64]bool{}, sendOK: make(chan struct{}), window: window,
		answered: make(chan struct{})}
	h.cond = sync.NewCond(&h.mu)
	return h
}

// source reads the Request's source.
func (h *host) source(ctx context.Context) error {
	switch h.req.Source {
	case SourceFiles:
		return h.files(ctx)
	case SourceDisk:
		return h.disk(ctx)
	case SourceStream:
		return h.stream(ctx)
	}
	return fmt.Errorf("host-backup: unknown source %q", h.req.Source)
}

// serve runs the operation: read (the source) on this goroutine, the
// control node's answers and the data sent beside it.
func (h *host) serve(ctx context.Context, read func(*host, context.Context) error) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.cancel = cancel
	req := h.req
	switch {
	case req.Source == SourceFiles && req.Polynomial == 0:
		// comes with the first verdict, before any file is read (recv)
	case req.Source == SourceStream && req.Polynomial == 0:
		// the control node's first message (recv); the dump starts
		// meanwhile and its output is held (holdUntilPolynomial)
		h.owedP = true
	case req.Source != SourceDisk:
		if !h.pol.Irreducible() {
			return nil, fmt.Errorf("host-backup: the chunker polynomial %#x is not valid", req.Polynomial)
		}
		h.ch = chunker.New(bytes.NewReader(nil), h.pol)
	}
	// The control node's answers are read without pause, whatever the
	// rest does, so that its writes never wait on ours.
	recvDone := make(chan struct{})
	go func() { defer close(recvDone); h.recv() }()
	go h.sender()

	err := read(h, ctx)
	if err == nil {
		err = h.flushContents(ctx)
	}
	h.mu.Lock()
	h.ended = true
	h.cond.Broadcast()
	h.mu.Unlock()
	<-h.sendOK
	if err == nil {
		<-recvDone
	}
	if err == nil {
		err = h.failed()
	}
	if err != nil {
		h.fail(err)
		return nil, err
	}
	if err := h.conn.WriteJSON(agentproto.FrameMessage, Up{Done: true}); err != nil {
		return nil, err
	}
	return &h.res, nil
}

// recv reads the control node's Down messages until the operation ends.
// It reads only while wants or verdicts are still due, so that it never
// takes the session's next request.
func (h *host) recv() {
	for {
		h.mu.Lock()
		for h.err == nil && h.owedV+h.owedW == 0 && !h.owedP {
			if h.ended {
				h.mu.Unlock()
				return
			}
			h.cond.Wait()
		}
		stop := h.err != nil
		h.mu.Unlock()
		if stop {
			return
		}
		t, p, err := h.conn.ReadFrame()
		if err != nil {
			h.fail(fmt.Errorf("reading the control node's answers: %w", err))
			return
		}
		var d Down
		if t != agentproto.FrameMessage {
			h.fail(fmt.Errorf("host-backup: unexpected %s frame from the control node", t))
			return
		}
		if err := json.Unmarshal(p, &d); err != nil {
			h.fail(fmt.Errorf("host-backup: bad answer: %w", err))
			return
		}
		h.mu.Lock()
		if d.Polynomial != 0 && h.ch == nil && h.req.Source != SourceDisk {
			if pol := chunker.Pol(d.Polynomial); pol.Irreducible() {
				h.pol, h.ch = pol, chunker.New(bytes.NewReader(nil), pol)
			}
		}
		if h.owedP {
			h.owedP = false
			if h.ch == nil {
				h.mu.Unlock()
				h.fail(fmt.Errorf("host-backup: the chunker polynomial %#x is not valid", d.Polynomial))
				return
			}
		}
		if v := d.Verdict; v != nil && len(v.Read) > 0 && h.ch == nil {
			h.mu.Unlock()
			h.fail(errors.New("host-backup: asked to read files without a valid chunker polynomial"))
			return
		}
		if v := d.Verdict; v != nil {
			h.owedV--
			if v.Upto > h.upto {
				h.upto = v.Upto
			}
			for _, s := range v.Read {
				h.read[s] = true
			}
		}
		if d.Want != nil {
			h.owedW--
			h.wants = append(h.wants, *d.Want)
			if d.Unasked {
				h.unasked.Store(true)
			}
			select {
			case <-h.answered:
			default:
				close(h.answered)
			}
		}
		h.cond.Broadcast()
		h.mu.Unlock()
	}
}

// sender sends the data of each Up{Contents}, in order, as its want
// arrives, and lets the rest of the batch go.
func (h *host) sender() {
	defer close(h.sendOK)
	for {
		h.mu.Lock()
		ready := func() bool { return len(h.queue) > 0 && (h.queue[0].up != nil || len(h.wants) > 0) }
		for h.err == nil && !ready() && !(h.ended && len(h.queue) == 0) {
			h.cond.Wait()
		}
		if h.err != nil || len(h.queue) == 0 {
			h.mu.Unlock()
			return
		}
		b := h.queue[0]
		h.queue = h.queue[1:]
		var w Want
		if b.up == nil {
			w, h.wants = h.wants[0], h.wants[1:]
		}
		h.sending = true
		h.mu.Unlock()
		if err := h.sendBatch(b, w); err != nil {
			h.fail(err)
			return
		}
		h.mu.Lock()
		h.sending = false
		h.held -= b.bytes
		h.cond.Broadcast()
		h.mu.Unlock()
	}
}

// drain waits until the sender has sent every batch queued.
func (h *host) drain() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.err == nil && (len(h.queue) > 0 || h.sending) {
		h.cond.Wait()
	}
	if h.err != nil {
		return fatal{h.err}
	}
	return nil
}

// sendBatch sends the data of one batch: the chunks w asks for, or,
// unasked, its message and then every chunk's. The disk buffers go back
// to spare.
func (h *host) sendBatch(b heldBatch, w Want) error {
	defer func() {
		for _, d := range b.data {
			h.recycle(d.b)
		}
	}()
	if b.up != nil {
		if err := h.conn.WriteJSON(agentproto.FrameMessage, b.up); err != nil {
			return fmt.Errorf("sending chunk lengths: %w", err)
		}
		for _, d := range b.data {
			if d.none() {
				continue
			}
			if err := h.sendData(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, i := range w.Need {
		if i < 0 || int(i) >= len(b.data) || b.data[i].none() {
			return fmt.Errorf("host-backup: the control node asked for chunk %d of a batch of %d it cannot have", i, len(b.data))
		}
		if err := h.sendData(b.data[i]); err != nil {
			return err
		}
	}
	return nil
}

// sendData sends one chunk's data frame.
func (h *host) sendData(d chunkData) error {
	if d.dev != nil {
		if err := h.conn.WriteFrameFrom(agentproto.FrameData, d.dev, d.off, d.n); err != nil {
			return fmt.Errorf("disk %s: sending data: %w", h.req.Device, err)
		}
		return nil
	}
	if err := h.conn.WriteFrame(agentproto.FrameData, d.b); err != nil {
		return fmt.Errorf("sending data: %w", err)
	}
	return nil
}

// block returns a buffer of n bytes for a disk block, a spare one if
// there is one.
func (h *host) block(n int) []byte {
	select {
	case b := <-h.spare:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n)
}

// recycle gives a disk block buffer back to spare (other sources have
// none).
func (h *host) recycle(b []byte) {
	if h.spare == nil || b == nil {
		return
	}
	select {
	case h.spare <- b:
	default:
	}
}

// needIDs says whether a disk block read now is to be hashed: not once
// the control node said unasked. Before its first answer that is not
// known, and once a batch went out (hashed: the first batch is offered by
// ID), the answer is waited for rather than hashing blocks whose IDs may
// be dropped (a disk started before the repository is open reads ahead
// for as long as that takes).
func (h *host) needIDs(ctx context.Context) bool {
	if h.flushed.Load() {
		select {
		case <-h.answered:
		case <-ctx.Done():
		}
	}
	return !h.unasked.Load()
}

// addChunk adds one chunk of file seq to the batch being filled; data
// nil is a zero block. It waits for room in the window.
func (h *host) addChunk(ctx context.Context, seq int64, data []byte, zero bool) error {
	var id repo.ID
	if !zero && !h.unasked.Load() {
		id = sha256.Sum256(data)
	}
	return h.addHashed(ctx, seq, chunkData{b: data, n: len(data)}, id, zero)
}

// addHashed is addChunk with the chunk's SHA-256 (id) already computed
// (or not, once unasked).
func (h *host) addHashed(ctx context.Context, seq int64, data chunkData, id repo.ID, zero bool) error {
	c := Chunk{Len: uint32(data.n), Zero: zero, ID: id}
	if zero {
		h.recycle(data.b)
		c.ID, data = repo.ID{}, chunkData{}
	}
	if n := len(h.contents); n == 0 || h.contents[n-1].Seq != seq || !h.contents[n-1].More {
		h.contents = append(h.contents, Content{Seq: seq, More: true})
	}
	ct := &h.contents[len(h.contents)-1]
	ct.Chunks = append(ct.Chunks, c)
	h.data = append(h.data, data)
	if !zero {
		h.bytes += data.n
	}
	h.res.BytesRead += int64(c.Len)
	if len(h.data) >= contentBatch || h.bytes >= batchBytes {
		return h.flushContents(ctx)
	}
	return nil
}

// endFile closes file seq's content with its size as read, or its error.
func (h *host) endFile(ctx context.Context, seq int64, size uint64, err error) error {
	if n := len(h.contents); n == 0 || h.contents[n-1].Seq != seq || !h.contents[n-1].More {
		h.contents = append(h.contents, Content{Seq: seq})
	}
	ct := &h.contents[len(h.contents)-1]
	ct.More, ct.Size = false, size
	if err != nil {
		ct.Err = err.Error()
		ct.Vanished = errors.Is(err, os.ErrNotExist)
	}
	if len(h.contents) >= contentBatch {
		return h.flushContents(ctx)
	}
	return nil
}

// flushContents sends the batch of contents and queues its data for the
// sender; it waits while the window is full.
func (h *host) flushContents(ctx context.Context) error {
	if len(h.contents) == 0 {
		return nil
	}
	b := heldBatch{data: h.data, bytes: h.bytes}
	up := Up{Contents: h.contents}
	h.contents, h.data, h.bytes = nil, nil, 0
	h.mu.Lock()
	for h.err == nil && h.held > 0 && h.held+b.bytes > h.window {
		h.cond.Wait()
	}
	if h.err != nil {
		err := h.err
		h.mu.Unlock()
		return fatal{err}
	}
	if h.unasked.Load() {
		// the sender writes it, right before its data; chunks hashed
		// before the control node's answer arrived go without their IDs
		for i := range up.Contents {
			for j := range up.Contents[i].Chunks {
				up.Contents[i].Chunks[j].ID = repo.ID{}
			}
		}
		up.Unasked = true
		b.up = &up
	}
	h.held += b.bytes
	h.queue = append(h.queue, b)
	h.flushed.Store(true)
	if b.up == nil {
		h.owedW++
	}
	h.cond.Broadcast()
	h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fatal{err}
	}
	if b.up != nil {
		return nil
	}
	if err := h.conn.WriteJSON(agentproto.FrameMessage, up); err != nil {
		return fatal{fmt.Errorf("sending chunk IDs: %w", err)}
	}
	return nil
}

// chunkStream cuts rd with the content-defined chunker into file seq.
func (h *host) chunkStream(ctx context.Context, seq int64, rd io.Reader) (uint64, error) {
	h.ch.Reset(rd, h.pol)
	if h.cbuf == nil {
		// once: 8 MiB zeroed per file cost more than reading a small one
		h.cbuf = make([]byte, chunker.MaxSize)
	}
	buf := h.cbuf
	var size uint64
	for {
		c, err := h.ch.Next(buf[:0])
		if err == io.EOF {
			return size, nil
		}
		if err != nil {
			return size, err
		}
		size += uint64(c.Length)
		if err := h.addChunk(ctx, seq, append([]byte(nil), c.Data...), false); err != nil {
			return size, err
		}
	}
}

// fatal marks an error that ends the operation (the link, the window),
// as opposed to one file that cannot be read.
type fatal struct{ error }

func (f fatal) Unwrap() error { return f.error }

// files walks req.Paths, sends every entry, and reads the files the
// control node's verdicts ask for, side by side with the walk.
func (h *host) files(ctx context.Context) error {
	if len(h.req.Paths) == 0 {
		return errors.New("host-backup: no paths to back up")
	}
	for _, p := range h.req.Paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return fmt.Errorf("host-backup: %q: want a clean absolute path other than /", p)
		}
		if _, err := os.Lstat(p); err != nil {
			return fmt.Errorf("source %s: %w", p, unwrapPath(err))
		}
	}
	walkDone := false
	readErr := make(chan error, 1)
	go func() { readErr <- h.reader(ctx, &walkDone) }()
	err := h.walkAll(ctx)
	if err == nil {
		err = h.flushNodes()
	}
	h.mu.Lock()
	walkDone = true
	h.cond.Broadcast()
	h.mu.Unlock()
	if err != nil {
		h.fail(err)
		<-readErr
		return err
	}
	return <-readErr
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// walkAll sends the folders above each source (once), then each
// source's tree, sources in path order.
func (h *host) walkAll(ctx context.Context) error {
	paths := slices.Clone(h.req.Paths)
	slices.Sort(paths)
	sent := map[string]bool{}
	for _, p := range paths {
		var above []string
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			above = append(above, d)
		}
		slices.Reverse(above)
		for _, d := range above {
			if sent[d] {
				continue
			}
			sent[d] = true
			fi, err := os.Lstat(d)
			if err != nil {
				return fmt.Errorf("source %s: %s: %w", p, d, unwrapPath(err))
			}
			n, err := archiver.NodeFromFileInfo(d, filepath.Base(d), fi)
			if err != nil {
				return err
			}
			if err := h.addNode(d, n); err != nil {
				return err
			}
		}
		if sent[p] {
			continue // a source inside another one
		}
		if err := h.walk(ctx, p, sent); err != nil {
			return err
		}
	}
	return nil
}

// excluded says whether path matches one of the exclude patterns.
func excluded(patterns []string, path string) bool {
	for _, pat := range patterns {
		target := filepath.Base(path)
		if strings.Contains(pat, "/") {
			target = path
		}
		if ok, _ := filepath.Match(pat, target); ok {
			return true
		}
	}
	return false
}

func (h *host) walk(ctx context.Context, path string, sent map[string]bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sent[path] = true
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // gone since its folder was read
		}
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	n, err := archiver.NodeFromFileInfo(path, filepath.Base(path), fi)
	if err != nil {
		return err
	}
	if err := h.addNode(path, n); err != nil {
		return err
	}
	if n.Type != repo.NodeDir {
		return nil
	}
	h.res.Dirs++
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	slices.Sort(names)
	for _, name := range names {
		child := filepath.Join(path, name)
		if excluded(h.req.Exclude, child) {
			continue
		}
		if err := h.walk(ctx, child, sent); err != nil {
			return err
		}
	}
	return nil
}

// addNode adds an entry to the batch of nodes; a regular file also waits
// for its verdict in pending once the batch is sent.
func (h *host) addNode(path string, n *repo.Node) error {
	n.Content = nil
	if len(h.nodes) == 0 {
		h.nodesAt = time.Now()
	}
	h.nodes = append(h.nodes, Entry{Seq: h.seq, Path: path, Node: n.JSON()})
	h.seq++
	if len(h.nodes) >= nodeBatch || time.Since(h.nodesAt) > nodeFlush {
		return h.flushNodes()
	}
	return nil
}

func (h *host) flushNodes() error {
	if len(h.nodes) == 0 {
		return nil
	}
	up := Up{Nodes: h.nodes}
	h.mu.Lock()
	if h.err != nil {
		err := h.err
		h.mu.Unlock()
		return err
	}
	for _, e := range h.nodes {
		if e.Node.Type == repo.NodeFile {
			h.pending = append(h.pending, pendingFile{e.Seq, e.Path})
		}
	}
	if h.req.Source == SourceFiles {
		h.owedV++
	}
	h.cond.Broadcast()
	h.mu.Unlock()
	h.nodes = nil
	if err := h.conn.WriteJSON(agentproto.FrameMessage, up); err != nil {
		return fatal{fmt.Errorf("sending the walk: %w", err)}
	}
	return nil
}

// reader reads, in order, the files the verdicts ask for.
func (h *host) reader(ctx context.Context, walkDone *bool) error {
	for {
		h.mu.Lock()
		ready := func() bool { return len(h.pending) > 0 && h.upto >= h.pending[0].seq }
		if h.err == nil && !ready() && !(*walkDone && len(h.pending) == 0) {
			// about to wait: what is batched goes out first
			h.mu.Unlock()
			if err := h.flushContents(ctx); err != nil {
				return err
			}
			h.mu.Lock()
			for h.err == nil && !ready() && !(*walkDone && len(h.pending) == 0) {
				h.cond.Wait()
			}
		}
		if h.err != nil {
			err := h.err
			h.mu.Unlock()
			return err
		}
		if len(h.pending) == 0 {
			h.mu.Unlock()
			return nil
		}
		f := h.pending[0]
		h.pending = h.pending[1:]
		want := h.read[f.seq]
		delete(h.read, f.seq)
		h.mu.Unlock()
		if !want {
			h.res.Files++
			continue
		}
		if err := h.readFile(ctx, f); err != nil {
			return err
		}
	}
}

// readFile reads one file into chunks; an error reading it goes to the
// control node with the file's content (the snapshot then fails there,
// unless the file vanished).
func (h *host) readFile(ctx context.Context, f pendingFile) error {
	file, err := os.OpenFile(f.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		file, err = os.OpenFile(f.path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		return h.endFile(ctx, f.seq, 0, fmt.Errorf("open: %w", unwrapPath(err)))
	}
	defer file.Close()
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = fmt.Errorf("%s changed into a %v while being read", f.path, fi.Mode().Type())
		}
		return h.endFile(ctx, f.seq, 0, err)
	}
	size, err := h.chunkStream(ctx, f.seq, file)
	var fe fatal
	if errors.As(err, &fe) {
		return err
	}
	if err != nil {
		err = fmt.Errorf("read: %w", unwrapPath(err))
	}
	h.res.Files++
	return h.endFile(ctx, f.seq, size, err)
}
