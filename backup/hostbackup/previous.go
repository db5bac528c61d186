package hostbackup

import (
	"context"
	"slices"

	"github.com/holiday-ops/holiday/backup/repo"
)

// Previous is the host's previous snapshot of the same source: the
// newest in sns (oldest first, as repo.Snapshots lists them) of host,
// with tag (kind:files, kind:postgres, …) and exactly paths (sorted).
// nil when there is none.
func Previous(sns []*repo.Snapshot, host, tag string, paths []string) *repo.Snapshot {
	for i := len(sns) - 1; i >= 0; i-- {
		sn := sns[i]
		sp := slices.Clone(sn.Paths)
		slices.Sort(sp)
		if sn.Hostname == host && slices.Contains(sn.Tags, tag) && slices.Equal(sp, paths) {
			return sn
		}
	}
	return nil
}

// StreamSize is the size of the one file a stream snapshot (a dump)
// holds: the estimate of the next dump of the same database
// (Options.Expected). 0 when sn is nil, cannot be read or holds anything
// else: the estimate is for the operator's eyes only.
func StreamSize(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) int64 {
	if sn == nil || sn.Tree == nil {
		return 0
	}
	t, err := r.LoadTree(ctx, *sn.Tree)
	if err != nil || len(t.Nodes) != 1 || t.Nodes[0].Type != repo.NodeFile {
		return 0
	}
	return int64(t.Nodes[0].Size)
}
