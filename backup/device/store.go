package device

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
)

// KindTag marks device snapshots (DESIGN §7); ModelTag prefixes the tag
// that records the dialect, which diffs and masking need.
const (
	KindTag  = "kind:device"
	ModelTag = "model:"
)

// BackupOptions shape BackupAll.
type BackupOptions struct {
	Options
	// Concurrency bounds the devices read at once (default 16).
	Concurrency int
	// Tags are added to every snapshot beside holiday, kind:device and
	// model:<model> (run:<id>, holiday-pin).
	Tags []string
	// ProgramVersion goes into each snapshot.
	ProgramVersion string
	// Done, when set, is called as each device finishes (from several
	// goroutines, one call at a time).
	Done func(Result)
}

// Result is one device's outcome. Err set means nothing was stored for
// it; Snapshot set means its raw, complete config is in the repository.
type Result struct {
	Device   string
	Model    string
	Fetched  *Fetched // nil when the read failed
	Snapshot *repo.Snapshot
	Err      error
	Elapsed  time.Duration
}

// BackupAll reads every device in parallel (saving first where the target
// asks) and stores each complete config as its own snapshot: file
// <name>.cfg, hostname <name>, tags holiday, kind:device, model:<model>
// and opts.Tags. A failing device does not stop the others; results come
// back in targets' order. r must be open with its index loaded and a
// shared lock held by the caller.
func BackupAll(ctx context.Context, r *repo.Repository, targets []Target, o BackupOptions) []Result {
	res := make([]Result, len(targets))
	limit := o.Concurrency
	if limit <= 0 {
		limit = 16
	}
	var store, done sync.Mutex // one archiver run at a time; Done calls one at a time
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, t := range targets {
		g.Go(func() error {
			start := time.Now()
			out := Result{Device: t.Name, Model: t.Model}
			out.Fetched, out.Err = Fetch(gctx, t, o.Options)
			if out.Err == nil {
				store.Lock()
				out.Snapshot, out.Err = Store(gctx, r, t, out.Fetched.Config, o)
				store.Unlock()
			}
			out.Elapsed = time.Since(start)
			res[i] = out
			if o.Done != nil {
				done.Lock()
				o.Done(out)
				done.Unlock()
			}
			return nil // a failed device is a result, not a reason to stop the others
		})
	}
	_ = g.Wait()
	return res
}

// Store writes one device's raw config as a kind:device snapshot. It
// refuses a config without the model's end marker.
func Store(ctx context.Context, r *repo.Repository, t Target, cfg string, o BackupOptions) (*repo.Snapshot, error) {
	d, ok := Drivers[t.Model]
	if !ok {
		return nil, fmt.Errorf("unknown model %q", t.Model)
	}
	if !d.Complete(cfg) {
		return nil, incomplete(d, cfg)
	}
	tags := append([]string{"holiday", KindTag, ModelTag + t.Model}, o.Tags...)
	sn, _, err := archiver.BackupReader(ctx, r, strings.NewReader(cfg), FileName(t.Name),
		archiver.Options{Tags: tags, Hostname: t.Name, ProgramVersion: o.ProgramVersion, Log: o.log()})
	if err != nil {
		return nil, fmt.Errorf("store the config: %w", err)
	}
	return sn, nil
}

// FileName is the file a device's config is stored as in its snapshot.
func FileName(device string) string { return device + ".cfg" }

// Snapshots returns the device snapshots of one device, oldest first.
func Snapshots(ctx context.Context, r *repo.Repository, device string) ([]*repo.Snapshot, error) {
	all, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	var out []*repo.Snapshot
	for _, sn := range all {
		if sn.Hostname == device && hasTag(sn, KindTag) {
			out = append(out, sn)
		}
	}
	return out, nil
}

func hasTag(sn *repo.Snapshot, tag string) bool {
	for _, t := range sn.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// ModelOf returns the model recorded in a device snapshot's tags.
func ModelOf(sn *repo.Snapshot) string {
	for _, t := range sn.Tags {
		if m, ok := strings.CutPrefix(t, ModelTag); ok {
			return m
		}
	}
	return ""
}

// Load reads the raw config stored in a device snapshot. The index must
// be loaded.
func Load(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) (string, error) {
	if !hasTag(sn, KindTag) {
		return "", fmt.Errorf("snapshot %s is not a device snapshot (no %s tag)", sn.ID.Str(), KindTag)
	}
	n, err := restorer.FindNode(ctx, r, *sn.Tree, "/"+FileName(sn.Hostname))
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
	}
	var b bytes.Buffer
	if err := restorer.Dump(ctx, r, n, &b); err != nil {
		return "", fmt.Errorf("snapshot %s: %w", sn.ID.Str(), err)
	}
	return b.String(), nil
}
