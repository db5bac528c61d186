package restore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agent"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// The host side of a disk rollback: two agent operations on an
// unmounted block device, opened with O_EXCL (the kernel refuses it
// while a filesystem, a device mapper or md holds it, in any mount
// namespace, and nobody can mount it while the rollback writes).
//
//	rollback-disk-scan   the device's size and the SHA-256 of each fixed
//	                     block (a blob ID of the snapshot's, if equal):
//	                     Message frames of diskHashes, then one with
//	                     End set
//	rollback-disk-write  Message frames of diskBlock, each followed by the
//	                     block's bytes as Data frames and an EOF frame,
//	                     then one with End set; written in place, synced
const (
	OpRollbackDiskScan  = "rollback-disk-scan"
	OpRollbackDiskWrite = "rollback-disk-write"
)

// diskArgs are both operations' arguments.
type diskArgs struct {
	Device    string `json:"device"`
	BlockSize int    `json:"block_size"`
}

// diskHashes is a run of block IDs from First on.
type diskHashes struct {
	Size  int64     `json:"size,omitempty"` // the device's size (in the first message)
	First int       `json:"first"`
	IDs   []repo.ID `json:"ids,omitempty"`
	End   bool      `json:"end,omitempty"`
}

// diskBlock announces one block's data.
type diskBlock struct {
	Index int  `json:"index"`
	End   bool `json:"end,omitempty"`
}

// DiskStats is what rollback-disk-write did.
type DiskStats struct {
	Blocks int   `json:"blocks"`
	Bytes  int64 `json:"bytes"`
}

func diskHandlers() []agent.Handler {
	return []agent.Handler{
		{Name: OpRollbackDiskScan, Class: agent.ClassRead, Run: hostDiskScan},
		{Name: OpRollbackDiskWrite, Class: agent.ClassChange, Run: hostDiskWrite},
	}
}

// ErrDeviceInUse is returned (wrapped) for a device that is mounted,
// held or swapped on.
var ErrDeviceInUse = errors.New("the device is in use")

// openUnused opens dev, which must be a block device nothing uses: not
// mounted here (/proc/self/mountinfo, the device or a partition of it),
// not held (/sys/block/*/holders: LVM, dm-crypt, md), not swap, and
// opened O_EXCL so that the kernel agrees.
func openUnused(dev string, flag int) (*os.File, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return nil, 0, fmt.Errorf("disk %s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return nil, 0, fmt.Errorf("disk %s: not a block device", dev)
	}
	if why := inUse(dev, uint64(st.Rdev)); why != "" {
		return nil, 0, fmt.Errorf("disk %s: %w: %s; refusing to write over it (unmount it first)", dev, ErrDeviceInUse, why)
	}
	f, err := os.OpenFile(dev, flag|unix.O_EXCL, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, 0, fmt.Errorf("disk %s: %w: the kernel reports it busy (mounted in another namespace, or held); refusing to write over it", dev, ErrDeviceInUse)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("disk %s: %w", dev, err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("disk %s: size: %w", dev, err)
	}
	return f, size, nil
}

// sysBlock is where the kernel describes block devices; tests move it.
var sysBlock = "/sys/dev/block"

// inUse says why the device with number rdev is in use, or "".
func inUse(dev string, rdev uint64) string {
	self := fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
	devs := map[string]bool{self: true}
	sys := filepath.Join(sysBlock, self)
	holders := func(dir string) string {
		ents, _ := os.ReadDir(filepath.Join(dir, "holders"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return strings.Join(names, ", ")
	}
	if h := holders(sys); h != "" {
		return "held by " + h
	}
	ents, _ := os.ReadDir(sys)
	for _, e := range ents {
		part := filepath.Join(sys, e.Name())
		if _, err := os.Stat(filepath.Join(part, "partition")); err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(part, "dev")); err == nil {
			devs[strings.TrimSpace(string(b))] = true
		}
		if h := holders(part); h != "" {
			return "its partition " + e.Name() + " is held by " + h
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 4 && devs[fs[2]] {
				return "mounted at " + fs[4]
			}
		}
	}
	if b, err := os.ReadFile("/proc/swaps"); err == nil {
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if fs := strings.Fields(l); len(fs) > 0 && fs[0] == dev {
				return "swap"
			}
		}
	}
	return ""
}

func checkDiskArgs(a diskArgs) error {
	if !filepath.IsAbs(a.Device) || a.BlockSize < 4096 || a.BlockSize > 64<<20 {
		return &agentproto.RemoteError{Code: "bad-args", Message: fmt.Sprintf("disk %q with block size %d", a.Device, a.BlockSize)}
	}
	return nil
}

func hostDiskScan(ctx context.Context, op *agent.Op) (any, error) {
	var a diskArgs
	if err := decodeArgs(op, &a); err != nil {
		return nil, err
	}
	if err := checkDiskArgs(a); err != nil {
		return nil, err
	}
	f, size, err := openUnused(a.Device, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	buf := make([]byte, a.BlockSize)
	msg := diskHashes{Size: size}
	const perMessage = 4096
	for i := 0; int64(i)*int64(a.BlockSize) < size; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := int(min(int64(a.BlockSize), size-int64(i)*int64(a.BlockSize)))
		if _, err := io.ReadFull(f, buf[:n]); err != nil {
			return nil, fmt.Errorf("disk %s: read block %d: %w", a.Device, i, err)
		}
		msg.IDs = append(msg.IDs, sha256.Sum256(buf[:n]))
		if len(msg.IDs) == perMessage {
			if err := op.Conn.WriteJSON(agentproto.FrameMessage, msg); err != nil {
				return nil, err
			}
			msg = diskHashes{First: i + 1}
		}
	}
	if len(msg.IDs) > 0 || msg.Size != 0 {
		if err := op.Conn.WriteJSON(agentproto.FrameMessage, msg); err != nil {
			return nil, err
		}
	}
	return nil, op.Conn.WriteJSON(agentproto.FrameMessage, diskHashes{End: true})
}

func hostDiskWrite(ctx context.Context, op *agent.Op) (any, error) {
	var a diskArgs
	if err := decodeArgs(op, &a); err != nil {
		return nil, err
	}
	if err := checkDiskArgs(a); err != nil {
		return nil, err
	}
	f, size, err := openUnused(a.Device, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st DiskStats
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var b diskBlock
		if err := op.Conn.ReadJSON(agentproto.FrameMessage, &b); err != nil {
			return st, fmt.Errorf("reading the next block: %w", err)
		}
		if b.End {
			break
		}
		off := int64(b.Index) * int64(a.BlockSize)
		if b.Index < 0 || off >= size {
			return st, fmt.Errorf("block %d is beyond the device's %d bytes", b.Index, size)
		}
		n := int64(0)
		for {
			t, p, err := op.Conn.ReadFrame()
			if err != nil {
				return st, fmt.Errorf("reading block %d: %w", b.Index, err)
			}
			if t == agentproto.FrameEOF {
				break
			}
			if t != agentproto.FrameData || n+int64(len(p)) > int64(a.BlockSize) || off+n+int64(len(p)) > size {
				return st, fmt.Errorf("block %d: unexpected %s frame of %d bytes", b.Index, t, len(p))
			}
			if _, err := f.WriteAt(p, off+n); err != nil {
				return st, fmt.Errorf("disk %s: write block %d: %w", a.Device, b.Index, err)
			}
			n += int64(len(p))
		}
		st.Blocks++
		st.Bytes += n
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("disk %s: sync: %w", a.Device, err)
	}
	return st, f.Close()
}
