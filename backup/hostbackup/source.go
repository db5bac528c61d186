package hostbackup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
)

// MinBlockSize and DefaultBlockSize bound a disk's fixed blocks.
const (
	MinBlockSize     = 1 << 20
	DefaultBlockSize = 4 << 20
	maxBlockSize     = 16 << 20
)

// now is the time given to the node of a disk or a dump (as restic's
// stdin backup does); tests may fix it.
var now = time.Now

// streamNode is the single file node a disk or a dump is stored as.
func streamNode(name string, size uint64) *repo.Node {
	t := now()
	return &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o600, ModTime: t, AccessTime: t, ChangeTime: t,
		UID: uint32(os.Geteuid()), GID: uint32(os.Getegid()), Size: size}
}

// disk reads a block device in fixed blocks; all-zero blocks are sent as
// such, never as data. With Freeze, the filesystem mounted from it is
// frozen for the read (and thawed by a dead-man should this agent die).
func (h *host) disk(ctx context.Context) error {
	bs := h.req.BlockSize
	if bs == 0 {
		bs = DefaultBlockSize
	}
	if bs < MinBlockSize || bs > maxBlockSize {
		return fmt.Errorf("host-backup: block size %d is outside 1 MiB–16 MiB", bs)
	}
	f, err := os.Open(h.req.Device)
	if err != nil {
		return fmt.Errorf("disk %s: %w", h.req.Device, unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("disk %s: %w", h.req.Device, err)
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return fmt.Errorf("disk %s: not a block device", h.req.Device)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("disk %s: size: %w", h.req.Device, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	mount, err := mountOf(h.req.Device)
	if err != nil {
		return err
	}
	h.res.Mount = mount
	switch {
	case !h.req.Freeze:
		h.res.NotFrozen = "the plan does not ask for freeze"
	case mount == "":
		h.res.NotFrozen = "no filesystem of it is mounted"
	default:
		thaw, err := freeze(ctx, mount, freezeBound(size))
		if err != nil {
			return fmt.Errorf("disk %s: %w", h.req.Device, err)
		}
		defer func() {
			if thaw != nil {
				thaw()
			}
		}()
		if err := h.readDisk(ctx, f, size, bs, false); err != nil {
			return err
		}
		t := thaw
		thaw = nil
		if err := t(); err != nil {
			return fmt.Errorf("disk %s: %w", h.req.Device, err)
		}
		h.res.Frozen = true
		return nil
	}
	return h.readDisk(ctx, f, size, bs, true)
}

// freezeBound is how long a filesystem may stay frozen before the
// dead-man thaws it: generous for reading size bytes at 20 MiB/s.
func freezeBound(size int64) time.Duration {
	return 2*time.Minute + time.Duration(size/(20<<20))*time.Second
}

var zeros [1 << 16]byte

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeros))
		if !bytes.Equal(b[:n], zeros[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// readDisk reads the device block by block. Reading and hashing overlap:
// one goroutine reads, up to GOMAXPROCS blocks are checked for zeros and
// hashed at once (once unasked, only checked), and the blocks are added
// in order. The blocks' buffers are reused once sent.
//
// fromDevice (a disk not frozen) lets an unasked block whose first page
// is not all zeros go without being read here at all: it is data,
// whatever the rest holds, and the kernel sends it from the device's page
// cache (agentproto.WriteFrameFrom), so readDisk then returns only once
// the sender is done with the device. A frozen disk's blocks are all read
// while it is frozen: what is sent is what was frozen.
func (h *host) readDisk(ctx context.Context, f *os.File, size int64, bs int, fromDevice bool) error {
	name := filepath.Base(h.req.Device)
	if err := h.addNode("/"+name, streamNode(name, uint64(size))); err != nil {
		return err
	}
	if err := h.flushNodes(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	par := runtime.GOMAXPROCS(0)
	blocks := make(chan *diskBlock, par)
	// as many as the window, the batch being filled and the blocks
	// being read and hashed hold
	h.spare = make(chan []byte, (h.window+batchBytes)/bs+2*par+2)
	go func() {
		defer close(blocks)
		sem := make(chan struct{}, par)
		for off := int64(0); off < size; {
			b := &diskBlock{off: off, n: int(min(int64(bs), size-off)), done: make(chan struct{})}
			off += int64(b.n)
			if err := h.readBlock(f, b, fromDevice && h.unasked.Load()); err != nil {
				b.err = fmt.Errorf("disk %s: read at %d: %w", h.req.Device, b.off, err)
			}
			if b.err != nil || b.buf == nil {
				close(b.done)
			} else {
				sem <- struct{}{}
				go func() {
					defer func() { <-sem }()
					if b.zero = isZero(b.buf); !b.zero && h.needIDs(ctx) {
						b.id = sha256.Sum256(b.buf)
					}
					close(b.done)
				}()
			}
			select {
			case blocks <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	spliced := false
	for b := range blocks {
		<-b.done
		if b.err != nil {
			return b.err
		}
		d := chunkData{b: b.buf, n: b.n}
		if b.buf == nil {
			d.dev, d.off, spliced = f, b.off, true
		}
		if err := h.addHashed(ctx, 0, d, b.id, b.zero); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.res.Files = 1
	if err := h.endFile(ctx, 0, uint64(size), nil); err != nil {
		return err
	}
	if !spliced {
		return nil
	}
	// the device is closed when this returns
	if err := h.flushContents(ctx); err != nil {
		return err
	}
	return h.drain()
}

// headSize is how much of a block is read to find it is data (a block
// whose first page is not all zeros).
const headSize = 4 << 10

// readBlock reads block b into a buffer; with head, only its first page
// when that is not all zeros (b.buf stays nil: the block is data, sent
// from the device).
func (h *host) readBlock(f *os.File, b *diskBlock, head bool) error {
	buf := h.block(b.n)
	at := 0
	if head {
		at = min(b.n, headSize)
		if err := readAt(f, buf[:at], b.off); err != nil {
			return err
		}
		if !isZero(buf[:at]) {
			h.recycle(buf)
			return nil
		}
	}
	if err := readAt(f, buf[at:], b.off+int64(at)); err != nil {
		return err
	}
	b.buf = buf
	return nil
}

// readAt fills p from f at off; a device that ends first is
// io.ErrUnexpectedEOF.
func readAt(f *os.File, p []byte, off int64) error {
	if _, err := f.ReadAt(p, off); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// diskBlock is one block of a disk being read: where it is, its data
// (nil: not read, sent from the device), and once done is closed,
// whether it is all zeros, its SHA-256, or why it could not be read.
type diskBlock struct {
	off  int64
	n    int
	buf  []byte
	zero bool
	id   repo.ID
	err  error
	done chan struct{}
}

// stream chunks a dump the host starts; a dump that fails (Wait) fails
// the operation: never a short snapshot.
func (h *host) stream(ctx context.Context) error {
	s := h.req.Stream
	if s == nil || s.Name == "" || filepath.Base(s.Name) != s.Name {
		return errors.New("host-backup: a stream needs a plain file name")
	}
	dumperMu.Lock()
	start := dumper
	dumperMu.Unlock()
	if start == nil {
		return fmt.Errorf("%s dump: this build's agent cannot dump databases (backup/dbdump is not in it)", s.Engine)
	}
	if err := h.addNode("/"+s.Name, streamNode(s.Name, 0)); err != nil {
		return err
	}
	if err := h.flushNodes(); err != nil {
		return err
	}
	d, err := start(ctx, *s)
	if err != nil {
		return fmt.Errorf("%s dump of %s: %w", s.Engine, s.Name, err)
	}
	rd, err := h.holdUntilPolynomial(d)
	var size uint64
	if err == nil {
		size, err = h.chunkStream(ctx, 0, rd)
	}
	if werr := d.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("%s dump %s: %w", s.Engine, s.Name, err)
	}
	h.res.Files = 1
	return h.endFile(ctx, 0, size, nil)
}

// holdMax bounds the dump output held while the chunker polynomial is
// still to come: a dump that outruns it waits on its pipe.
const holdMax = 32 << 20

// holdUntilPolynomial returns d as the chunker is to read it. A dump
// started before the control node had opened the repository (a Request
// without the polynomial) runs meanwhile: what it writes is read and held,
// up to holdMax, until the polynomial comes (recv), and is then read first.
// The dump's own end or failure while held is kept for after the held
// bytes, where the chunker meets it as it would have.
func (h *host) holdUntilPolynomial(d io.Reader) (io.Reader, error) {
	var held []byte
	var rerr error
	for {
		h.mu.Lock()
		for h.err == nil && h.ch == nil && (len(held) >= holdMax || rerr != nil) {
			h.cond.Wait()
		}
		ready, err := h.ch != nil, h.err
		h.mu.Unlock()
		if err != nil {
			return nil, fatal{err}
		}
		if ready {
			break
		}
		if len(held) == cap(held) {
			held = slices.Grow(held, min(max(len(held), 1<<20), holdMax-len(held)))
		}
		n, err := d.Read(held[len(held):min(cap(held), holdMax)])
		held = held[:len(held)+n]
		if err != nil {
			rerr = err
		}
	}
	if held == nil {
		return d, nil
	}
	var rest io.Reader = d
	if rerr != nil {
		rest = errReader{rerr}
	}
	return io.MultiReader(bytes.NewReader(held), rest), nil
}

// errReader is a reader that has ended with err (io.EOF: at its end).
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
