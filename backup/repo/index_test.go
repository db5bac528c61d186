package repo

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/internal/testenv"
)

func synthID(i int) ID {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func TestIndex(t *testing.T) {
	x := NewIndex()
	pack := synthID(-1)
	for i := 0; i < 100000; i++ {
		x.Add(PackedBlob{BlobHandle: BlobHandle{ID: synthID(i), Type: DataBlob}, Pack: pack, Offset: uint32(i), Length: 10, UncompressedLength: uint32(i % 3)})
	}
	for _, tc := range []struct {
		i    int
		typ  BlobType
		want bool
	}{{0, DataBlob, true}, {99999, DataBlob, true}, {100000, DataBlob, false}, {5, TreeBlob, false}} {
		pb, ok := x.Lookup(BlobHandle{ID: synthID(tc.i), Type: tc.typ})
		if ok != tc.want || (ok && (pb.Offset != uint32(tc.i) || pb.Pack != pack || pb.UncompressedLength != uint32(tc.i%3))) {
			t.Errorf("lookup %d/%v = %+v %v", tc.i, tc.typ, pb, ok)
		}
	}
	x.Add(PackedBlob{BlobHandle: BlobHandle{ID: synthID(7), Type: DataBlob}, Pack: synthID(-2), Offset: 1})
	if all := x.LookupAll(BlobHandle{ID: synthID(7), Type: DataBlob}); len(all) != 2 {
		t.Errorf("LookupAll found %d copies, want 2", len(all))
	}
	if x.Len() != 100001 || len(x.Packs()) != 2 {
		t.Errorf("Len %d, packs %d", x.Len(), len(x.Packs()))
	}
}

func rssKiB(t *testing.T, field string) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		testenv.Skip(t, "no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// TestIndexMemory holds 10 million synthetic entries and checks the
// peak RSS stays under 700 MiB (the bound; ~64 bytes per blob).
func TestIndexMemory(t *testing.T) {
	testenv.Short(t, "10M-entry index")
	const n = 10_000_000
	debug.FreeOSMemory()
	before := rssKiB(t, "VmRSS")
	x := NewIndex()
	var pack ID
	for i := 0; i < n; i++ {
		if i%5000 == 0 {
			pack = synthID(-i - 1)
		}
		x.Add(PackedBlob{BlobHandle: BlobHandle{ID: synthID(i), Type: DataBlob}, Pack: pack, Offset: uint32(i), Length: 1000})
	}
	for i := 0; i < n; i += 997 {
		if !x.Has(BlobHandle{ID: synthID(i), Type: DataBlob}) {
			t.Fatalf("entry %d lost", i)
		}
	}
	runtime.GC()
	peak := rssKiB(t, "VmHWM")
	perBlob := float64(peak-before) * 1024 / n
	t.Logf("10M entries: RSS %d MiB before, peak %d MiB (%.1f bytes/blob)", before>>10, peak>>10, perBlob)
	if perBlob > 64 {
		t.Errorf("index holds %.1f bytes per blob, want ≤ 64", perBlob)
	}
	if peak > 700<<10 {
		t.Errorf("peak RSS %d MiB, want under 700 MiB", peak>>10)
	}
	runtime.KeepAlive(x)
}

// TestIndexRemove: Remove drops one copy of a blob, the one in the pack
// named, and leaves its other copies and its neighbours; a pack left
// without entries is no longer among Packs.
func TestIndexRemove(t *testing.T) {
	p1, p2 := synthID(-1), synthID(-2)
	blob := func(i int) BlobHandle { return BlobHandle{ID: synthID(i), Type: DataBlob} }
	for _, tc := range []struct {
		name      string
		remove    PackedBlob
		removed   bool
		copies    int // of blob 7 left
		packs     int
		neighbour bool // blob 8, in p1, still indexed
	}{
		{name: "one of two copies", remove: PackedBlob{BlobHandle: blob(7), Pack: p2}, removed: true, copies: 1, packs: 1, neighbour: true},
		{name: "the other copy", remove: PackedBlob{BlobHandle: blob(7), Pack: p1}, removed: true, copies: 1, packs: 2, neighbour: true},
		{name: "the neighbour", remove: PackedBlob{BlobHandle: blob(8), Pack: p1}, removed: true, copies: 2, packs: 2},
		{name: "a pack without that blob", remove: PackedBlob{BlobHandle: blob(8), Pack: p2}, copies: 2, packs: 2, neighbour: true},
		{name: "an unknown pack", remove: PackedBlob{BlobHandle: blob(7), Pack: synthID(-3)}, copies: 2, packs: 2, neighbour: true},
		{name: "an unknown blob", remove: PackedBlob{BlobHandle: blob(9), Pack: p1}, copies: 2, packs: 2, neighbour: true},
		{name: "the same ID as a tree", remove: PackedBlob{BlobHandle: BlobHandle{ID: synthID(7), Type: TreeBlob}, Pack: p1}, copies: 2, packs: 2, neighbour: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := NewIndex()
			x.Add(PackedBlob{BlobHandle: blob(7), Pack: p1})
			x.Add(PackedBlob{BlobHandle: blob(8), Pack: p1, Offset: 10})
			x.Add(PackedBlob{BlobHandle: blob(7), Pack: p2})
			if got := x.Remove(tc.remove); got != tc.removed {
				t.Errorf("Remove = %v, want %v", got, tc.removed)
			}
			all := x.LookupAll(blob(7))
			if len(all) != tc.copies || slices.ContainsFunc(all, func(pb PackedBlob) bool {
				return tc.removed && tc.remove.BlobHandle == blob(7) && pb.Pack == tc.remove.Pack
			}) {
				t.Errorf("copies left %v; want %d, none in pack %.8s", all, tc.copies, tc.remove.Pack)
			}
			wantLen := 3
			if tc.removed {
				wantLen--
			}
			if len(x.Packs()) != tc.packs || x.Len() != wantLen {
				t.Errorf("packs %d, Len %d; want %d packs, Len %d", len(x.Packs()), x.Len(), tc.packs, wantLen)
			}
			if x.Has(blob(8)) != tc.neighbour {
				t.Errorf("neighbour indexed: %v", x.Has(blob(8)))
			}
		})
	}
}
