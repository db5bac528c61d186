package hostbackup

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// Link is the control node's end of a running host-backup operation
// (agentctl's Stream after Start sent the Request).
type Link interface {
	WriteJSON(t agentproto.FrameType, v any) error
	// ReadFrameInto reads the next frame, into buf when it fits.
	ReadFrameInto(buf []byte) (agentproto.FrameType, []byte, error)
	// Result reads the operation's Result frame.
	Result(v any) error
}

// Store is a repository shared by the backups of one run: any number of
// sources save blobs side by side, and each one's Flush (packs, index,
// before its snapshot) waits for the blobs being saved and holds new ones
// back meanwhile. The pack writer lives on the run's context, not on one
// source's, and so does the read-back of every pack stored through the
// Store (repo.VerifyWrites), which each source waits for before its
// snapshot is written.
type Store struct {
	R   *repo.Repository
	ctx context.Context
	mu  sync.RWMutex
}

// NewStore wraps r for the run whose context is ctx, and turns on the
// read-back of every pack r stores from now on.
func NewStore(ctx context.Context, r *repo.Repository) *Store {
	r.VerifyWrites(ctx)
	return &Store{R: r, ctx: ctx}
}

// SaveBlob stores a data blob whose ID the caller has verified.
func (s *Store) SaveBlob(ctx context.Context, data []byte, id repo.ID) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.R.StartWriter(s.ctx)
	_, _, err := s.R.SaveBlob(ctx, repo.DataBlob, data, id)
	return err
}

// SaveTree stores a tree blob.
func (s *Store) SaveTree(ctx context.Context, t *repo.Tree) (repo.ID, error) {
	id, _, err := s.saveTree(ctx, t)
	return id, err
}

// saveTree stores a tree blob and says whether the repository (or a pack
// being written) already held it.
func (s *Store) saveTree(ctx context.Context, t *repo.Tree) (repo.ID, bool, error) {
	b, err := t.Encode()
	if err != nil {
		return repo.ID{}, false, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.R.StartWriter(s.ctx)
	return s.R.SaveBlob(ctx, repo.TreeBlob, b, repo.ID{})
}

// newTrees saves trees into a Store and lists those it did not hold yet
// (the trees this backup wrote) and those it did (a pack being written
// or read back may hold them), for verify.
type newTrees struct {
	s     *Store
	ids   []repo.ID
	known []repo.BlobHandle
}

func (n *newTrees) SaveTree(ctx context.Context, t *repo.Tree) (repo.ID, error) {
	id, known, err := n.s.saveTree(ctx, t)
	switch {
	case err != nil:
	case known:
		n.known = append(n.known, repo.BlobHandle{ID: id, Type: repo.TreeBlob})
	default:
		n.ids = append(n.ids, id)
	}
	return id, err
}

// Exclusive runs fn(ctx) while no blob is being saved through s and none
// starts, with the pack writer running on the run's context: for what
// stores into the same repository by itself during the run (the
// baselines' one-file snapshots, archiver.BackupReader), so that its
// flush never races a backup's blobs and the writer does not end with
// one host's step. ctx (the host step's) bounds fn: an interrupt ends
// its flush's wait for the read-backs, and the other hosts' saves go on.
func (s *Store) Exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.R.StartWriter(s.ctx)
	return fn(ctx)
}

// Flush makes every blob saved so far durable and indexed. No blob is
// saved meanwhile, through the wait for the packs' read-backs before
// the index file too: a save deduplicated against a pack the index does
// not list yet could not be vouched for.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.R.Flush(ctx)
}

// Options shape one source's snapshot.
type Options struct {
	Hostname       string
	Paths          []string // the snapshot's paths
	Tags           []string
	ProgramVersion string
	// Parent is the host's previous snapshot of the same source: files
	// whose size, mtime, ctime and inode match it are not read again.
	Parent *repo.Snapshot
	// Known are the blobs the host may be told the repository has
	// (HostKnown); blobs it sends are added. nil: every blob is asked for.
	Known *Known
	// Trees, when set, loads the parent's trees (shared with
	// HostKnownIn's walk: NewTrees with the parent's root kept); nil
	// loads them from the repository.
	Trees *Trees
	// MoreTags, when set, adds tags from what the host reported (a disk
	// read without freeze is crash-consistent).
	MoreTags func(Result) []string
	// Progress, when set, is called about once a second.
	Progress func(Stats)
	// Expected, when set, is asked at each Progress call for a stream's
	// likely size (the host's previous dump of the same database: a
	// dump's size is known only at its end); 0 while it is not known.
	// Progress then reports it as Total, marked Estimated.
	Expected func() int64
	// Started is when the Request was sent, when that was before Backup
	// (a source started while the repository was opening): the
	// snapshot's time and Elapsed count from it. Zero: from Backup's call.
	Started time.Time
}

// Stats count one source's backup.
type Stats struct {
	Files     int64 `json:"files"`
	Unchanged int64 `json:"unchanged"` // files taken from the parent without reading
	Bytes     int64 `json:"bytes"`     // content of the files read (zero blocks included)
	// Total is the size of every file of the source walked so far (a
	// disk's device size; a dump's size is known only at its end, so
	// while it runs Total is Options.Expected's estimate, or 0) and Done
	// how much of it is behind: read, or unchanged and not read.
	// Progress estimates the time left from them.
	Total int64 `json:"total"`
	Done  int64 `json:"done"`
	// Estimated: Total is an estimate (a dump's, from its previous size).
	Estimated bool  `json:"estimated,omitempty"`
	BlobsSent int64 `json:"blobs_sent"`
	BytesSent int64 `json:"bytes_sent"` // chunk data that crossed the link
	// WireBytes is everything the agent sent for this source: walk,
	// chunk IDs and data (frame payloads).
	WireBytes int64         `json:"wire_bytes"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	// NewBlobs are the chunks the host sent and NewTrees the trees this
	// backup stored that the repository did not hold (for verify to read
	// back); Relied the blobs it stored that the repository held already
	// (trees, the zero block), which a pack stored in the run may hold.
	NewBlobs []repo.ID         `json:"-"`
	NewTrees []repo.ID         `json:"-"`
	Relied   []repo.BlobHandle `json:"-"`
}

// ErrHashMismatch: a chunk's data does not hash to the ID the host gave.
var ErrHashMismatch = errors.New("chunk data does not match its ID")

// control is one source's backup on the control node.
type control struct {
	s         *Store
	link      Link
	req       Request
	o         Options
	b         *builder
	parent    *parentTrees
	files     map[int64]fileRef
	kept      map[int64]bool // files taken from the parent: no content may come
	asked     map[repo.ID]bool
	polSent   bool     // the polynomial went with the first verdict (a Request without one)
	need      []needed // data frames due, in order
	wanted    bool     // a Want was sent: the mode is decided
	unasked   bool     // the host was told to send every chunk unasked
	late      []lateID // chunks sent unasked, whose IDs the workers compute
	zeros     map[uint32]repo.ID
	jobs      chan blobJob
	spare     chan []byte // frame buffers the workers are done with
	stats     Stats
	bytes     atomic.Int64 // Stats.Bytes, for progress
	total     atomic.Int64 // Stats.Total
	keptBytes atomic.Int64 // bytes of the files taken from the parent
	sent      atomic.Int64
	nfiles    atomic.Int64
}

type fileRef struct {
	path string
	node *repo.Node
}

type blobJob struct {
	id   repo.ID
	data []byte
	// slot, for a chunk sent unasked: the worker computes its ID from
	// the data and puts it there
	slot *repo.ID
}

// needed is a data frame due: a chunk asked for by ID, or one sent
// unasked, of n bytes, whose ID goes to slot.
type needed struct {
	id   repo.ID
	n    uint32
	slot *repo.ID
}

// lateID is a chunk sent unasked: its place in a file's content, filled
// from slot once the workers are done.
type lateID struct {
	node *repo.Node
	at   int
	slot *repo.ID
}

// Backup receives one source from the agent on link (its Request req
// already sent) and stores it as a snapshot. Nothing the host sends is
// trusted: paths must form a tree, every chunk is hashed on arrival, and
// a file the host could not read fails the snapshot (a vanished one is
// left out). On error no snapshot is written; what was packed stays
// unreferenced, and the caller must close the link without reusing it.
// The snapshot is written only once the packs holding what it refers to
// were read back sound (verify): a backup whose blobs the storage lost
// or damaged fails, naming a blob and its pack, and stores no snapshot.
func Backup(ctx context.Context, s *Store, link Link, req Request, o Options) (*repo.Snapshot, Result, Stats, error) {
	start := o.Started
	if start.IsZero() {
		start = time.Now()
	}
	c := &control{s: s, link: link, req: req, o: o, b: newBuilder(), files: map[int64]fileRef{}, kept: map[int64]bool{}, asked: map[repo.ID]bool{}, zeros: map[uint32]repo.ID{},
		jobs: make(chan blobJob, 2*runtime.GOMAXPROCS(0))}
	// the frames queued, being stored, and the one being read
	c.spare = make(chan []byte, cap(c.jobs)+runtime.GOMAXPROCS(0)+1)
	if o.Known == nil {
		c.o.Known = NewKnown()
	}
	if o.Parent != nil && req.Source == SourceFiles {
		load := s.R.LoadTree
		if o.Trees != nil {
			load = o.Trees.Load
		}
		c.parent = &parentTrees{load: load, root: o.Parent.Tree, trees: map[string]*repo.Tree{}}
	}
	if req.Source == SourceStream && req.Polynomial == 0 {
		// a dump started before the repository was open: its output is
		// held on the host until this comes
		if err := link.WriteJSON(agentproto.FrameMessage, Down{Polynomial: uint64(s.R.Config().ChunkerPolynomial)}); err != nil {
			return nil, Result{}, Stats{}, halfway(fmt.Errorf("sending the chunker polynomial: %w", err))
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error { return c.worker(gctx) })
	}
	// the reports end before Backup returns: none comes after the result
	stop, stopped := make(chan struct{}), make(chan struct{})
	if o.Progress == nil {
		close(stopped)
	} else {
		go func() {
			defer close(stopped)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					o.Progress(c.progress(start))
				}
			}
		}()
	}
	res, err := c.receive(gctx)
	close(c.jobs)
	if werr := g.Wait(); werr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		err = werr
	}
	if err == nil {
		c.fillLate()
	}
	close(stop)
	<-stopped
	c.stats.Bytes, c.stats.BytesSent, c.stats.Elapsed = c.bytes.Load(), c.sent.Load(), time.Since(start)
	c.stats.Total, c.stats.Done = c.total.Load(), c.bytes.Load()+c.keptBytes.Load()
	if req.Source == SourceStream {
		c.stats.Total = c.stats.Bytes // known now
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = c.o.Known.Wait(ctx)
	}
	if err == nil {
		if kerr := c.o.Known.Err(); kerr != nil {
			err = fmt.Errorf("reading the host's earlier snapshots: %w", kerr)
		}
	}
	if err != nil {
		return nil, res, c.stats, err
	}
	nt := &newTrees{s: s}
	tree, err := c.b.save(ctx, nt)
	c.stats.NewTrees = nt.ids
	c.stats.Relied = append(c.stats.Relied, nt.known...)
	if err == nil {
		err = s.Flush(ctx)
	}
	if err != nil {
		return nil, res, c.stats, fmt.Errorf("store packs, trees and index: %w", err)
	}
	// the read-back's tail is not the data path's time (Elapsed)
	verifying := time.Now()
	if err := verify(ctx, s.R, tree, c.stats); err != nil {
		return nil, res, c.stats, fmt.Errorf("the repository did not read back what this backup stored, nothing of it is stored as a snapshot: %w", err)
	}
	waited := time.Since(verifying)
	tags := slices.Clone(o.Tags)
	if o.MoreTags != nil {
		tags = append(tags, o.MoreTags(res)...)
	}
	sn := &repo.Snapshot{Time: start, Tree: &tree, Paths: o.Paths, Hostname: o.Hostname, Tags: tags,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ProgramVersion: o.ProgramVersion}
	if o.Parent != nil {
		sn.Parent = &o.Parent.ID
	}
	if _, err := s.R.SaveSnapshot(ctx, sn); err != nil {
		return nil, res, c.stats, fmt.Errorf("store snapshot: %w", err)
	}
	c.stats.Elapsed = time.Since(start) - waited
	return sn, res, c.stats, nil
}

// progress is the stats so far, for Options.Progress.
func (c *control) progress(start time.Time) Stats {
	b := c.bytes.Load()
	st := Stats{Files: c.nfiles.Load(), Bytes: b, BytesSent: c.sent.Load(), Elapsed: time.Since(start),
		Total: c.total.Load(), Done: b + c.keptBytes.Load()}
	if c.req.Source == SourceStream && c.o.Expected != nil {
		if e := c.o.Expected(); e > 0 {
			st.Total, st.Estimated = e, true
		}
	}
	return st
}

// worker verifies and stores the chunks that arrive; a chunk sent
// unasked gets its ID here.
func (c *control) worker(ctx context.Context) error {
	for j := range c.jobs {
		if j.slot != nil {
			j.id = sha256.Sum256(j.data)
			*j.slot = j.id
		} else if repo.ID(sha256.Sum256(j.data)) != j.id {
			return fmt.Errorf("%w: %s (the host sent other bytes than it announced)", ErrHashMismatch, j.id.Str())
		}
		if err := c.s.SaveBlob(ctx, j.data, j.id); err != nil {
			return fmt.Errorf("store chunk: %w", err)
		}
		c.recycle(j.data) // SaveBlob keeps none of it
	}
	return nil
}

// buffer returns a frame buffer the workers are done with, or nil (the
// frame then gets a new one).
func (c *control) buffer() []byte {
	select {
	case b := <-c.spare:
		return b
	default:
		return nil
	}
}

// recycle keeps b for a later frame if it could hold a chunk (JSON
// messages are small).
func (c *control) recycle(b []byte) {
	if cap(b) < MinBlockSize {
		return
	}
	select {
	case c.spare <- b:
	default:
	}
}

func (c *control) submit(ctx context.Context, j blobJob) error {
	select {
	case c.jobs <- j:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// receive reads the agent's frames up to its Result.
func (c *control) receive(ctx context.Context) (Result, error) {
	var res Result
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		t, p, err := c.link.ReadFrameInto(c.buffer())
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				// the session's end says why: the agent killed, or the
				// connection gone without an exit status
				if rerr := c.link.Result(nil); rerr != nil {
					err = rerr
				}
			}
			return res, halfway(err)
		}
		c.stats.WireBytes += int64(len(p)) + 5
		switch t {
		case agentproto.FrameData:
			if len(c.need) == 0 {
				return res, errors.New("host-backup: the host sent data nobody asked for")
			}
			n := c.need[0]
			c.need = c.need[1:]
			if n.slot != nil && int64(len(p)) != int64(n.n) {
				return res, fmt.Errorf("host-backup: the host announced a chunk of %d bytes and sent %d", n.n, len(p))
			}
			c.sent.Add(int64(len(p)))
			c.stats.BlobsSent++
			if err := c.submit(ctx, blobJob{id: n.id, data: p, slot: n.slot}); err != nil {
				return res, err
			}
		case agentproto.FrameMessage:
			var up Up
			err := json.Unmarshal(p, &up)
			c.recycle(p) // up holds none of it
			if err != nil {
				return res, fmt.Errorf("host-backup: bad message from the host: %w", err)
			}
			if len(up.Nodes) > 0 {
				if err := c.nodes(ctx, up.Nodes); err != nil {
					return res, err
				}
			}
			if len(up.Contents) > 0 {
				if err := c.contents(ctx, up.Contents, up.Unasked); err != nil {
					return res, err
				}
			}
			if up.Done {
				if len(c.need) > 0 {
					return res, fmt.Errorf("host-backup: the host ended with %d chunks still owed", len(c.need))
				}
				if err := c.link.Result(&res); err != nil {
					return res, err
				}
				return res, c.complete()
			}
		case agentproto.FrameResult:
			// the host failed: its error, and the session is not reused
			var r agentproto.Result
			if err := json.Unmarshal(p, &r); err == nil && r.Error != nil {
				return res, r.Error
			}
			return res, errors.New("host-backup: the host ended the operation early")
		default:
			return res, fmt.Errorf("host-backup: unexpected %s frame", t)
		}
	}
}

// halfway words a link that broke during the backup: whichever side
// noticed first, the operator learns the same.
func halfway(err error) error {
	return fmt.Errorf("the backup stopped halfway, nothing of it is stored as a snapshot: %w", err)
}

// complete checks that every file got its content.
func (c *control) complete() error {
	for _, f := range c.files {
		if f.node.Content == nil {
			return fmt.Errorf("host-backup: the host never sent the content of %s", f.path)
		}
	}
	return nil
}

// nodes places a batch of the walk and, for a file tree, answers which
// files to read.
func (c *control) nodes(ctx context.Context, es []Entry) error {
	var v Verdict
	for i := range es {
		e := &es[i]
		n, err := e.Node.Node()
		if err != nil {
			return fmt.Errorf("host-backup: the host's walk: entry %d: %w", e.Seq, err)
		}
		n.Content, n.Subtree = nil, nil
		if c.req.Source != SourceFiles && (len(es) != 1 || e.Seq != 0 || n.Type != repo.NodeFile || len(c.files) > 0) {
			return errors.New("host-backup: a disk or a dump is one file")
		}
		if err := c.b.add(e.Path, n); err != nil {
			return fmt.Errorf("host-backup: the host's walk: %w", err)
		}
		v.Upto = e.Seq
		if n.Type != repo.NodeFile {
			continue
		}
		if _, dup := c.files[e.Seq]; dup {
			return fmt.Errorf("host-backup: entry %d sent twice", e.Seq)
		}
		c.files[e.Seq] = fileRef{e.Path, n}
		c.total.Add(int64(n.Size))
		if c.req.Source != SourceFiles {
			continue
		}
		if pn := c.parent.find(ctx, e.Path); unchanged(pn, n) && c.inIndex(pn.Content) {
			n.Content = pn.Content
			if n.Content == nil {
				n.Content = []repo.ID{}
			}
			c.stats.Files++
			c.stats.Unchanged++
			c.nfiles.Add(1)
			c.keptBytes.Add(int64(n.Size))
			c.kept[e.Seq] = true
			continue
		}
		v.Read = append(v.Read, e.Seq)
	}
	if c.req.Source != SourceFiles {
		return nil
	}
	d := Down{Verdict: &v}
	if c.req.Polynomial == 0 && !c.polSent {
		d.Polynomial, c.polSent = uint64(c.s.R.Config().ChunkerPolynomial), true
	}
	if err := c.link.WriteJSON(agentproto.FrameMessage, d); err != nil {
		return halfway(fmt.Errorf("answering the host: %w", err))
	}
	return nil
}

func (c *control) inIndex(ids []repo.ID) bool {
	for _, id := range ids {
		if !c.s.R.Index().Has(repo.BlobHandle{ID: id, Type: repo.DataBlob}) {
			return false
		}
	}
	return true
}

// contents takes a batch of chunk lists and answers which chunks to send:
// those neither this host's own (Known) and stored, nor already asked for.
// The first answer tells the host of a disk or a dump to send every chunk
// unasked when the host is known for nothing: it would be asked for each
// one. An unasked batch gets no answer: its data follows.
func (c *control) contents(ctx context.Context, cs []Content, unasked bool) error {
	if unasked && !c.unasked {
		return errors.New("host-backup: the host sent chunks unasked before it was told to")
	}
	// Known's Has, Len and Add wait for its read without a context
	if err := c.o.Known.Wait(ctx); err != nil {
		return err
	}
	var d Down
	if !c.wanted {
		// before this batch's chunks count as the host's own
		c.wanted = true
		c.unasked = c.req.Source != SourceFiles && c.o.Known.Len() == 0
		d.Unasked = c.unasked
	}
	var w Want
	idx := int32(0)
	for _, ct := range cs {
		f, ok := c.files[ct.Seq]
		if !ok || c.kept[ct.Seq] {
			return fmt.Errorf("host-backup: content for entry %d that was not asked for", ct.Seq)
		}
		for _, ch := range ct.Chunks {
			id := ch.ID
			if ch.Zero {
				var err error
				if id, err = c.zero(ctx, ch.Len); err != nil {
					return err
				}
			} else if ch.Len == 0 {
				return errors.New("host-backup: an empty chunk")
			} else if unasked {
				if !id.IsNull() {
					return errors.New("host-backup: an unasked chunk with an ID")
				}
				slot := new(repo.ID)
				c.need = append(c.need, needed{n: ch.Len, slot: slot})
				c.late = append(c.late, lateID{node: f.node, at: len(f.node.Content), slot: slot})
			} else if !c.asked[id] && !(c.o.Known.Has(id) && c.s.R.Index().Has(repo.BlobHandle{ID: id, Type: repo.DataBlob})) {
				c.asked[id] = true
				w.Need = append(w.Need, idx)
				c.need = append(c.need, needed{id: id})
				c.stats.NewBlobs = append(c.stats.NewBlobs, id)
				c.o.Known.Add(id) // sent by this host from now on
			}
			c.bytes.Add(int64(ch.Len))
			f.node.Content = append(f.node.Content, id)
			idx++
		}
		if ct.More {
			continue
		}
		if ct.Err != "" {
			if ct.Vanished && c.req.Source == SourceFiles {
				c.b.remove(f.path)
				delete(c.files, ct.Seq)
				continue
			}
			return fmt.Errorf("%s: %s (no snapshot is stored without it: repair it, or exclude it in the plan)", f.path, ct.Err)
		}
		if f.node.Content == nil {
			f.node.Content = []repo.ID{}
		}
		f.node.Size = ct.Size
		c.stats.Files++
		c.nfiles.Add(1)
	}
	if unasked {
		return nil
	}
	d.Want = &w
	if err := c.link.WriteJSON(agentproto.FrameMessage, d); err != nil {
		return halfway(fmt.Errorf("answering the host: %w", err))
	}
	return nil
}

// fillLate puts the IDs the workers computed for the chunks sent unasked
// into their files' content, and counts them as sent by this host.
func (c *control) fillLate() {
	for _, l := range c.late {
		id := *l.slot
		l.node.Content[l.at] = id
		if !c.asked[id] {
			c.asked[id] = true
			c.stats.NewBlobs = append(c.stats.NewBlobs, id)
			c.o.Known.Add(id)
		}
	}
	c.late = nil
}

// zero returns the ID of n zero bytes, storing that blob once.
func (c *control) zero(ctx context.Context, n uint32) (repo.ID, error) {
	if id, ok := c.zeros[n]; ok {
		return id, nil
	}
	if n == 0 || n > maxBlockSize { // a disk's block at most; a chunk is smaller
		return repo.ID{}, fmt.Errorf("host-backup: a zero chunk of %d bytes (at most %d)", n, maxBlockSize)
	}
	data := make([]byte, n)
	id := repo.HashData(data)
	if err := c.s.SaveBlob(ctx, data, id); err != nil {
		return id, fmt.Errorf("store the zero block: %w", err)
	}
	c.zeros[n] = id
	c.stats.Relied = append(c.stats.Relied, repo.BlobHandle{ID: id, Type: repo.DataBlob})
	return id, nil
}

// verify checks what a backup wrote before its snapshot is written: that
// the index holds the root tree, and that the trees it stored and the
// data blobs the host sent (st.NewTrees, st.NewBlobs) were read back from
// the storage sound, as were the blobs it found already stored in a pack
// of the run (st.Relied: a copy another host stored moments before may
// have failed its read-back since). The Store turned on the repository's
// read-back (repo.VerifyWrites), which reads each pack back as soon as
// it is stored, in the background, and checks its header and every blob
// in it (decrypted, hashed, a tree parsed); verify waits for the packs
// holding this backup's blobs and nothing else, so one host's verdict
// neither waits for nor takes the blame of another's blobs in the same
// packs. A sent blob that no pack read back holds (one stored before, by
// another host's earlier run) is read and checked now; a relied-on one
// was checked before an index file listed it. A tree or blob the host's
// own earlier snapshots held was checked when they were taken and is not
// in st (an unchanged run writes no tree). An error names the blob and
// its pack.
func verify(ctx context.Context, r *repo.Repository, root repo.ID, st Stats) error {
	bhs := make([]repo.BlobHandle, 0, len(st.NewTrees)+len(st.NewBlobs))
	for _, id := range st.NewTrees {
		bhs = append(bhs, repo.BlobHandle{ID: id, Type: repo.TreeBlob})
	}
	for _, id := range st.NewBlobs {
		bhs = append(bhs, repo.BlobHandle{ID: id, Type: repo.DataBlob})
	}
	if err := r.WaitVerified(ctx, bhs); err != nil {
		return err
	}
	if err := r.WaitReadBack(ctx, st.Relied); err != nil {
		return err
	}
	// (a root that failed its read-back was named above)
	if !r.Index().Has(repo.BlobHandle{ID: root, Type: repo.TreeBlob}) {
		return errors.New("the snapshot's root tree is not in the index")
	}
	return nil
}
