package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/integrity"
)

// Tags and file names of the snapshots this package writes.
const (
	KindBaseline = "kind:baseline"
	KindEvidence = "kind:evidence"
	BaselineFile = "baseline.json"
	EvidenceFile = "evidence.tar"
)

// ErrNoBaseline is returned when a host has no baseline in the repository.
var ErrNoBaseline = errors.New("no baseline")

// StoreOptions shape the snapshots written.
type StoreOptions struct {
	// Tags are added beside holiday and the kind (run:<id> at lockdown).
	Tags           []string
	ProgramVersion string
	// Share is the store every writer into the repository goes through
	// during a run (a lockdown's backups, the other hosts' baselines or
	// evidence): a snapshot is saved exclusively of them, on the run's
	// context — the repository's pack writer is one per repository, and
	// its flush ends it — and written only once the store's read-back
	// found every blob it refers to sound (repo.WaitVerifiedTree; the
	// other writers wait meanwhile). nil: the caller saves one snapshot
	// at a time, not read back.
	Share *hostbackup.Store
}

// RepoStore stores baselines in an open repository (index loaded, a
// shared lock held by the caller). It is what lockdown's baseline step
// is given.
type RepoStore struct {
	R *repo.Repository
	StoreOptions
}

// SaveBaseline stores st as host's kind:baseline snapshot and returns its
// ID.
func (s RepoStore) SaveBaseline(ctx context.Context, host string, st *integrity.State) (string, error) {
	sn, err := SaveBaseline(ctx, s.R, host, st, s.StoreOptions)
	if err != nil {
		return "", err
	}
	return sn.ID.String(), nil
}

// SaveBaseline stores st as a snapshot with one file, baseline.json;
// hostname host, tags holiday, kind:baseline and o.Tags.
func SaveBaseline(ctx context.Context, r *repo.Repository, host string, st *integrity.State, o StoreOptions) (*repo.Snapshot, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode the baseline of %s: %w", host, err)
	}
	return save(ctx, r, host, bytes.NewReader(b), BaselineFile, KindBaseline, o)
}

func save(ctx context.Context, r *repo.Repository, host string, rd io.Reader, name, kind string, o StoreOptions) (*repo.Snapshot, error) {
	tags := append([]string{"holiday", kind}, o.Tags...)
	ao := archiver.Options{Tags: tags, Hostname: host, ProgramVersion: o.ProgramVersion}
	if o.Share != nil {
		// the run's store reads back every pack it stores: the snapshot
		// is written once what it refers to read back sound
		ao.Verify = r.WaitVerifiedTree
	}
	var sn *repo.Snapshot
	backup := func(ctx context.Context) (err error) {
		sn, _, err = archiver.BackupReader(ctx, r, rd, name, ao)
		return err
	}
	var err error
	if o.Share != nil {
		err = o.Share.Exclusive(ctx, backup)
	} else {
		err = backup(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("store the %s of %s: %w", kind, host, err)
	}
	return sn, nil
}

// Snapshots returns host's snapshots of a kind, oldest first.
func Snapshots(ctx context.Context, r *repo.Repository, host, kind string) ([]*repo.Snapshot, error) {
	all, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	var out []*repo.Snapshot
	for _, sn := range all {
		if sn.Hostname == host && slices.Contains(sn.Tags, kind) {
			out = append(out, sn)
		}
	}
	return out, nil
}

// LatestBaseline loads host's newest baseline. The index must be loaded.
func LatestBaseline(ctx context.Context, r *repo.Repository, host string) (*integrity.State, *repo.Snapshot, error) {
	sns, err := Snapshots(ctx, r, host, KindBaseline)
	if err != nil {
		return nil, nil, err
	}
	if len(sns) == 0 {
		return nil, nil, fmt.Errorf("%s: %w in the repository (lockdown takes one; so does holiday baseline)", host, ErrNoBaseline)
	}
	sn := sns[len(sns)-1]
	st, err := LoadBaseline(ctx, r, sn)
	return st, sn, err
}

// RunBaseline loads the baseline lockdown run took of host (tag
// run:<run>): what restore's gate compares with, whatever baselines were
// taken since. The index must be loaded.
func RunBaseline(ctx context.Context, r *repo.Repository, host, run string) (*integrity.State, *repo.Snapshot, error) {
	sns, err := Snapshots(ctx, r, host, KindBaseline)
	if err != nil {
		return nil, nil, err
	}
	var sn *repo.Snapshot
	for _, s := range sns {
		if slices.Contains(s.Tags, "run:"+run) {
			sn = s
		}
	}
	if sn == nil {
		return nil, nil, fmt.Errorf("%s: %w of run %s in the repository (locked down --without-baseline, or by a holiday without the baseline step)", host, ErrNoBaseline, run)
	}
	st, err := LoadBaseline(ctx, r, sn)
	return st, sn, err
}

// LoadBaseline reads the State stored in a baseline snapshot.
func LoadBaseline(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) (*integrity.State, error) {
	var b bytes.Buffer
	if err := readFile(ctx, r, sn, BaselineFile, &b); err != nil {
		return nil, err
	}
	var st integrity.State
	if err := json.Unmarshal(b.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("baseline snapshot %s: %w", sn.ID.Str(), err)
	}
	return &st, nil
}

func readFile(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, name string, w io.Writer) error {
	n, err := restorer.FindNode(ctx, r, *sn.Tree, "/"+name)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
	}
	if err := restorer.Dump(ctx, r, n, w); err != nil {
		return fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
	}
	return nil
}
