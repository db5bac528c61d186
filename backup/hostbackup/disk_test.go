package hostbackup

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// headZeros in a seed of writeDisk zeroes its block's first page.
const headZeros = 1 << 20

// writeDisk writes an image of len(seeds) blocks of bs bytes: seed 0 is
// a block of zeros, any other the random bytes of that seed (the same
// seed twice, the same block twice).
func writeDisk(t *testing.T, seeds []uint64, bs int) (string, []byte) {
	t.Helper()
	img := make([]byte, len(seeds)*bs)
	for i, s := range seeds {
		if s != 0 {
			b := img[i*bs : (i+1)*bs]
			rand.NewChaCha8([32]byte{byte(s), byte(s >> 8), byte(s >> 16)}).Read(b)
			if s&headZeros != 0 {
				clear(b[:headSize])
			}
		}
	}
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, img
}

// frameTap records the host's messages and may rewrite them (lie, when
// set, gets each frame and the messages before it).
type frameTap struct {
	mu  sync.Mutex
	ups []Up
	lie func(ft agentproto.FrameType, p []byte, ups []Up) []byte
}

func (ft *frameTap) tamper(t agentproto.FrameType, p []byte) []byte {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	if ft.lie != nil {
		p = ft.lie(t, p, ft.ups)
	}
	if t == agentproto.FrameMessage {
		var u Up
		if json.Unmarshal(p, &u) == nil {
			ft.ups = append(ft.ups, u)
		}
	}
	return p
}

func (ft *frameTap) messages() []Up {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.ups
}

// backupDisk backs up the image at path as a disk of bs-byte blocks,
// the host holding at most two blocks of chunk data (a window smaller
// than a batch: the host waits for each answer before its next batch);
// frozen: every block is read on the host (none sent from the device).
func backupDisk(t *testing.T, s *Store, hostname, path string, bs int, known *Known, tap *frameTap, frozen bool) (*repo.Snapshot, Stats, error) {
	t.Helper()
	req := Request{Source: SourceDisk, Device: "/dev/test-disk", BlockSize: bs}
	l := startHostWith(t, tap.tamper, func(ctx context.Context, conn *agentproto.Conn) (*Result, error) {
		h := newHost(conn, req)
		h.window = 2 * bs
		return h.serve(ctx, func(h *host, ctx context.Context) error {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			return h.readDisk(ctx, f, fi.Size(), bs, !frozen)
		})
	})
	sn, _, st, err := Backup(context.Background(), s, l, req, Options{Hostname: hostname, Paths: []string{req.Device}, Known: known})
	return sn, st, err
}

// unaskedUps counts the host's Up{Unasked} messages and whether any of
// them offered a chunk ID.
func unaskedUps(ups []Up) (n int, withID bool) {
	for _, u := range ups {
		if !u.Unasked {
			continue
		}
		n++
		for _, c := range u.Contents {
			for _, ch := range c.Chunks {
				withID = withID || !ch.ID.IsNull()
			}
		}
	}
	return n, withID
}

// TestDiskUnasked: a host the repository knows nothing of is asked for
// its first batch by ID and told to send the rest unasked: no IDs, no
// wants, zero blocks still never crossing, a block repeated within the
// disk crossing twice but stored once; the snapshot holds the image byte
// for byte and reads back, whether the blocks went from the device
// (spliced into the pipe) or, frozen, were all read by the host. Once the
// host has a snapshot, its next backup is asked by ID again (nothing
// crosses); another host is told nothing of the first one's blocks.
func TestDiskUnasked(t *testing.T) {
	const bs = 64 << 10
	// 4 batches of 8 MiB (128 blocks not zeros each); every fifth block
	// is zeros, block 450 repeats block 200, blocks 7 and 300 start with
	// a page of zeros
	var seeds []uint64
	nonzero, unique := 0, map[uint64]bool{}
	for i := range 500 {
		seed := uint64(i + 1)
		switch {
		case i%5 == 1:
			seed = 0
		case i == 450:
			seed = seeds[200]
		case i == 7 || i == 300:
			seed |= headZeros
		}
		seeds = append(seeds, seed)
		if seed != 0 {
			nonzero++
			unique[seed] = true
		}
	}
	path, img := writeDisk(t, seeds, bs)

	for _, frozen := range []bool{false, true} {
		t.Run(map[bool]string{false: "from the device", true: "frozen"}[frozen], func(t *testing.T) {
			s, r := testRepo(t)
			tap := &frameTap{}
			first, st, err := backupDisk(t, s, "h1", path, bs, nil, tap, frozen)
			if err != nil {
				t.Fatal(err)
			}
			ups := tap.messages()
			n, withID := unaskedUps(ups)
			if n == 0 || withID {
				t.Errorf("first backup: %d unasked batches (offering IDs: %v); want the batches after the first unasked, without IDs", n, withID)
			}
			if len(ups) < 2 || len(ups[1].Contents) == 0 || ups[1].Unasked || ups[1].Contents[0].Chunks[0].ID.IsNull() {
				t.Errorf("the first batch was not offered by ID: %+v", ups[1:2])
			}
			if st.BlobsSent != int64(nonzero) || st.BytesSent != int64(nonzero*bs) {
				t.Errorf("first backup sent %d chunks, %d bytes; want the %d blocks not zeros (the repeated one twice), %d bytes", st.BlobsSent, st.BytesSent, nonzero, nonzero*bs)
			}
			if len(st.NewBlobs) != len(unique) {
				t.Errorf("first backup: %d new blobs; want %d (the repeat stored once)", len(st.NewBlobs), len(unique))
			}
			if got, ok := content(t, r, first, "/test-disk"); !ok || !bytes.Equal([]byte(got), img) {
				t.Fatalf("the image read back differs (found %v, %d bytes of %d)", ok, len(got), len(img))
			}
			if err := verify(context.Background(), r, *first.Tree, st); err != nil {
				t.Errorf("verify: %v", err)
			}
			if frozen {
				return
			}

			// the host's own blocks now: offered by ID, none sent
			known, err := HostKnown(context.Background(), r, "h1")
			if err != nil {
				t.Fatal(err)
			}
			tap = &frameTap{}
			second, st, err := backupDisk(t, s, "h1", path, bs, known, tap, frozen)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := unaskedUps(tap.messages()); n != 0 || st.BlobsSent != 0 {
				t.Errorf("second backup: %d unasked batches, %d chunks sent; want every block offered by ID and none sent", n, st.BlobsSent)
			}
			if got, _ := content(t, r, second, "/test-disk"); !bytes.Equal([]byte(got), img) {
				t.Error("the second snapshot's image differs")
			}

			// another host with the same blocks: sends them all, unasked
			known, _ = HostKnown(context.Background(), r, "h2")
			tap = &frameTap{}
			if _, st, err = backupDisk(t, s, "h2", path, bs, known, tap, frozen); err != nil || st.BlobsSent != int64(nonzero) {
				t.Errorf("another host's first backup: %d chunks sent, %v; want all %d", st.BlobsSent, err, nonzero)
			}
		})
	}
}

// TestUnaskedLies: a host that sends unasked before it is told, offers an
// ID in an unasked batch, sends another length than it announced or
// claims a zero chunk larger than a disk block (the control node would
// allocate it) fails
// the backup, and no snapshot is stored; a file tree is never told to
// send unasked.
func TestUnaskedLies(t *testing.T) {
	const bs = 64 << 10
	var seeds []uint64
	for i := range 300 {
		seeds = append(seeds, uint64(i%250+1))
	}
	path, _ := writeDisk(t, seeds, bs)
	unaskedSeen := func(ups []Up) bool {
		n, _ := unaskedUps(ups)
		return n > 0
	}
	for _, tc := range []struct {
		name string
		lie  func(ft agentproto.FrameType, p []byte, ups []Up) []byte
		want string
	}{
		{"unasked before told", func(ft agentproto.FrameType, p []byte, ups []Up) []byte {
			var u Up
			if ft != agentproto.FrameMessage || json.Unmarshal(p, &u) != nil || len(u.Contents) == 0 {
				return p
			}
			u.Unasked = true
			for i := range u.Contents {
				for j := range u.Contents[i].Chunks {
					u.Contents[i].Chunks[j].ID = repo.ID{}
				}
			}
			b, _ := json.Marshal(u)
			return b
		}, "sent chunks unasked before it was told to"},
		{"an ID offered unasked", func(ft agentproto.FrameType, p []byte, ups []Up) []byte {
			var u Up
			if ft != agentproto.FrameMessage || json.Unmarshal(p, &u) != nil || !u.Unasked {
				return p
			}
			u.Contents[0].Chunks[0].ID = repo.ID{7}
			b, _ := json.Marshal(u)
			return b
		}, "an unasked chunk with an ID"},
		{"another length", func(ft agentproto.FrameType, p []byte, ups []Up) []byte {
			if ft == agentproto.FrameData && unaskedSeen(ups) {
				return p[:len(p)-1]
			}
			return p
		}, "announced a chunk of 65536 bytes and sent 65535"},
		{"a zero chunk of 2 GiB", func(ft agentproto.FrameType, p []byte, ups []Up) []byte {
			var u Up
			if ft != agentproto.FrameMessage || json.Unmarshal(p, &u) != nil || len(u.Contents) == 0 || u.Unasked {
				return p
			}
			u.Contents[0].Chunks[0] = Chunk{Zero: true, Len: 1 << 31}
			b, _ := json.Marshal(u)
			return b
		}, "a zero chunk of 2147483648 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, r := testRepo(t)
			sn, _, err := backupDisk(t, s, "liar", path, bs, nil, &frameTap{lie: tc.lie}, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) || sn != nil {
				t.Fatalf("snapshot %v, err %v; want %q and no snapshot", sn, err, tc.want)
			}
			if sns, _ := r.Snapshots(context.Background(), nil); len(sns) != 0 {
				t.Errorf("%d snapshots after a lying host", len(sns))
			}
		})
	}

	t.Run("files", func(t *testing.T) {
		s, _ := testRepo(t)
		src := t.TempDir()
		rnd := make([]byte, 12<<20)
		rand.NewChaCha8([32]byte{3}).Read(rnd)
		writeTree(t, src, map[string]string{"big": string(rnd)})
		req := Request{Source: SourceFiles, Paths: []string{src}, Polynomial: uint64(s.R.Config().ChunkerPolynomial)}
		tap := &frameTap{}
		if _, _, _, err := Backup(context.Background(), s, startHost(t, req, tap.tamper), req, Options{Hostname: "h", Paths: req.Paths}); err != nil {
			t.Fatal(err)
		}
		if n, _ := unaskedUps(tap.messages()); n != 0 {
			t.Errorf("a file tree sent %d batches unasked", n)
		}
	})
}
