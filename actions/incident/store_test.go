package incident

import (
	"context"
	"encoding/binary"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/integrity"
)

// TestSaveBaselineReadBack: a baseline saved through the run's store (a
// lockdown's) is written only once its packs were read back sound; one
// whose data or tree the store damaged fails its step, naming the blob
// and the pack, and writes no snapshot; a second try, the store sound
// again, stores it.
func TestSaveBaselineReadBack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage repo.BlobType // the first pack holding only blobs of this type; 0: none
		want   string
	}{
		{name: "sound"},
		{name: "the baseline's data damaged", damage: repo.DataBlob, want: "data blob"},
		{name: "the baseline's tree damaged", damage: repo.TreeBlob, want: "tree blob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			fb := faulty.New(mem.New())
			fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
			r, err := repo.Init(ctx, fb, "pw")
			if err != nil {
				t.Fatal(err)
			}
			var damaged atomic.Value
			if tc.damage != 0 {
				fb.Mangle = func(h backend.Handle, b []byte) []byte {
					hl := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
					blobs, err := r.OpenPackHeader(repo.ID{}, b[len(b)-4-hl:len(b)-4])
					if err != nil || slices.ContainsFunc(blobs, func(pb repo.PackedBlob) bool { return pb.Type != tc.damage }) || !damaged.CompareAndSwap(nil, h.Name) {
						return nil
					}
					b[0] ^= 1 // the first blob
					return b
				}
			}
			store := RepoStore{R: r, StoreOptions: StoreOptions{Tags: []string{"run:x"}, Share: hostbackup.NewStore(ctx, r)}}
			st := &integrity.State{Format: 1, Host: "sys1", Taken: time.Now().UTC(), Files: map[string]integrity.File{"/etc/hostname": {}}}
			id, err := store.SaveBaseline(ctx, "sys1", st)
			sns, lerr := Snapshots(ctx, r, "sys1", KindBaseline)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.damage == 0 {
				if err != nil || len(sns) != 1 || sns[0].ID.String() != id {
					t.Fatalf("sound store: snapshot %q, %v; %d baselines listed", id, err, len(sns))
				}
				return
			}
			pack, _ := damaged.Load().(string)
			if err == nil || pack == "" || !strings.Contains(err.Error(), pack[:8]) || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "no snapshot is written") || !strings.Contains(err.Error(), "sys1") {
				t.Errorf("baseline into a store that damaged pack %.8s: %v; want it failed naming the %s and the pack", pack, err, tc.want)
			}
			if id != "" || len(sns) != 0 {
				t.Errorf("snapshot %q stored, %d baselines listed; want none", id, len(sns))
			}
			// the store is sound again: the failed copies left the
			// index, the next try stores them again
			fb.Mangle = nil
			if id, err = store.SaveBaseline(ctx, "sys1", st); err != nil {
				t.Fatalf("second try: %v", err)
			}
			got, sn, err := LatestBaseline(ctx, r, "sys1")
			if err != nil || sn.ID.String() != id || got.Host != "sys1" {
				t.Errorf("the baseline stored on the second try: %v", err)
			}
		})
	}
}
