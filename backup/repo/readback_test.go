package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/backend/s3/s3test"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// loadLog records the pack loads of a faulty backend.
type loadLog struct {
	mu            sync.Mutex
	whole, ranged map[string]int // pack name → loads of the whole pack / of a range
}

func watchLoads(fb *faulty.Backend) *loadLog {
	l := &loadLog{whole: map[string]int{}, ranged: map[string]int{}}
	fb.OnLoad = func(h backend.Handle, length int, offset int64) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if length == 0 && offset == 0 {
			l.whole[h.Name]++
		} else {
			l.ranged[h.Name]++
		}
	}
	return l
}

// readBackRepo is a repository on a faulty memory backend (packs
// counted) with the read-back on.
func readBackRepo(t *testing.T, ctx context.Context) (*Repository, *faulty.Backend) {
	t.Helper()
	fb := faulty.New(mem.New())
	fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	r, err := Init(context.Background(), fb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	r.VerifyWrites(ctx)
	return r, fb
}

func randomBlob(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// TestReadBack: each pack stored is read back once, whole, and checked;
// a pack the store damaged fails exactly the blobs the damage touches
// (all of them when the pack as a whole is wrong), each error naming the
// blob and the pack; the other blobs, in the same pack or not, are
// verified — a damaged pack's sound blobs in a new pack their flush
// stores them into (no index file lists a pack that failed its
// read-back).
func TestReadBack(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one data pack
	const size = 64 << 10                           // random: stored as it is, size+32 bytes sealed
	isData := func(h backend.Handle, b []byte) bool { return h.Type == backend.PackFile && len(b) > size }
	var r *Repository // the mangles re-seal headers with its key
	for _, tc := range []struct {
		name   string
		mangle func(b []byte) []byte // of the data pack
		fail   int                   // load number that fails
		bad    []string              // blobs not verified
		msg    string
		// hit: the damage touches single blobs (the pack's sound ones
		// are stored again and verified in their new pack)
		hit []string
	}{
		{name: "sound"},
		// a data blob's MAC is compared with the one written, not
		// computed again: a changed IV or ciphertext shows in the hash
		{name: "a byte of blob b", mangle: func(b []byte) []byte { b[size+32+100] ^= 1; return b },
			bad: []string{"b"}, hit: []string{"b"}, msg: "content does not match its ID"},
		{name: "a byte of blob b's IV", mangle: func(b []byte) []byte { b[size+32+3] ^= 1; return b },
			bad: []string{"b"}, hit: []string{"b"}, msg: "content does not match its ID"},
		{name: "a byte of blob b's MAC", mangle: func(b []byte) []byte { b[2*(size+32)-1] ^= 1; return b },
			bad: []string{"b"}, hit: []string{"b"}, msg: "its MAC is not the one written"},
		{name: "a byte of the header", mangle: func(b []byte) []byte { b[len(b)-10] ^= 1; return b },
			bad: []string{"a", "b", "c"}, msg: "header"},
		{name: "the last byte lost", mangle: func(b []byte) []byte { return b[:len(b)-1] },
			bad: []string{"a", "b", "c"}, msg: "bytes written"},
		{name: "a byte more", mangle: func(b []byte) []byte { return append(b, 0) },
			bad: []string{"a", "b", "c"}, msg: "is longer than the"},
		{name: "a header listing other blobs", mangle: func(b []byte) []byte {
			// a sound header (MAC, length) with blobs a and b swapped
			hl := int(binary.LittleEndian.Uint32(b[len(b)-4:]))
			hdr, err := r.key.Open(nil, b[len(b)-4-hl:len(b)-4])
			if err != nil {
				panic(err)
			}
			e := entrySize
			tmp := bytes.Clone(hdr[:e])
			copy(hdr[:e], hdr[e:2*e])
			copy(hdr[e:2*e], tmp)
			sealed := r.key.Seal(nil, hdr)
			return append(append(b[:len(b)-4-hl], sealed...), b[len(b)-4:]...)
		}, bad: []string{"a", "b", "c"}, msg: "the header lists other blobs than were written"},
		{name: "every load fails", fail: -1, bad: []string{"a", "b", "c", "tree"}, msg: "injected failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var fb *faulty.Backend
			r, fb = readBackRepo(t, ctx)
			// the packs stored: a failed copy leaves the index
			var mu sync.Mutex
			var dataPack, treePack, resaved string
			fb.Mangle = func(h backend.Handle, b []byte) []byte {
				mu.Lock()
				defer mu.Unlock()
				if !isData(h, b) {
					treePack = h.Name
					return nil
				}
				if dataPack != "" { // the sound blobs, stored again
					resaved = h.Name
					return nil
				}
				dataPack = h.Name
				if tc.mangle != nil {
					return tc.mangle(b)
				}
				return nil
			}
			if tc.fail < 0 {
				fb.FailLoad[1], fb.FailLoad[2] = true, true
			}
			loads := watchLoads(fb)
			blobs := map[string]BlobHandle{}
			for i, name := range []string{"a", "b", "c"} {
				id, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(byte(i), size), ID{})
				if err != nil {
					t.Fatal(err)
				}
				blobs[name] = BlobHandle{ID: id, Type: DataBlob}
			}
			tid, err := r.SaveTree(ctx, &Tree{Nodes: []*Node{{Name: "f", Type: NodeFile}}})
			if err != nil {
				t.Fatal(err)
			}
			blobs["tree"] = BlobHandle{ID: tid, Type: TreeBlob}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			for name, bh := range blobs {
				err := r.WaitVerified(ctx, []BlobHandle{bh})
				pack := dataPack
				if name == "tree" {
					pack = treePack
				}
				want := slicesContains(tc.bad, name)
				switch {
				case !want && err != nil:
					t.Errorf("blob %s: %v; want it verified", name, err)
				case want && err == nil:
					t.Errorf("blob %s verified; want it failed", name)
				case want && !(strings.Contains(err.Error(), bh.ID.Str()) && strings.Contains(err.Error(), pack[:8]) && strings.Contains(err.Error(), tc.msg)):
					t.Errorf("blob %s: %q; want it to name blob %s, pack %.8s and say %q", name, err, bh.ID.Str(), pack, tc.msg)
				}
				if want == r.Index().Has(bh) {
					t.Errorf("blob %s: in the index %v; want a failed copy out of it", name, !want)
				}
			}
			all := []BlobHandle{blobs["a"], blobs["b"], blobs["c"], blobs["tree"]}
			err = r.WaitVerified(ctx, all)
			if len(tc.bad) > 1 && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("(and %d more blobs not verified)", len(tc.bad)-1))) {
				t.Errorf("all blobs at once: %v; want %d failures counted", err, len(tc.bad))
			}
			// each pack read back once, whole; nothing read blob by blob
			// but the sound blobs of a pack that failed in part, copied
			// into a new pack (itself read back)
			loads.mu.Lock()
			defer loads.mu.Unlock()
			packs, ranged := []string{dataPack, treePack}, 0
			if tc.hit != nil {
				packs, ranged = append(packs, resaved), 3-len(tc.hit)
			}
			if len(loads.whole) != len(packs) || len(loads.ranged) != min(ranged, 1) || loads.ranged[dataPack] != ranged {
				t.Errorf("whole loads %v, range loads %v; want the %d packs once each and %d blobs of the damaged one", loads.whole, loads.ranged, len(packs), ranged)
			}
			for _, p := range packs {
				if loads.whole[p] != 1 {
					t.Errorf("pack %.8s read back %d times", p, loads.whole[p])
				}
			}
			wantChecked := int64(4 + ranged)
			if tc.hit == nil && len(tc.bad) > 1 || tc.fail != 0 { // the pack as a whole failed
				wantChecked = 1 // only the tree pack's blob got as far
				if tc.fail < 0 {
					wantChecked = 0
				}
			}
			if n := r.rb.Load().checked.Load(); n != wantChecked {
				t.Errorf("%d blobs checked, want %d", n, wantChecked)
			}
		})
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestReadBackOtherPacks: a blob in no pack read back (stored before
// VerifyWrites, as by an earlier run) is read and checked by
// WaitVerified itself, and a damaged one fails.
func TestReadBackOtherPacks(t *testing.T) {
	ctx := context.Background()
	fb := faulty.New(mem.New())
	fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	r, err := Init(ctx, fb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var old []BlobHandle
	for i := range 3 {
		id, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(byte(i), 1000), ID{})
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, BlobHandle{ID: id, Type: DataBlob})
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.VerifyWrites(ctx)
	loads := watchLoads(fb)
	id, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(9, 1000), ID{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitVerified(ctx, append(old, BlobHandle{ID: id, Type: DataBlob})); err != nil {
		t.Fatal(err)
	}
	loads.mu.Lock()
	nw, nr := len(loads.whole), 0
	for _, n := range loads.ranged {
		nr += n
	}
	loads.mu.Unlock()
	if nw != 1 || nr != 3 {
		t.Errorf("%d packs read back whole, %d blobs read by range; want 1 and 3", nw, nr)
	}
	// the next load (an old blob's) returns a flipped byte
	fb.Corrupt[5] = 20 // loads 1-4 above
	if err := r.WaitVerified(ctx, old[:1]); err == nil || !strings.Contains(err.Error(), old[0].ID.Str()) {
		t.Errorf("damaged old blob: %v", err)
	}
	if err := r.WaitVerified(ctx, []BlobHandle{{ID: ID{1}, Type: DataBlob}}); err == nil || !strings.Contains(err.Error(), "not in the index") {
		t.Errorf("unknown blob: %v", err)
	}
}

// TestReadBackBounded: at most GOMAXPROCS packs are read back at once
// however many wait; a cancelled wait returns at once while the
// read-backs go on, and read-backs whose context ended fail; the next
// run's VerifyWrites bounds the read-backs from then on.
func TestReadBackBounded(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	ctx := context.Background()
	r, fb := readBackRepo(t, ctx)
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	fb.OnLoad = func(backend.Handle, int, int64) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	}
	var bhs []BlobHandle
	for i := range 6 { // each closes the pack before it: five stored, read back
		id, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(byte(i), PackSize), ID{})
		if err != nil {
			t.Fatal(err)
		}
		bhs = append(bhs, BlobHandle{ID: id, Type: DataBlob})
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		mu.Lock()
		n := inFlight
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d read-backs under way, want 2", n)
		}
		time.Sleep(time.Millisecond)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := r.WaitVerified(waitCtx, bhs[:5]); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait with a context that ends: %v", err)
	}
	close(release)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitVerified(ctx, bhs); err != nil {
		t.Fatal(err)
	}
	if most != 2 {
		t.Errorf("%d packs read back at once, want 2 (GOMAXPROCS)", most)
	}

	// the read-backs' context ends: what is not read back yet fails
	stop, cancelStop := context.WithCancelCause(ctx)
	cancelStop(errors.New("run interrupted"))
	r2, _ := readBackRepo(t, stop)
	id, _, err := r2.SaveBlob(ctx, DataBlob, randomBlob(7, 1000), ID{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.WaitVerified(ctx, []BlobHandle{{ID: id, Type: DataBlob}}); err == nil || !strings.Contains(err.Error(), "not read back: run interrupted") {
		t.Errorf("read-back after its context ended: %v", err)
	}

	// the next run in the same process: its context bounds the packs
	// stored from now on, which are read back and verified (the failed
	// blob left the index and is stored again)
	r2.VerifyWrites(ctx)
	if _, _, err := r2.SaveBlob(ctx, DataBlob, randomBlob(7, 1000), ID{}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.WaitVerified(ctx, []BlobHandle{{ID: id, Type: DataBlob}}); err != nil {
		t.Errorf("read-back in the next run: %v", err)
	}
	// a run still under way keeps its context: a later call changes nothing
	other, cancelOther := context.WithCancel(ctx)
	r2.VerifyWrites(other)
	cancelOther()
	if _, _, err := r2.SaveBlob(ctx, DataBlob, randomBlob(8, 1000), ID{}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.WaitVerified(ctx, []BlobHandle{{ID: Hash(randomBlob(8, 1000)), Type: DataBlob}}); err != nil {
		t.Errorf("read-back while the first run's context lasts: %v", err)
	}
}

// TestReadBackS3Lab: on the lab's S3 server (versitygw) each pack is
// read back right after its upload, once and whole (read-after-write),
// and every blob saved is checked once and verified.
func TestReadBackS3Lab(t *testing.T) {
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	ctx := context.Background()
	be, err := s3be.Open(ctx, s3test.Bucket(t, lab))
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(be)
	fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	r, err := Init(ctx, fb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	r.VerifyWrites(ctx)
	loads := watchLoads(fb)
	const n = 40 // 1 MiB each: a few packs
	bhs := make([]BlobHandle, n)
	var g errgroup.Group
	for i := range n {
		g.Go(func() error {
			id, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(byte(i), 1<<20), ID{})
			bhs[i] = BlobHandle{ID: id, Type: DataBlob}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitVerified(ctx, bhs); err != nil {
		t.Fatal(err)
	}
	packs := r.Index().Packs()
	loads.mu.Lock()
	defer loads.mu.Unlock()
	if len(packs) < 2 || len(loads.whole) != len(packs) || len(loads.ranged) != 0 {
		t.Errorf("%d packs; whole loads %v, range loads %v; want each pack read back once", len(packs), loads.whole, loads.ranged)
	}
	for _, p := range packs {
		if loads.whole[p.String()] != 1 {
			t.Errorf("pack %s read back %d times", p.Str(), loads.whole[p.String()])
		}
	}
	if c := r.rb.Load().checked.Load(); c != n {
		t.Errorf("%d blobs checked, want %d", c, n)
	}
}

// BenchmarkVerifyWrites: 256 MiB of random 4 MiB blobs (a disk image's
// blocks) stored into a directory and verified, once read back pack by
// pack as they are stored (VerifyWrites) and once loaded blob by blob
// after the flush (what a host backup's verification did before). tail-ms is the
// time from the flush to the verdict, the part a backup waits for after
// its last byte; total-ms includes the writing. go test -bench
// VerifyWrites -run ^$ ./backup/repo/
func BenchmarkVerifyWrites(b *testing.B) {
	const blobs, size = 64, 4 << 20
	data := make([][]byte, blobs)
	for i := range data {
		data[i] = randomBlob(byte(i), size)
	}
	for _, readBack := range []bool{true, false} {
		name := "after-flush"
		if readBack {
			name = "read-back"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(blobs * size)
			var tail, total time.Duration
			for range b.N {
				b.StopTimer()
				be, err := local.Create(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				r, err := Init(ctx, be, "pw")
				if err != nil {
					b.Fatal(err)
				}
				if readBack {
					r.VerifyWrites(ctx)
				}
				b.StartTimer()
				start := time.Now()
				bhs := make([]BlobHandle, blobs)
				var g errgroup.Group
				g.SetLimit(runtime.GOMAXPROCS(0))
				for i := range data {
					g.Go(func() error {
						id, _, err := r.SaveBlob(ctx, DataBlob, data[i], ID{})
						bhs[i] = BlobHandle{ID: id, Type: DataBlob}
						return err
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
				if err := r.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				flushed := time.Now()
				if err := r.WaitVerified(ctx, bhs); err != nil {
					b.Fatal(err)
				}
				tail += time.Since(flushed)
				total += time.Since(start)
			}
			b.ReportMetric(float64(tail.Milliseconds())/float64(b.N), "tail-ms")
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "total-ms")
		})
	}
}

// TestReadBackCompressedFrameBit: a compressed blob's read-back checks
// its MAC. zstd ignores the frame header's unused bit, so a flip there
// decompresses to the same bytes and the same ID: without the MAC the
// read-back would vouch for a blob no restore can open.
func TestReadBackCompressedFrameBit(t *testing.T) {
	ctx := context.Background()
	r, fb := readBackRepo(t, ctx)
	fb.Mangle = func(h backend.Handle, b []byte) []byte {
		b[ivSizeForTest+4] ^= 1 << 4 // the first blob: IV, zstd magic, then the frame header descriptor
		return b
	}
	data := bytes.Repeat([]byte("holiday compressible line\n"), 4096)
	id, _, err := r.SaveBlob(ctx, DataBlob, data, ID{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitVerified(ctx, []BlobHandle{{ID: id, Type: DataBlob}}); err == nil || !strings.Contains(err.Error(), "ciphertext verification failed") {
		t.Fatalf("a compressed blob with its frame's unused bit flipped: %v; want its MAC to fail it", err)
	}
}

// ivSizeForTest is the IV's length at the start of a sealed blob.
const ivSizeForTest = 16
