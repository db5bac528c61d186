package restore

import (
	"context"
	"fmt"
	"path"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/crypto"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// KindRollbackDisk is the journal's kind for a disk rollback step.
const KindRollbackDisk = "rollback-disk"

// DiskImage is a disk snapshot's one file: its size, fixed block size
// and block IDs.
type DiskImage struct {
	Size      uint64
	BlockSize int
	Blocks    []repo.ID
}

// LoadDiskImage reads a disk snapshot's image node (the index must be
// loaded): the block size is its first block's length, every block but
// the last that long.
func LoadDiskImage(ctx context.Context, r *repo.Repository, sn *repo.Snapshot) (DiskImage, error) {
	if len(sn.Paths) != 1 {
		return DiskImage{}, fmt.Errorf("disk snapshot %s names %d paths, want one device", sn.ID.Str(), len(sn.Paths))
	}
	n, err := restorer.FindNode(ctx, r, *sn.Tree, "/"+path.Base(sn.Paths[0]))
	if err != nil {
		return DiskImage{}, fmt.Errorf("disk snapshot %s: %w", sn.ID.Str(), err)
	}
	if n.Type != repo.NodeFile {
		return DiskImage{}, fmt.Errorf("disk snapshot %s holds a %s, not an image", sn.ID.Str(), n.Type)
	}
	img := DiskImage{Size: n.Size, Blocks: n.Content}
	var total uint64
	for i, id := range n.Content {
		pb, ok := r.Index().Lookup(repo.BlobHandle{ID: id, Type: repo.DataBlob})
		if !ok {
			return DiskImage{}, fmt.Errorf("disk snapshot %s: block %d (%s) is not in the index", sn.ID.Str(), i, id.Str())
		}
		l := int(pb.UncompressedLength)
		if l == 0 {
			l = int(pb.Length) - crypto.Extension
		}
		if i == 0 {
			img.BlockSize = l
		}
		if l > img.BlockSize || l < img.BlockSize && i != len(n.Content)-1 {
			return DiskImage{}, fmt.Errorf("disk snapshot %s: block %d is %d bytes, not the image's fixed %d", sn.ID.Str(), i, l, img.BlockSize)
		}
		total += uint64(l)
	}
	if total != img.Size || img.BlockSize == 0 && img.Size != 0 {
		return DiskImage{}, fmt.Errorf("disk snapshot %s: blocks hold %d bytes, the image %d", sn.ID.Str(), total, img.Size)
	}
	return img, nil
}

// DiffBlocks lists the blocks of img whose ID the host's do not match.
func DiffBlocks(img DiskImage, host []repo.ID) []int {
	var out []int
	for i, id := range img.Blocks {
		if i >= len(host) || host[i] != id {
			out = append(out, i)
		}
	}
	return out
}

// diskScan reads the device's size and block IDs from the host.
func diskScan(ctx context.Context, h *actions.Host, dev string, bs int) (int64, []repo.ID, error) {
	st, err := starterOf(h)
	if err != nil {
		return 0, nil, err
	}
	s, err := st.Start(ctx, OpRollbackDiskScan, diskArgs{Device: dev, BlockSize: bs})
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	var size int64
	var ids []repo.ID
	for {
		var m diskHashes
		if err := recv(h, s, &m); err != nil {
			return 0, nil, err // a refusal ends the operation at once: its Result says why
		}
		if m.End {
			break
		}
		if m.First == 0 {
			size = m.Size
		}
		if m.First != len(ids) {
			return 0, nil, fmt.Errorf("%s: block IDs out of order", h.Name)
		}
		ids = append(ids, m.IDs...)
	}
	return size, ids, s.Result(nil)
}

// blockBytes is the bytes of the listed blocks of img (the last block
// may be short).
func blockBytes(img DiskImage, blocks []int) int64 {
	var n int64
	for _, i := range blocks {
		n += min(int64(img.BlockSize), int64(img.Size)-int64(i)*int64(img.BlockSize))
	}
	return n
}

// diskWrite sends the listed blocks of img, each counted on m.
func diskWrite(ctx context.Context, h *actions.Host, r *repo.Repository, dev string, img DiskImage, blocks []int, m *meter) (DiskStats, error) {
	var st DiskStats
	s0, err := starterOf(h)
	if err != nil {
		return st, err
	}
	s, err := s0.Start(ctx, OpRollbackDiskWrite, diskArgs{Device: dev, BlockSize: img.BlockSize})
	if err != nil {
		return st, err
	}
	defer s.Close()
	var buf []byte
	err = func() error {
		for _, i := range blocks {
			if buf, err = r.LoadBlob(ctx, repo.DataBlob, img.Blocks[i], buf); err != nil {
				return fmt.Errorf("block %d: %w", i, err)
			}
			if err := s.WriteJSON(agentproto.FrameMessage, diskBlock{Index: i}); err != nil {
				return err
			}
			w := s.DataWriter()
			if _, err := w.Write(buf); err != nil {
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
			m.block(int64(len(buf)))
		}
		return s.WriteJSON(agentproto.FrameMessage, diskBlock{End: true})
	}()
	rerr := s.Result(&st)
	if rerr != nil {
		return st, rerr
	}
	return st, err
}

// diskAction is one disk rollback as a journaled step: Observe compares
// the device's blocks with the image's and, if any differ, snapshots the
// device (kind:disk, rollback-of); Apply writes only the differing
// blocks; Verify compares again; Revert writes the pre-rollback image
// back.
type diskAction struct {
	r      *repo.Repository
	sn     *repo.Snapshot
	img    DiskImage
	dev    string
	pre    preSnapshotter
	tags   []string
	report func(Progress) // how far the writing is (nil: nobody asks)

	differ  []int
	applied *DiskStats
	written *Progress
	preSnap *repo.Snapshot
}

// SnapshotDisk takes the pre-rollback snapshot of a device (zero blocks
// never cross, blocks the host's own snapshots hold are not sent again).
func (s preSnapshotter) SnapshotDisk(ctx context.Context, h *actions.Host, dev string, blockSize int, tags []string) (*repo.Snapshot, error) {
	return s.take(ctx, h, hostbackup.Request{Source: hostbackup.SourceDisk, Device: dev, BlockSize: blockSize}, "disk "+dev, []string{dev}, tags)
}

// diskPrior is the journal's intent record.
type diskPrior struct {
	Snapshot    string `json:"snapshot"`
	Device      string `json:"device"`
	PreSnapshot string `json:"pre_rollback_snapshot,omitempty"`
	Blocks      int    `json:"blocks"` // how many differ
}

func (a *diskAction) target() string { return a.sn.ID.Str() + ":" + a.dev }

func (a *diskAction) Observe(ctx context.Context, h *actions.Host) (actions.Record, error) {
	size, ids, err := diskScan(ctx, h, a.dev, a.img.BlockSize)
	if err != nil {
		return actions.Record{}, err
	}
	if uint64(size) < a.img.Size {
		return actions.Record{}, fmt.Errorf("disk %s holds %d bytes, the image %d: it does not fit", a.dev, size, a.img.Size)
	}
	a.differ = DiffBlocks(a.img, ids)
	p := diskPrior{Snapshot: a.sn.ID.String(), Device: a.dev, Blocks: len(a.differ)}
	if len(a.differ) > 0 {
		pre, err := a.pre.SnapshotDisk(ctx, h, a.dev, a.img.BlockSize, a.tags)
		if err != nil {
			return actions.Record{}, fmt.Errorf("the pre-rollback snapshot failed, so nothing was overwritten: %w", err)
		}
		a.preSnap = pre
		p.PreSnapshot = pre.ID.String()
	}
	return actions.NewRecord(KindRollbackDisk, a.target(), p)
}

func (a *diskAction) Apply(ctx context.Context, h *actions.Host, prior actions.Record) (actions.Record, error) {
	m := startMeter("disk", blockBytes(a.img, a.differ), a.report)
	st, err := diskWrite(ctx, h, a.r, a.dev, a.img, a.differ, m)
	a.applied, a.written = &st, m.end()
	rec, rerr := actions.NewRecord(KindRollbackDisk, a.target(), st)
	if err != nil {
		return rec, err
	}
	if rerr != nil {
		return rec, rerr
	}
	return rec, a.Verify(ctx, h, rec)
}

func (a *diskAction) Verify(ctx context.Context, h *actions.Host, done actions.Record) error {
	_, ids, err := diskScan(ctx, h, a.dev, a.img.BlockSize)
	if err != nil {
		return err
	}
	if d := DiffBlocks(a.img, ids); len(d) > 0 {
		return fmt.Errorf("%d blocks of %s still differ from the image after writing (first: %d)", len(d), a.dev, d[0])
	}
	return nil
}

func (a *diskAction) Revert(ctx context.Context, h *actions.Host, prior, done actions.Record) error {
	var p diskPrior
	if err := prior.Decode(&p); err != nil {
		return err
	}
	pre, err := findPreSnapshot(ctx, a.r, p.PreSnapshot)
	if pre == nil {
		return err // or nothing was to overwrite
	}
	img, err := LoadDiskImage(ctx, a.r, pre)
	if err != nil {
		return err
	}
	_, ids, err := diskScan(ctx, h, p.Device, img.BlockSize)
	if err != nil {
		return err
	}
	_, err = diskWrite(ctx, h, a.r, p.Device, img, DiffBlocks(img, ids), nil)
	return err
}
