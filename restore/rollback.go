package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
)

// KindRollbackFiles is the journal's kind for a files rollback step.
const KindRollbackFiles = "rollback-files"

// Tags on snapshots (DESIGN §7) that rollback reads and writes.
const (
	TagHoliday    = "holiday"
	tagRun        = "run:"
	tagRollbackOf = "rollback-of:"
)

// RollbackOptions say what to roll back onto which host.
type RollbackOptions struct {
	Host *plans.Host
	Repo *repo.Repository
	// Snapshot (an ID or unique prefix), else the newest files snapshot
	// of the host in Run, else the newest of its lockdown snapshots.
	Snapshot, Run string
	Paths         []string // files: restore only these (default: the snapshot's paths)
	// Device is the block device a disk image is written to (default:
	// the device the snapshot was taken of). Without Snapshot, it picks
	// the host's newest disk snapshot of that device.
	Device string
	DryRun bool // list what would be written and removed; change nothing
	// Databases: load the dump Into a new database, or Replace the old
	// one (after Confirm says yes, unless Yes; without either, refused:
	// the rule holds for every caller, not only the command line).
	Into         string
	Replace, Yes bool
	Confirm      func(question string) (bool, error)
	// Database picks, without Snapshot, the host's newest dump of this
	// database (in Run, if given).
	Database string
	Version  string
	// Progress, if set, hears how far the writing is, about once a
	// second: what is written ("files /etc,/var/www", "disk /dev/vdb",
	// "postgres database shop") and the figures. RollbackResult.Written
	// holds the final ones.
	Progress func(what string, p Progress)
	// SnapshotProgress, if set, hears how far the pre-rollback snapshot
	// is (the host-backup data path's reports, about once a second).
	SnapshotProgress func(what string, st hostbackup.Stats)
}

// report is o.Progress for what, nil without it.
func (o RollbackOptions) report(what string) func(Progress) {
	if o.Progress == nil {
		return nil
	}
	return func(p Progress) { o.Progress(what, p) }
}

// RollbackResult is what a rollback did (or, dry, would do).
type RollbackResult struct {
	Host     string      `json:"host"`
	Snapshot string      `json:"snapshot"`
	Roots    []string    `json:"roots"`
	DryRun   bool        `json:"dry_run,omitempty"`
	Changes  []Change    `json:"changes"`
	Planned  Summary     `json:"planned"`
	Applied  *ApplyStats `json:"applied,omitempty"`
	// Disk rollbacks: the device, the blocks that differ (to write) and
	// what was written.
	Device      string     `json:"device,omitempty"`
	Blocks      int        `json:"blocks_differing,omitempty"`
	BlocksTotal int        `json:"blocks_total,omitempty"`
	BlockSize   int        `json:"block_size,omitempty"`
	DiskApplied *DiskStats `json:"disk_applied,omitempty"`
	// Written are the final figures of the writing (files, disk or
	// database): bytes sent of the total, and how long it took.
	Written *Progress `json:"written,omitempty"`
	// Database rollbacks: which dump, and where it was loaded.
	Database    string             `json:"database,omitempty"`
	Into        string             `json:"into,omitempty"`
	Replace     bool               `json:"replace,omitempty"`
	PreSnapshot string             `json:"pre_rollback_snapshot,omitempty"`
	Run         *actions.RunResult `json:"run,omitempty"`
}

// rollbackTimeout bounds a rollback's pre-rollback snapshot and write
// on one host: a day, so in practice only Ctrl-C.
const rollbackTimeout = 24 * time.Hour

// Rollback writes a files snapshot back onto its host exactly: files
// written with their owners, modes, times and xattrs; what the host
// gained under a restored directory since is removed. Before anything
// is overwritten it snapshots what it will replace (tagged rollback-of),
// so `holiday rollback --snapshot <that one>` undoes it. The run is
// journaled and holds the host's run lock like every run
// (actions.Rollback). ao.RunID is the rollback's run.
//
// ao.HostTimeout, unless set, is rollbackTimeout, not lockdown's 30
// minutes: a disk or a database cut off halfway by a fixed limit is worse
// than a long write the operator can interrupt; ao.RevertTimeout, unless
// set, is as long (a revert writes the pre-rollback snapshot back).
func Rollback(ctx context.Context, ao actions.Options, conn *actions.Connector, o RollbackOptions) (RollbackResult, error) {
	if ao.HostTimeout <= 0 {
		ao.HostTimeout = rollbackTimeout
	}
	if ao.RevertTimeout <= 0 {
		ao.RevertTimeout = ao.HostTimeout
	}
	res := RollbackResult{Host: o.Host.Name, DryRun: o.DryRun}
	pick := Want{Kinds: []string{"files"}}
	switch {
	case o.Device != "":
		pick = Want{Kinds: []string{"disk"}, Path: o.Device}
	case o.Database != "":
		pick = Want{Kinds: []string{"postgres", "mysql"}, Database: o.Database}
		if engine, db, ok := strings.Cut(o.Database, "/"); ok {
			pick = Want{Kinds: []string{engine}, Database: db}
		}
	}
	var sn *repo.Snapshot
	var err error
	if len(pick.Kinds) > 1 && o.Snapshot == "" {
		sn, err = findOne(ctx, o.Repo, o.Host.Name, o.Run, pick)
	} else {
		sn, err = FindRollbackSnapshot(ctx, o.Repo, o.Host.Name, o.Snapshot, o.Run, pick)
	}
	if err != nil {
		return res, err
	}
	res.Snapshot = sn.ID.String()
	if err := o.Repo.LoadIndex(ctx); err != nil {
		return res, err
	}
	if ao.RunID == "" {
		ao.RunID = actions.NewRunID()
	}
	switch k := kindOf(sn); k {
	case "disk":
		return rollbackDisk(ctx, ao, conn, o, sn, res)
	case "postgres", "mysql":
		return rollbackDB(ctx, ao, conn, o, sn, res)
	case "", "files":
		if o.Device != "" {
			return res, fmt.Errorf("--device: snapshot %s is a files snapshot, not a disk image", sn.ID.Str())
		}
	default:
		return res, fmt.Errorf("snapshot %s is a %s snapshot; rollback writes back files, disk, postgres and mysql snapshots", sn.ID.Str(), k)
	}
	roots, err := Roots(o.Paths, sn.Paths)
	if err != nil {
		return res, err
	}
	res.Roots = roots
	want, err := SnapshotItems(ctx, o.Repo, sn, roots)
	if err != nil {
		return res, err
	}
	a := &filesAction{r: o.Repo, sn: sn, roots: roots, want: want, report: o.report("files " + strings.Join(roots, ","))}
	if o.DryRun {
		h, closeHost, err := conn.Connect(ctx, o.Host)
		if err != nil {
			return res, err
		}
		defer closeHost()
		have, err := scan(ctx, h, roots, o.Repo)
		if err != nil {
			return res, err
		}
		res.Changes = Diff(want, have)
		res.Planned = Summarize(res.Changes)
		return res, nil
	}
	a.pre = o.backupSnapshotter(ctx)
	a.tags = rollbackTags("files", sn, ao.RunID)
	err = runStep(ctx, ao, conn, o, KindRollbackFiles, a.target(), a, &res, func() (bool, *repo.Snapshot) { return a.applied != nil, a.preSnap })
	if err != nil {
		return res, err
	}
	res.Changes, res.Planned, res.Applied, res.Written = a.changes, Summarize(a.changes), a.applied, a.written
	return res, nil
}

// backupSnapshotter is the default taker of pre-rollback snapshots.
func (o RollbackOptions) backupSnapshotter(ctx context.Context) preSnapshotter {
	return preSnapshotter{Store: hostbackup.NewStore(ctx, o.Repo), Version: o.Version, Progress: o.SnapshotProgress}
}

// rollbackTags are the tags of the pre-rollback snapshot taken before
// sn is written back by run: `holiday rollback --snapshot` of it undoes
// the rollback.
func rollbackTags(kind string, sn *repo.Snapshot, run string) []string {
	return []string{TagHoliday, "kind:" + kind, tagRollbackOf + sn.ID.String(), tagRun + run}
}

// runStep runs a as the one step of a journaled rollback run on o.Host
// (actions.Rollback: the host's run lock, the journal) and puts the run
// in res. outcome, asked once the run is over, says whether the step got
// to write anything and which pre-rollback snapshot it took (nil: none).
func runStep(ctx context.Context, ao actions.Options, conn *actions.Connector, o RollbackOptions, kind, target string, a actions.Action,
	res *RollbackResult, outcome func() (wrote bool, pre *repo.Snapshot)) error {
	job := actions.Job{
		Name:    o.Host.Name,
		Steps:   []actions.Step{{Slot: actions.SlotBackups, Kind: kind, Target: target, Action: a}},
		Connect: func(ctx context.Context) (*actions.Host, func(), error) { return conn.Connect(ctx, o.Host) },
	}
	run, err := actions.Rollback(ctx, ao, []actions.Job{job})
	if err != nil {
		return err
	}
	res.Run = &run
	wrote, pre := outcome()
	if err := notStarted(run, wrote); err != nil {
		return err
	}
	if pre != nil {
		res.PreSnapshot = pre.ID.String()
	}
	return nil
}

// findPreSnapshot finds the pre-rollback snapshot a step's intent names;
// nil when it names none (the step had nothing to overwrite).
func findPreSnapshot(ctx context.Context, r *repo.Repository, id string) (*repo.Snapshot, error) {
	if id == "" {
		return nil, nil
	}
	pre, err := r.FindSnapshot(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("pre-rollback snapshot %s: %w", id, err)
	}
	return pre, nil
}

// findOne is FindRollbackSnapshot for a database name both engines may
// hold: a name found under both is ambiguous.
func findOne(ctx context.Context, r *repo.Repository, host, run string, want Want) (*repo.Snapshot, error) {
	var found []*repo.Snapshot
	for _, k := range want.Kinds {
		w := want
		w.Kinds = []string{k}
		if sn, err := FindRollbackSnapshot(ctx, r, host, "", run, w); err == nil {
			found = append(found, sn)
		}
	}
	switch len(found) {
	case 0:
		return FindRollbackSnapshot(ctx, r, host, "", run, want) // its error
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("--database %s: both %s have a dump of it; say --database %s/%s or --database %s/%s",
		want.Database, strings.Join(want.Kinds, " and "), want.Kinds[0], want.Database, want.Kinds[1], want.Database)
}

// notStarted is the error of a rollback that wrote nothing because it
// never got to (the host busy or unreachable, the device in use, the
// pre-rollback snapshot failed): one line for the operator, with the
// exit code of a failed host.
func notStarted(run actions.RunResult, applied bool) error {
	if applied || len(run.Hosts) != 1 || run.Hosts[0].Status == actions.HostDone {
		return nil
	}
	h := run.Hosts[0]
	why := h.Error
	for _, s := range h.Steps {
		if s.Error != "" {
			why = strings.TrimPrefix(s.Error, "observe: ")
		}
	}
	return exitcode.With(exitcode.HostsFailed, fmt.Errorf("%s: nothing was written: %s", h.Host, why))
}

// Want says which of a host's snapshots a rollback looks for when none
// is named: of one of Kinds, of exactly Path (a disk's device) if given,
// of Database (a dump's) if given.
type Want struct {
	Kinds    []string
	Path     string
	Database string
}

func (w Want) match(sn *repo.Snapshot) bool {
	if !slices.ContainsFunc(w.Kinds, func(k string) bool { return slices.Contains(sn.Tags, "kind:"+k) }) {
		return false
	}
	if w.Path != "" && !slices.Equal(sn.Paths, []string{w.Path}) {
		return false
	}
	if w.Database != "" {
		if len(sn.Paths) != 1 {
			return false
		}
		db, err := url.PathUnescape(path.Base(sn.Paths[0]))
		return err == nil && db == w.Database
	}
	return true
}

func (w Want) String() string {
	s := strings.Join(w.Kinds, "/")
	switch {
	case w.Path != "":
		s += " " + w.Path
	case w.Database != "":
		s += " " + w.Database
	}
	return s
}

// FindRollbackSnapshot picks the snapshot to roll host back to: the one
// named (which must be host's, of any kind), else the newest of host's
// snapshots that want matches in run, else host's newest lockdown one
// (one that is not itself a pre-rollback snapshot).
func FindRollbackSnapshot(ctx context.Context, r *repo.Repository, host, id, run string, want Want) (*repo.Snapshot, error) {
	if id != "" {
		sn, err := r.FindSnapshot(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", id, err)
		}
		if sn.Hostname != host {
			return nil, fmt.Errorf("snapshot %s is of host %q, not %s: refusing to write another host's files onto it", sn.ID.Str(), sn.Hostname, host)
		}
		return sn, nil
	}
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	for i := len(sns) - 1; i >= 0; i-- { // newest last
		sn := sns[i]
		if sn.Hostname != host || !want.match(sn) {
			continue
		}
		if run != "" {
			if slices.Contains(sn.Tags, tagRun+run) {
				return sn, nil
			}
			continue
		}
		if slices.Contains(sn.Tags, TagHoliday) && !rollbackOf(sn) {
			return sn, nil
		}
	}
	what := want.String()
	if run != "" {
		return nil, fmt.Errorf("the repository holds no %s snapshot of %s from run %s", what, host, run)
	}
	return nil, fmt.Errorf("the repository holds no lockdown %s snapshot of %s: name one with --snapshot", what, host)
}

func kindOf(sn *repo.Snapshot) string {
	for _, t := range sn.Tags {
		if k, ok := strings.CutPrefix(t, "kind:"); ok {
			return k
		}
	}
	return ""
}

func rollbackOf(sn *repo.Snapshot) bool {
	for _, t := range sn.Tags {
		if strings.HasPrefix(t, tagRollbackOf) {
			return true
		}
	}
	return false
}

// SnapshotItems are the snapshot's nodes under roots, each root first,
// then what is below it in the tree's order. A root the snapshot does
// not hold is an error.
func SnapshotItems(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, roots []string) ([]Item, error) {
	var out []Item
	for _, root := range roots {
		n, err := restorer.FindNode(ctx, r, *sn.Tree, root)
		if err != nil {
			return nil, fmt.Errorf("--path %s: %w (snapshot %s holds %s)", root, err, sn.ID.Str(), strings.Join(sn.Paths, " "))
		}
		out = append(out, Item{Path: root, Node: n})
		if n.Type != repo.NodeDir || n.Subtree == nil {
			continue
		}
		err = restorer.Walk(ctx, r, *n.Subtree, func(p string, n *repo.Node) error {
			out = append(out, Item{Path: path.Join(root, p), Node: n})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// starter runs a streaming agent operation (*agentctl.Agent).
type starter interface {
	Start(ctx context.Context, op string, args any) (*agentctl.Stream, error)
}

func starterOf(h *actions.Host) (starter, error) {
	st, ok := h.Agent.(starter)
	if !ok {
		return nil, fmt.Errorf("%s: its agent cannot stream (rollback needs a deployed agent)", h.Name)
	}
	return st, nil
}

// scan lists the host's nodes under roots, files with their chunk IDs.
func scan(ctx context.Context, h *actions.Host, roots []string, r *repo.Repository) ([]Item, error) {
	st, err := starterOf(h)
	if err != nil {
		return nil, err
	}
	s, err := st.Start(ctx, OpRollbackScan, scanArgs{Roots: roots, Pol: r.Config().ChunkerPolynomial})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []Item
	for {
		var it Item
		if err := recv(h, s, &it); err != nil {
			return nil, err
		}
		if it.Path == "" {
			break
		}
		if it.Node == nil || !underAny(it.Path, roots) {
			return nil, fmt.Errorf("%s: the host listed %q, outside %v", h.Name, it.Path, roots)
		}
		out = append(out, it)
	}
	if err := s.Result(nil); err != nil {
		return nil, err
	}
	return out, nil
}

// recv reads an operation's next Message into v. A Result in its place
// ends the operation early: its error is returned (the session is not
// reused, its Result having been read here).
func recv(h *actions.Host, s *agentctl.Stream, v any) error {
	t, p, err := s.ReadFrame()
	if err != nil {
		return fmt.Errorf("%s: the agent's stream ended: %w", h.Name, err)
	}
	switch t {
	case agentproto.FrameMessage:
		if err := json.Unmarshal(p, v); err != nil {
			return fmt.Errorf("%s: agent protocol: %w", h.Name, err)
		}
		return nil
	case agentproto.FrameResult:
		var r agentproto.Result
		if err := json.Unmarshal(p, &r); err == nil && r.Error != nil {
			return fmt.Errorf("%s: %w", h.Name, r.Error)
		}
		return fmt.Errorf("%s: the agent ended the operation early", h.Name)
	}
	return fmt.Errorf("%s: agent protocol: unexpected %s frame", h.Name, t)
}

// filesAction is one files rollback as a journaled step.
//
//   - Observe scans the host, computes the changes and, if there are any,
//     takes the pre-rollback snapshot of the roots (its ID is in the
//     journal's intent before anything is written);
//   - Apply removes what the snapshot does not hold and streams the
//     changed nodes to the host;
//   - Verify scans again: nothing may differ;
//   - Revert writes the pre-rollback snapshot back.
type filesAction struct {
	r      *repo.Repository
	sn     *repo.Snapshot
	roots  []string
	want   []Item
	pre    preSnapshotter
	tags   []string
	report func(Progress) // how far the writing is (nil: nobody asks)

	changes []Change
	applied *ApplyStats
	written *Progress
	preSnap *repo.Snapshot
}

// filesPrior is the journal's intent record.
type filesPrior struct {
	Snapshot    string   `json:"snapshot"`
	Roots       []string `json:"roots"`
	PreSnapshot string   `json:"pre_rollback_snapshot,omitempty"`
	Changes     []Change `json:"changes"`
}

func (a *filesAction) Observe(ctx context.Context, h *actions.Host) (actions.Record, error) {
	have, err := scan(ctx, h, a.roots, a.r)
	if err != nil {
		return actions.Record{}, err
	}
	a.changes = Diff(a.want, have)
	p := filesPrior{Snapshot: a.sn.ID.String(), Roots: a.roots, Changes: a.changes}
	var held []string // the roots the host holds: a missing one has nothing to keep
	for _, it := range have {
		if slices.Contains(a.roots, it.Path) {
			held = append(held, it.Path)
		}
	}
	if len(a.changes) > 0 && len(held) > 0 {
		pre, err := a.pre.SnapshotFiles(ctx, h, held, a.tags)
		if err != nil {
			return actions.Record{}, fmt.Errorf("the pre-rollback snapshot failed, so nothing was overwritten: %w", err)
		}
		a.preSnap = pre
		p.PreSnapshot = pre.ID.String()
	}
	return actions.NewRecord(KindRollbackFiles, a.target(), p)
}

func (a *filesAction) target() string { return a.sn.ID.Str() + ":" + strings.Join(a.roots, ",") }

func (a *filesAction) Apply(ctx context.Context, h *actions.Host, prior actions.Record) (actions.Record, error) {
	m := startMeter("files", contentBytes(a.want, a.changes), a.report)
	st, err := applyItems(ctx, h, a.r, a.roots, a.want, a.changes, m)
	a.applied, a.written = &st, m.end()
	rec, rerr := actions.NewRecord(KindRollbackFiles, a.target(), st)
	if err != nil {
		return rec, err
	}
	if rerr != nil {
		return rec, rerr
	}
	return rec, a.Verify(ctx, h, rec)
}

func (a *filesAction) Verify(ctx context.Context, h *actions.Host, done actions.Record) error {
	have, err := scan(ctx, h, a.roots, a.r)
	if err != nil {
		return err
	}
	if left := Diff(a.want, have); len(left) > 0 {
		return fmt.Errorf("%d paths still differ from the snapshot after writing (first: %s %s: %s)", len(left), left[0].Op, left[0].Path, left[0].Why)
	}
	return nil
}

// Revert writes the pre-rollback snapshot back (no new snapshot: what it
// overwrites is what this rollback wrote). It holds the roots the host
// held; a root the host did not hold (none, when there is no
// pre-rollback snapshot) is what the rollback created, and is removed.
func (a *filesAction) Revert(ctx context.Context, h *actions.Host, prior, done actions.Record) error {
	var p filesPrior
	if err := prior.Decode(&p); err != nil {
		return err
	}
	if len(p.Changes) == 0 {
		return nil // nothing was to change: nothing was written
	}
	pre, err := findPreSnapshot(ctx, a.r, p.PreSnapshot)
	if err != nil {
		return err
	}
	var want []Item
	if pre != nil {
		want, err = SnapshotItems(ctx, a.r, pre, heldRoots(p.Roots, pre))
		if err != nil {
			return err
		}
	}
	have, err := scan(ctx, h, p.Roots, a.r)
	if err != nil {
		return err
	}
	_, err = applyItems(ctx, h, a.r, p.Roots, want, Diff(want, have), nil)
	return err
}

// heldRoots are the roots a pre-rollback snapshot holds: those the host
// held when it was taken.
func heldRoots(roots []string, pre *repo.Snapshot) []string {
	var held []string
	for _, r := range roots {
		if slices.Contains(pre.Paths, r) {
			held = append(held, r)
		}
	}
	return held
}

// sendsContent says whether applyItems sends a node's content: a file
// created or written, not one whose metadata or hard link alone changes.
func sendsContent(it Item, c Change, changed bool) bool {
	return changed && it.Node.Type == repo.NodeFile && c.Op != OpMeta && c.Op != OpLink
}

// contentBytes is what applyItems will send of the changes' content.
func contentBytes(want []Item, changes []Change) int64 {
	byPath := map[string]Change{}
	for _, c := range changes {
		if c.Op != OpRemove {
			byPath[c.Path] = c
		}
	}
	var n int64
	for _, it := range want {
		if c, changed := byPath[it.Path]; sendsContent(it, c, changed) {
			n += int64(it.Node.Size)
		}
	}
	return n
}

// applyItems sends the changes to rollback-apply: removals in its
// arguments, then every directory (its metadata is set last) and every
// changed node in the snapshot's order, files with their content, each
// counted on m.
func applyItems(ctx context.Context, h *actions.Host, r *repo.Repository, roots []string, want []Item, changes []Change, m *meter) (ApplyStats, error) {
	var st ApplyStats
	if len(changes) == 0 {
		return st, nil
	}
	s0, err := starterOf(h)
	if err != nil {
		return st, err
	}
	byPath := map[string]Change{}
	var remove []string
	for _, c := range changes {
		if c.Op == OpRemove {
			remove = append(remove, c.Path)
			continue
		}
		byPath[c.Path] = c
	}
	s, err := s0.Start(ctx, OpRollbackApply, applyArgs{Roots: roots, Remove: remove})
	if err != nil {
		return st, err
	}
	defer s.Close()
	var buf []byte
	err = func() error {
		for _, it := range want {
			c, changed := byPath[it.Path]
			if !changed && it.Node.Type != repo.NodeDir {
				continue
			}
			n := *it.Node
			n.Content, n.Subtree = nil, nil
			e := applyEntry{Item: Item{Path: it.Path, Node: &n}, Op: c.Op, LinkTo: c.LinkTo}
			if err := s.WriteJSON(agentproto.FrameMessage, e); err != nil {
				return err
			}
			if !sendsContent(it, c, changed) {
				continue
			}
			w := s.DataWriter()
			for _, id := range it.Node.Content {
				if buf, err = r.LoadBlob(ctx, repo.DataBlob, id, buf); err != nil {
					return fmt.Errorf("%s: %w", it.Path, err)
				}
				if _, err := w.Write(buf); err != nil {
					return err
				}
				m.add(int64(len(buf)))
			}
			if err := w.Close(); err != nil {
				return err
			}
			m.fileDone()
		}
		return s.WriteJSON(agentproto.FrameMessage, applyEntry{})
	}()
	// The host's answer says what it did, also when sending failed
	// half-way (it stops at the first error and reports it).
	rerr := s.Result(&st)
	if err != nil && rerr == nil {
		rerr = err
	}
	if rerr != nil {
		var re *agentproto.RemoteError
		if errors.As(rerr, &re) || err == nil {
			return st, rerr
		}
		return st, fmt.Errorf("%w (sending: %v)", rerr, err)
	}
	return st, nil
}

func init() {
	for _, k := range []string{KindRollbackFiles, KindRollbackDisk, KindRollbackDB} {
		actions.RegisterKind(k, func(target string) (actions.Action, error) {
			return journaledRollback{}, nil
		})
	}
}

// journaledRollback is a files rollback as `holiday restore` finds it in
// a journal: without the repository it cannot write the pre-rollback
// snapshot back itself, so it says how.
type journaledRollback struct{}

func (journaledRollback) Observe(context.Context, *actions.Host) (actions.Record, error) {
	return actions.Record{}, errors.New("a rollback step is run by `holiday rollback`, not replayed")
}

func (journaledRollback) Apply(context.Context, *actions.Host, actions.Record) (actions.Record, error) {
	return actions.Record{}, errors.New("a rollback step is run by `holiday rollback`, not replayed")
}

func (journaledRollback) Verify(context.Context, *actions.Host, actions.Record) error { return nil }

func (journaledRollback) Revert(_ context.Context, h *actions.Host, prior, _ actions.Record) error {
	var p struct {
		PreSnapshot string `json:"pre_rollback_snapshot"`
	}
	if err := prior.Decode(&p); err != nil {
		return err
	}
	if p.PreSnapshot == "" {
		return nil
	}
	return fmt.Errorf("undo this rollback with `holiday rollback -f PLAN %s --snapshot %s`", h.Name, p.PreSnapshot)
}

// rollbackDisk writes a disk snapshot's image onto the device.
func rollbackDisk(ctx context.Context, ao actions.Options, conn *actions.Connector, o RollbackOptions, sn *repo.Snapshot, res RollbackResult) (RollbackResult, error) {
	if len(o.Paths) > 0 {
		return res, fmt.Errorf("--path: snapshot %s is a disk image, written whole", sn.ID.Str())
	}
	img, err := LoadDiskImage(ctx, o.Repo, sn)
	if err != nil {
		return res, err
	}
	dev := o.Device
	if dev == "" {
		dev = sn.Paths[0]
	}
	res.Device, res.BlockSize, res.BlocksTotal = dev, img.BlockSize, len(img.Blocks)
	a := &diskAction{r: o.Repo, sn: sn, img: img, dev: dev, report: o.report("disk " + dev)}
	if o.DryRun {
		h, closeHost, err := conn.Connect(ctx, o.Host)
		if err != nil {
			return res, err
		}
		defer closeHost()
		size, ids, err := diskScan(ctx, h, dev, img.BlockSize)
		if err != nil {
			return res, err
		}
		if uint64(size) < img.Size {
			return res, fmt.Errorf("disk %s holds %d bytes, the image %d: it does not fit", dev, size, img.Size)
		}
		res.Blocks = len(DiffBlocks(img, ids))
		return res, nil
	}
	a.pre = o.backupSnapshotter(ctx)
	a.tags = rollbackTags("disk", sn, ao.RunID)
	err = runStep(ctx, ao, conn, o, KindRollbackDisk, a.target(), a, &res, func() (bool, *repo.Snapshot) { return a.applied != nil, a.preSnap })
	if err != nil {
		return res, err
	}
	res.Blocks = len(a.differ)
	res.DiskApplied, res.Written = a.applied, a.written
	return res, nil
}
