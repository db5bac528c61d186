package restore

import (
	"context"
	"strings"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
)

// preSnapshotter takes the snapshot of what a rollback is about to
// replace, through the host-backup data path
// (backup/hostbackup): the agent walks, chunks and hashes, only chunks
// the repository lacks cross SSH, the control node verifies, packs and
// stores them, and reads the new snapshot back.
type preSnapshotter struct {
	Store   *hostbackup.Store
	Version string // holiday's version, in the snapshot
	// Progress, if set, hears how far the snapshot is, about once a
	// second (what: "pre-rollback disk /dev/vdb"); a dump's carries the
	// host's previous dump of the database as its estimated size.
	Progress func(what string, st hostbackup.Stats)
}

// SnapshotFiles takes the snapshot of what a rollback is about to
// replace, before it replaces anything: the paths as the host holds them
// now, tagged as given, with the host's name.
func (s preSnapshotter) SnapshotFiles(ctx context.Context, h *actions.Host, paths, tags []string) (*repo.Snapshot, error) {
	return s.take(ctx, h, hostbackup.Request{Source: hostbackup.SourceFiles, Paths: paths}, "files "+strings.Join(paths, ","), paths, tags)
}

// take runs one host-backup source (what, in words) into a snapshot and
// reads it back.
func (s preSnapshotter) take(ctx context.Context, h *actions.Host, req hostbackup.Request, what string, paths, tags []string) (*repo.Snapshot, error) {
	st, err := starterOf(h)
	if err != nil {
		return nil, err
	}
	r := s.Store.R
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	known, err := hostbackup.HostKnownIn(ctx, r, sns, h.Name, nil)
	if err != nil {
		return nil, err
	}
	o := hostbackup.Options{Hostname: h.Name, Paths: paths, Tags: tags, ProgramVersion: s.Version, Known: known}
	if s.Progress != nil {
		o.Progress = func(st hostbackup.Stats) { s.Progress("pre-rollback "+what, st) }
		if req.Source == hostbackup.SourceStream {
			size := hostbackup.StreamSize(ctx, r, hostbackup.Previous(sns, h.Name, kindTag(tags), paths))
			o.Expected = func() int64 { return size }
		}
	}
	req.Polynomial = uint64(r.Config().ChunkerPolynomial)
	stream, err := st.Start(ctx, hostbackup.OpName, req)
	if err != nil {
		return nil, err
	}
	// read back before the snapshot is written
	sn, _, _, err := hostbackup.Backup(ctx, s.Store, stream, req, o)
	stream.Close()
	if err != nil {
		return nil, err
	}
	return sn, nil
}

// kindTag is the kind: tag among tags ("" without one).
func kindTag(tags []string) string {
	for _, t := range tags {
		if strings.HasPrefix(t, "kind:") {
			return t
		}
	}
	return ""
}
