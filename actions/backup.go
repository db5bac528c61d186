package actions

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/plans"
)

// KindBackup is the host backup step: every backup source of the host,
// each its own snapshot, verified, before any service stops or the
// firewall changes (SlotBackups). It changes nothing on the host, so its
// journal record says which snapshots were taken, and its Revert does
// nothing.
const KindBackup = "backup"

func init() {
	RegisterKind(KindBackup, func(target string) (Action, error) {
		if target != "host" {
			return nil, fmt.Errorf("backup: unknown target %q", target)
		}
		return HostBackup{}, nil
	})
}

// Backups is a run's backing-up on the control node: the repository,
// opened once for the run with a shared lock by the caller, and what
// every snapshot is tagged with.
type Backups struct {
	Store *hostbackup.Store
	Run   string
	Plan  string // the plan's name: tag plan:NAME
	// Pin tags the snapshots holiday-pin (lockdown's: they must outlive
	// keep rules over the break); a backup run's are not pinned.
	Pin     bool
	Until   time.Time // with Pin: pinned until then (window end + repo.PinGrace); zero: pinned without an end
	Version string
	// Progress, when set, hears each host's source about once a second.
	Progress func(host, source string, st hostbackup.Stats)
	// Dumps expands and checks database sources; nil means backup/dbdump
	// through the host's agent (tests may put another in).
	Dumps Dumps

	mu      sync.Mutex
	known   map[string]*hostbackup.Known
	listing *snapshotListing // the run's one listing of the repository's snapshots

	opening chan struct{} // closed when OpenInBackground's open is done
	openErr error
}

// OpenInBackground opens the repository with open while the run goes on:
// the key derivation and the index load overlap the hosts' connections
// and the agents' deploys. Every host waits for it (Ready) before its
// first journal entry, so a repository that cannot be opened changes no
// host.
func (b *Backups) OpenInBackground(open func() (*hostbackup.Store, error)) {
	b.opening = make(chan struct{})
	go func() {
		defer close(b.opening)
		b.Store, b.openErr = open()
	}()
}

// Ready waits for the repository and says why it cannot be used.
func (b *Backups) Ready(ctx context.Context) error {
	if b.opening != nil {
		select {
		case <-b.opening:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.openErr != nil {
			return b.openErr
		}
	}
	if b.Store == nil {
		return errors.New("no repository is open for this run: the backups cannot be taken")
	}
	return nil
}

// stillOpening says whether OpenInBackground's open is under way
// (without waiting): not when it is done, well or not, nor without one.
func (b *Backups) stillOpening() bool {
	if b.opening == nil {
		return false
	}
	select {
	case <-b.opening:
		return false
	default:
		return true
	}
}

// OpenErr waits for OpenInBackground's open and returns its error.
func (b *Backups) OpenErr() error {
	if b.opening == nil {
		return nil
	}
	<-b.opening
	return b.openErr
}

// repository is the run's open repository, nil when it could not be
// opened; it waits for OpenInBackground.
func (b *Backups) repository() *repo.Repository {
	if b == nil || b.OpenErr() != nil || b.Store == nil {
		return nil
	}
	return b.Store.R
}

// Dumps is what the database sources need beyond the data path: which
// dumps a source names (on the host, for all: true). Each dump is
// verified on the host as it is chunked (StreamSpec.Verify, DESIGN §7).
type Dumps interface {
	Specs(ctx context.Context, h *Host, src *plans.BackupSource) ([]hostbackup.StreamSpec, error)
}

func (b *Backups) dumps() Dumps {
	if b.Dumps != nil {
		return b.Dumps
	}
	return databaseDumps{}
}

// knownFor returns the blobs host may be told the repository has: those
// of its own earlier snapshots (read once per run, in the background
// while the host walks its first source). trees shares the trees of the
// host's parents with the parent walks.
func (b *Backups) knownFor(ctx context.Context, host string, trees *hostbackup.Trees) (*hostbackup.Known, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if k := b.known[host]; k != nil {
		return k, nil
	}
	ctx = context.WithoutCancel(ctx)
	k := hostbackup.KnownLater(func() (*hostbackup.Known, error) {
		sns, err := b.snapshots(ctx)
		if err != nil {
			return nil, err
		}
		return hostbackup.HostKnownIn(ctx, b.Store.R, sns, host, trees)
	})
	if b.known == nil {
		b.known = map[string]*hostbackup.Known{}
	}
	b.known[host] = k
	return k, nil
}

// HostBackup is the backup step of one host.
type HostBackup struct {
	Sources []*plans.BackupSource
}

// BackupPrior is the step's Observe record: what it will back up.
type BackupPrior struct {
	Sources []string `json:"sources"`
}

// Taken is one snapshot the step took.
type Taken struct {
	Kind        string   `json:"kind"` // files, disk, postgres, mysql
	Source      string   `json:"source"`
	Snapshot    string   `json:"snapshot"`
	Paths       []string `json:"paths"`
	Consistency string   `json:"consistency,omitempty"` // crash: a disk read without freeze
	Files       int64    `json:"files"`
	Unchanged   int64    `json:"unchanged"`
	Bytes       int64    `json:"bytes"`
	BytesSent   int64    `json:"bytes_sent"`
	WireBytes   int64    `json:"wire_bytes"`
	// Elapsed is the data path's time, from the request to the stored
	// snapshot (without the read-back).
	Elapsed time.Duration `json:"elapsed_ns"`
}

// BackupDone is the step's Apply record.
type BackupDone struct {
	Snapshots []Taken `json:"snapshots"`
}

// DescribeSource says what a plan source backs up, in one phrase.
func DescribeSource(s *plans.BackupSource) string {
	dbs := func(names []string, all bool) string {
		if all {
			return "all databases"
		}
		return strings.Join(names, ",")
	}
	switch {
	case len(s.Files) > 0:
		d := "files " + strings.Join(s.Files, ",")
		if len(s.Exclude) > 0 {
			d += " (exclude " + strings.Join(s.Exclude, ",") + ")"
		}
		return d
	case s.Disk != "":
		d := "disk " + s.Disk
		if s.Freeze {
			d += " (frozen)"
		}
		return d
	case s.Postgres != nil:
		return "postgres " + dbs(s.Postgres.Databases, s.Postgres.All)
	case s.MySQL != nil:
		return "mysql " + dbs(s.MySQL.Databases, s.MySQL.All)
	}
	return "source"
}

func (b HostBackup) Observe(ctx context.Context, h *Host) (Record, error) {
	var p BackupPrior
	for _, s := range b.Sources {
		p.Sources = append(p.Sources, DescribeSource(s))
	}
	return NewRecord(KindBackup, "host", p)
}

// Apply takes every source's snapshot in turn and verifies it; the first
// failure fails the step (the snapshots taken stay, recorded).
func (b HostBackup) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	var done BackupDone
	rec := func(err error) (Record, error) {
		r, rerr := NewRecord(KindBackup, "host", done)
		if err == nil {
			err = rerr
		}
		return r, err
	}
	bk := h.Backups
	if bk == nil {
		return rec(errors.New("no repository is open for this run: the backups cannot be taken"))
	}
	st, ok := h.Agent.(streamer)
	if !ok {
		return rec(errors.New("this host's agent cannot stream a backup"))
	}
	// While the repository is still opening (the key derivation, the
	// lock, the index), the first source starts already, without the
	// chunker polynomial (hostbackup.Request.Polynomial): a files
	// source's walk, whose first verdict carries it before any file is
	// read, an unfrozen disk's read, or, once the host has named the
	// source's dumps, the first dump, whose output the host holds until
	// the polynomial comes (not one checked by a scratch restore: that
	// creates a database, and nothing on a host changes before the
	// repository is open). A repository that could not be opened starts
	// nothing; one that fails while the source runs ends it, and its
	// failure is reported before the source's (or the host's naming the
	// dumps).
	var early *agentctl.Stream
	var first []job
	var firstErr error
	if bk.stillOpening() && len(b.Sources) > 0 && startsEarly(b.Sources[0]) {
		if first, firstErr = b.jobs(ctx, h, b.Sources[0]); firstErr == nil && len(first) > 0 {
			var err error
			first[0].started = time.Now()
			if early, err = st.Start(ctx, hostbackup.OpName, first[0].req); err != nil {
				return rec(err)
			}
			defer func() {
				if early != nil {
					early.Close()
				}
			}()
		}
	}
	if err := bk.Ready(ctx); err != nil {
		return rec(err)
	}
	if firstErr != nil {
		return rec(firstErr)
	}
	// the trees of each files source's parent (fromPrevious) are read
	// once for both walks: the parent's and the earlier snapshots'
	roots, err := bk.parentRoots(ctx, h.Name, b.Sources)
	if err != nil {
		return rec(fmt.Errorf("finding the previous snapshots: %w", err))
	}
	trees := hostbackup.NewTrees(bk.Store.R, roots...)
	known, err := bk.knownFor(ctx, h.Name, trees)
	if err != nil {
		return rec(fmt.Errorf("reading the host's earlier snapshots: %w", err))
	}
	for i, src := range b.Sources {
		jobs := first // the first source's, named above
		if i > 0 || jobs == nil {
			if jobs, err = b.jobs(ctx, h, src); err != nil {
				return rec(err)
			}
		}
		for _, j := range jobs {
			s := early // the first job's, started above
			early = nil
			if j.kind == "files" {
				j.trees = trees
			}
			t, err := bk.take(ctx, h, st, s, known, j)
			if t != nil {
				done.Snapshots = append(done.Snapshots, *t)
			}
			if err != nil {
				return rec(fmt.Errorf("%s: %w", j.what, err))
			}
		}
	}
	return rec(nil)
}

// startsEarly says whether src may start before the repository is open:
// a files source, an unfrozen disk, or dumps without a scratch restore.
func startsEarly(src *plans.BackupSource) bool {
	switch {
	case len(src.Files) > 0:
		return true
	case src.Disk != "":
		// fixed blocks need no polynomial; a freeze lasts the read, not
		// the key derivation
		return !src.Freeze
	case src.Postgres != nil:
		return !src.Postgres.RestoreCheck
	case src.MySQL != nil:
		return !src.MySQL.RestoreCheck
	}
	return false
}

// job is one snapshot to take.
type job struct {
	kind, what string
	req        hostbackup.Request
	paths      []string
	// trees loads a files source's parent's trees, shared with the
	// host's known-blobs walk (nil: its own)
	trees   *hostbackup.Trees
	started time.Time // when its Request went out before the repository was open
}

func (b HostBackup) jobs(ctx context.Context, h *Host, src *plans.BackupSource) ([]job, error) {
	what := DescribeSource(src)
	switch {
	case len(src.Files) > 0:
		paths := slices.Clone(src.Files)
		slices.Sort(paths)
		return []job{{kind: "files", what: what, paths: paths,
			req: hostbackup.Request{Source: hostbackup.SourceFiles, Paths: paths, Exclude: src.Exclude}}}, nil
	case src.Disk != "":
		return []job{{kind: "disk", what: what, paths: []string{src.Disk},
			req: hostbackup.Request{Source: hostbackup.SourceDisk, Device: src.Disk, BlockSize: int(src.BlockSize), Freeze: src.Freeze}}}, nil
	case src.Postgres != nil || src.MySQL != nil:
		kind := "postgres"
		if src.MySQL != nil {
			kind = "mysql"
		}
		specs, err := h.Backups.dumps().Specs(ctx, h, src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		scratch := (src.Postgres != nil && src.Postgres.RestoreCheck) || (src.MySQL != nil && src.MySQL.RestoreCheck)
		var out []job
		for _, s := range specs {
			s := s
			// verified on the host as it is chunked: pg_restore --list
			// and a read of every block, or the scratch restore
			s.Verify, s.Scratch = true, scratch
			out = append(out, job{kind: kind, what: kind + " " + s.Name, paths: []string{"/" + kind + "/" + strings.TrimSuffix(s.Name, path.Ext(s.Name))},
				req: hostbackup.Request{Source: hostbackup.SourceStream, Stream: &s}})
		}
		return out, nil
	}
	return nil, fmt.Errorf("a backup source with nothing to back up")
}

// take runs one source through the agent into a snapshot and reads it
// back.
//
// s is the job's session when it was started before the repository was
// open (its Request without the polynomial); nil starts one now.
func (bk *Backups) take(ctx context.Context, h *Host, st streamer, s *agentctl.Stream, known *hostbackup.Known, j job) (*Taken, error) {
	r := bk.Store.R
	if s != nil {
		defer s.Close() // also when it ends before the backup (Close is idempotent)
	} else {
		j.req.Polynomial = uint64(r.Config().ChunkerPolynomial)
	}
	tags := []string{"holiday", "run:" + bk.Run, "kind:" + j.kind}
	if bk.Plan != "" {
		tags = append(tags, "plan:"+bk.Plan)
	}
	if bk.Pin {
		tags = append(tags, repo.PinTags(bk.Until)...)
	}
	o := hostbackup.Options{Hostname: h.Name, Paths: j.paths, Tags: tags, ProgramVersion: "holiday " + bk.Version, Known: known, Started: j.started}
	if err := bk.fromPrevious(ctx, h.Name, j, &o); err != nil {
		return nil, err
	}
	if j.kind == "disk" {
		o.MoreTags = func(res hostbackup.Result) []string {
			if res.Frozen {
				return nil
			}
			return []string{"consistency:crash"}
		}
	}
	if bk.Progress != nil {
		o.Progress = func(s hostbackup.Stats) { bk.Progress(h.Name, j.what, s) }
	}
	if s == nil {
		var err error
		if s, err = st.Start(ctx, hostbackup.OpName, j.req); err != nil {
			return nil, err
		}
	}
	sn, res, stats, err := hostbackup.Backup(ctx, bk.Store, s, j.req, o)
	s.Close() // a session whose Result was not read cleanly ends here
	if err != nil {
		return nil, err
	}
	t := &Taken{Kind: j.kind, Source: j.what, Snapshot: sn.ID.String(), Paths: j.paths, Files: stats.Files, Unchanged: stats.Unchanged,
		Bytes: stats.Bytes, BytesSent: stats.BytesSent, WireBytes: stats.WireBytes, Elapsed: stats.Elapsed}
	if j.kind == "disk" && !res.Frozen {
		t.Consistency = "crash (" + res.NotFrozen + ")"
	}
	return t, nil
}

// parentRoots are the root trees of the parents of host's files sources
// (fromPrevious), from the run's listing.
func (bk *Backups) parentRoots(ctx context.Context, host string, sources []*plans.BackupSource) ([]repo.ID, error) {
	var roots []repo.ID
	for _, src := range sources {
		if len(src.Files) == 0 {
			continue
		}
		sns, err := bk.snapshots(ctx)
		if err != nil {
			return nil, err
		}
		paths := slices.Clone(src.Files)
		slices.Sort(paths)
		if p := hostbackup.Previous(sns, host, "kind:files", paths); p != nil && p.Tree != nil {
			roots = append(roots, *p.Tree)
		}
	}
	return roots, nil
}

// Verify: the snapshots are in the repository; the host has nothing to
// hold.
func (HostBackup) Verify(ctx context.Context, h *Host, done Record) error { return nil }

// Revert does nothing: the backup changed nothing on the host, and its
// snapshots stay (pinned) for rollback.
func (HostBackup) Revert(ctx context.Context, h *Host, prior, done Record) error { return nil }

func (HostBackup) noteApplied(hr *HostResult, prior, done Record) {
	var d BackupDone
	if done.Decode(&d) == nil {
		hr.Snapshots = d.Snapshots
	}
}
