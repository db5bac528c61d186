package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
)

// Snapshot is a snapshot file's JSON document, restic's fields.
type Snapshot struct {
	Time           time.Time `json:"time"`
	Parent         *ID       `json:"parent,omitempty"`
	Tree           *ID       `json:"tree"`
	Paths          []string  `json:"paths"`
	Hostname       string    `json:"hostname,omitempty"`
	Username       string    `json:"username,omitempty"`
	UID            uint32    `json:"uid,omitempty"`
	GID            uint32    `json:"gid,omitempty"`
	Excludes       []string  `json:"excludes,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	Original       *ID       `json:"original,omitempty"`
	ProgramVersion string    `json:"program_version,omitempty"`

	ID ID `json:"-"` // the file's name
}

// SaveSnapshot stores a snapshot; call it only after Flush.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	if r.guard != nil {
		if err := r.guard(); err != nil {
			return ID{}, err
		}
	}
	b, err := json.Marshal(sn)
	if err != nil {
		return ID{}, err
	}
	id, err := r.SaveUnpacked(ctx, backend.SnapshotFile, b)
	if err == nil {
		sn.ID = id
	}
	return id, err
}

// LoadSnapshot reads one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	b, err := r.LoadUnpacked(ctx, backend.SnapshotFile, id)
	if err != nil {
		return nil, err
	}
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Str(), err)
	}
	if sn.Tree == nil {
		return nil, fmt.Errorf("snapshot %s has no tree", id.Str())
	}
	sn.ID = id
	return &sn, nil
}

// Snapshots loads every snapshot, oldest first. Snapshots that cannot be
// read are reported through bad (if not nil) and skipped.
func (r *Repository) Snapshots(ctx context.Context, bad func(ID, error)) ([]*Snapshot, error) {
	var ids []ID
	if err := r.List(ctx, backend.SnapshotFile, func(id ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var out []*Snapshot
	for _, id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if bad != nil {
				bad(id, err)
				continue
			}
			return nil, err
		}
		out = append(out, sn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// FindSnapshot resolves "latest", a full ID or a unique prefix.
func (r *Repository) FindSnapshot(ctx context.Context, s string) (*Snapshot, error) {
	if s == "latest" {
		sns, err := r.Snapshots(ctx, func(ID, error) {})
		if err != nil {
			return nil, err
		}
		if len(sns) == 0 {
			return nil, fmt.Errorf("the repository holds no snapshots")
		}
		return sns[len(sns)-1], nil
	}
	s = strings.ToLower(s)
	id, err := r.FindID(ctx, backend.SnapshotFile, s)
	if err != nil {
		return nil, err
	}
	return r.LoadSnapshot(ctx, id)
}
