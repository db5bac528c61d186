package repo

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// waitReadBacks waits until every pack registered for the read-back has
// its verdict.
func waitReadBacks(t *testing.T, r *Repository, packs int) {
	t.Helper()
	rb := r.rb.Load()
	for deadline := time.Now().Add(10 * time.Second); ; {
		rb.mu.Lock()
		var cs []*packCheck
		for _, c := range rb.packs {
			cs = append(cs, c)
		}
		rb.mu.Unlock()
		if len(cs) >= packs && !slices.ContainsFunc(cs, func(c *packCheck) bool { return !c.over() }) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d packs registered for the read-back, want %d, all over", len(cs), packs)
		}
		time.Sleep(time.Millisecond)
	}
}

// listedIn returns the packs each blob is listed in by the repository's
// index files.
func listedIn(t *testing.T, r *Repository) map[BlobHandle][]ID {
	t.Helper()
	ctx := context.Background()
	out := map[BlobHandle][]ID{}
	var ids []ID
	if err := r.List(ctx, backend.IndexFile, func(id ID, _ int64) error { ids = append(ids, id); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		f, err := r.LoadIndexFile(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Packs {
			for _, b := range p.Blobs {
				bh := BlobHandle{ID: b.ID, Type: b.Type}
				out[bh] = append(out[bh], p.ID)
			}
		}
	}
	return out
}

// localFaulty is a local backend in dir (stock restic can check it) whose
// pack files the test can damage.
func localFaulty(t *testing.T, dir string) *faulty.Backend {
	t.Helper()
	lb, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(lb)
	fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	return fb
}

// resticCheck runs stock restic's check (with --read-data: every pack
// the index lists is read and every blob in it hashed) on the repository
// in dir, whose password is pw.
func resticCheck(t *testing.T, dir string, readData bool) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); it is the format oracle")
	}
	args := []string{"-r", dir, "--no-cache", "check"}
	if readData {
		args = append(args, "--read-data")
	}
	cmd := exec.Command("restic", args...)
	cmd.Env = append(os.Environ(), "RESTIC_PASSWORD=pw")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestReadBackFailedCopies: a copy that fails its read-back leaves the
// in-memory index, so saving the blob again stores it; a pack whose
// verdict came before an index file listed it is never listed (its sound
// blobs are stored again first, so a snapshot relying on them is whole),
// and stock restic's check --read-data of the repository then passes:
// no index entry points at the damaged pack. A verdict still to come
// when the run's last index file is due holds it back (Flush waits): a
// pack that failed is then listed by none either: its sound blobs are
// stored again first, as for an earlier verdict (an index file lists a
// pack whole or not at all, restic's check wants it so).
func TestReadBackFailedCopies(t *testing.T) {
	const size = 64 << 10 // random: stored as it is, size+32 bytes sealed
	var r *Repository
	for _, tc := range []struct {
		name   string
		damage func(b []byte) // of the pack holding a, b and c
		early  bool           // the verdict comes before the index file is written
		bad    []string       // the blobs whose copies fail
	}{
		{name: "a blob, verdict before the index", damage: func(b []byte) { b[size+32+100] ^= 1 }, early: true, bad: []string{"b"}},
		{name: "the header, verdict before the index", damage: func(b []byte) { b[len(b)-10] ^= 1 }, early: true, bad: []string{"a", "b", "c"}},
		{name: "a blob, verdict as the index is due", damage: func(b []byte) { b[size+32+100] ^= 1 }, bad: []string{"b"}},
		{name: "the header, verdict as the index is due", damage: func(b []byte) { b[len(b)-10] ^= 1 }, bad: []string{"a", "b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one data pack being filled
			ctx := context.Background()
			dir := t.TempDir()
			fb := localFaulty(t, dir)
			var damaged atomic.Value // the damaged pack's name: the first pack stored
			fb.Mangle = func(h backend.Handle, b []byte) []byte {
				if damaged.CompareAndSwap(nil, h.Name) {
					tc.damage(b)
					return b
				}
				return nil
			}
			// late: the damaged pack's read-back waits until Flush waits
			// for it
			release := make(chan struct{})
			if !tc.early {
				fb.OnLoad = func(h backend.Handle, length int, offset int64) {
					if h.Name == damaged.Load() {
						<-release
					}
				}
			} else {
				close(release)
			}
			var err error
			if r, err = Init(ctx, fb, "pw"); err != nil {
				t.Fatal(err)
			}
			r.VerifyWrites(ctx)
			data := map[string][]byte{}
			blobs := map[string]BlobHandle{}
			for i, name := range []string{"a", "b", "c"} {
				data[name] = randomBlob(byte(i), size)
				id, _, err := r.SaveBlob(ctx, DataBlob, data[name], ID{})
				if err != nil {
					t.Fatal(err)
				}
				blobs[name] = BlobHandle{ID: id, Type: DataBlob}
			}
			if tc.early {
				// a blob that does not fit closes the pack: it is stored
				// and read back before any index file is written
				data["filler"] = randomBlob(9, PackSize)
				id, _, err := r.SaveBlob(ctx, DataBlob, data["filler"], ID{})
				if err != nil {
					t.Fatal(err)
				}
				blobs["filler"] = BlobHandle{ID: id, Type: DataBlob}
				waitReadBacks(t, r, 1)
			}
			if !tc.early {
				time.AfterFunc(100*time.Millisecond, func() { close(release) })
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			waitReadBacks(t, r, 1)
			bad := damaged.Load().(string)

			// the failed copies are out of the in-memory index: saving
			// them again stores them
			for name, bh := range blobs {
				isBad := slices.Contains(tc.bad, name)
				inBad := slices.ContainsFunc(r.Index().LookupAll(bh), func(pb PackedBlob) bool { return pb.Pack.String() == bad })
				if inBad {
					t.Errorf("blob %s: still indexed in the damaged pack %.8s", name, bad)
				}
				if !isBad && !r.Index().Has(bh) {
					t.Errorf("sound blob %s is not in the index", name)
				}
				if err := r.WaitVerified(ctx, []BlobHandle{bh}); (err == nil) == isBad {
					t.Errorf("blob %s: WaitVerified %v; want it failed: %v", name, err, isBad)
				} else if err != nil && !strings.Contains(err.Error(), bad[:8]) {
					t.Errorf("blob %s: %v; want the damaged pack %.8s named", name, err, bad)
				}
			}
			for _, name := range tc.bad {
				if _, known, err := r.SaveBlob(ctx, DataBlob, data[name], ID{}); err != nil || known {
					t.Errorf("blob %s saved again: known %v, %v; want it stored", name, known, err)
				}
			}
			tree, err := r.SaveTree(ctx, &Tree{Nodes: []*Node{{Name: "f", Type: NodeFile, Mode: 0o644,
				Content: []ID{blobs["a"].ID, blobs["b"].ID, blobs["c"].ID}}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			all := []BlobHandle{blobs["a"], blobs["b"], blobs["c"], {ID: tree, Type: TreeBlob}}
			if err := r.WaitVerified(ctx, all); err != nil {
				t.Fatalf("after the failed copies were stored again: %v", err)
			}
			if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Tree: &tree, Paths: []string{"/f"}, Hostname: "h"}); err != nil {
				t.Fatal(err)
			}

			// the index files: the damaged pack is listed by none, and
			// every blob has a sound copy elsewhere
			listed := listedIn(t, r)
			for name, bh := range blobs {
				in := listed[bh]
				if slices.ContainsFunc(in, func(id ID) bool { return id.String() == bad }) {
					t.Errorf("blob %s: an index file lists its copy in the damaged pack %.8s", name, bad)
				}
				if !slices.ContainsFunc(in, func(id ID) bool { return id.String() != bad }) {
					t.Errorf("blob %s: no index file lists a sound copy (listed in %v)", name, in)
				}
			}
			// a fresh open finds every blob of the snapshot sound
			r2, err := Open(ctx, fb.Backend, "pw")
			if err != nil {
				t.Fatal(err)
			}
			if err := r2.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}
			for name, bh := range blobs {
				if got, err := r2.LoadBlob(ctx, DataBlob, bh.ID, nil); err != nil || string(got) != string(data[name]) {
					t.Errorf("blob %s from a fresh open: %v", name, err)
				}
			}
			// stock restic: every byte the index points at
			out, err := resticCheck(t, dir, true)
			if err != nil {
				t.Errorf("restic check --read-data: %v\n%s", err, out)
			}
			if !strings.Contains(out, bad) {
				t.Errorf("restic check does not name the unreferenced damaged pack %.8s:\n%s", bad, out)
			}
		})
	}
}

// TestReadBackDedupBeforeVerdict: a save that finds a blob in the index
// while its pack is still being read back takes it as stored; the
// saver's WaitVerified then waits for that pack and reports the failure,
// naming the blob and the pack, also once the failed copy left the
// index; a copy stored again does not vouch for the blob until an index
// file lists it.
func TestReadBackDedupBeforeVerdict(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one data pack being filled
	ctx := context.Background()
	r, fb := readBackRepo(t, ctx)
	const size = 64 << 10
	var once atomic.Bool
	fb.Mangle = func(h backend.Handle, b []byte) []byte {
		if once.CompareAndSwap(false, true) {
			b[100] ^= 1 // the first blob of the first pack
			return b
		}
		return nil
	}
	release := make(chan struct{})
	var mu sync.Mutex
	held := 0
	fb.OnLoad = func(h backend.Handle, length int, offset int64) {
		mu.Lock()
		held++
		first := held == 1
		mu.Unlock()
		if first {
			<-release
		}
	}
	x := randomBlob(1, size)
	id, _, err := r.SaveBlob(ctx, DataBlob, x, ID{})
	if err != nil {
		t.Fatal(err)
	}
	bh := BlobHandle{ID: id, Type: DataBlob}
	// a blob that does not fit closes the pack: it is stored, indexed and
	// read back (held) while the writer goes on
	if _, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(8, PackSize), ID{}); err != nil {
		t.Fatal(err)
	}
	var pb PackedBlob
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		var ok bool
		if pb, ok = r.Index().Lookup(bh); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the blob's pack was not stored")
		}
	}
	// another saver, while the pack is read back
	if _, known, err := r.SaveBlob(ctx, DataBlob, x, ID{}); err != nil || !known {
		t.Fatalf("save during the read-back: known %v, %v; want it taken as stored", known, err)
	}
	if c := r.rb.Load().check(pb.Pack); c == nil || c.over() {
		t.Fatal("the pack's read-back is over before the second save")
	}
	waited := make(chan error, 1)
	go func() { waited <- r.WaitVerified(ctx, []BlobHandle{bh}) }()
	select {
	case err := <-waited:
		t.Fatalf("WaitVerified returned before the pack's verdict: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	for _, err := range []error{<-waited, r.WaitVerified(ctx, []BlobHandle{bh})} {
		if err == nil || !strings.Contains(err.Error(), id.Str()) || !strings.Contains(err.Error(), pb.Pack.Str()) {
			t.Errorf("saver relying on the damaged copy: %v; want blob %s and pack %s named", err, id.Str(), pb.Pack.Str())
		}
	}
	if r.Index().Has(bh) {
		t.Error("the failed copy is still in the index")
	}
	// stored again (a blob that does not fit closes its pack, which is
	// stored and read back sound): not vouched for before an index file
	// lists it
	if _, known, err := r.SaveBlob(ctx, DataBlob, x, ID{}); err != nil || known {
		t.Fatalf("save after the verdict: known %v, %v; want it stored again", known, err)
	}
	if _, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(9, PackSize), ID{}); err != nil {
		t.Fatal(err)
	}
	waitReadBacks(t, r, 3) // x, the first filler; x again
	if !r.Index().Has(bh) {
		t.Fatal("the copy stored again is not indexed")
	}
	if err := r.WaitVerified(ctx, []BlobHandle{bh}); err == nil || !strings.Contains(err.Error(), pb.Pack.Str()) {
		t.Errorf("a sound copy no index file lists yet: %v; want the failed copy's error", err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitVerified(ctx, []BlobHandle{bh}); err != nil {
		t.Errorf("after the blob was stored again and listed: %v", err)
	}
}

// TestReadBackStoredAgainFails: when the pack a flush stores a damaged
// pack's sound blobs into fails its read-back too, the run ends without
// listing either pack: the blobs the second damage spared leave the
// index with the reason, so the backups relying on them fail (naming
// both), and the next save stores every blob again. Stock restic's check
// --read-data passes: no index file points at a damaged pack.
func TestReadBackStoredAgainFails(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one data pack being filled
	const size = 64 << 10                           // random: stored as it is, size+32 bytes sealed
	ctx := context.Background()
	dir := t.TempDir()
	fb := localFaulty(t, dir)
	var mu sync.Mutex
	var packs []string // the damaged ones, in order
	damage := true
	fb.Mangle = func(h backend.Handle, b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if !damage {
			return nil
		}
		packs = append(packs, h.Name)
		b[size+32+100] ^= 1 // the second blob
		return b
	}
	r, err := Init(ctx, fb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	r.VerifyWrites(ctx)
	blobs := map[string]BlobHandle{}
	save := func(wantKnown bool) {
		t.Helper()
		for i, name := range []string{"a", "b", "c"} {
			id, known, err := r.SaveBlob(ctx, DataBlob, randomBlob(byte(i), size), ID{})
			if err != nil || known != wantKnown {
				t.Fatalf("save %s: known %v, %v; want known %v", name, known, err, wantKnown)
			}
			blobs[name] = BlobHandle{ID: id, Type: DataBlob}
		}
	}
	save(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	damaged := slices.Clone(packs)
	damage = false
	mu.Unlock()
	if len(damaged) != 2 {
		t.Fatalf("%d packs stored, want a, b, c's and then a, c's", len(damaged))
	}
	for name, want := range map[string]string{
		"b": damaged[0][:8] + ": content does not match its ID",
		"c": damaged[1][:8] + ": content does not match its ID",
		"a": "its pack " + damaged[1][:8] + " failed its read-back in part",
	} {
		bh := blobs[name]
		if err := r.WaitVerified(ctx, []BlobHandle{bh}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("blob %s: %v; want %q", name, err, want)
		}
		if r.Index().Has(bh) {
			t.Errorf("blob %s: still in the index", name)
		}
	}
	if listed := listedIn(t, r); len(listed) != 0 {
		t.Errorf("index files list %v; want nothing", listed)
	}

	// the next run stores them all again
	save(false)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all := []BlobHandle{blobs["a"], blobs["b"], blobs["c"]}
	if err := r.WaitVerified(ctx, all); err != nil {
		t.Errorf("stored again: %v", err)
	}
	if out, err := resticCheck(t, dir, true); err != nil {
		t.Errorf("restic check --read-data: %v\n%s", err, out)
	}
}

// TestFlushEndedDuringReadBack: a Flush whose context ends while it waits
// for a pack's read-back (one host's step timed out) writes no index
// file for it, and the next Flush, even one with nothing new to store,
// lists it: another host relying on the pack's blobs is not failed by
// the first one's timeout.
func TestFlushEndedDuringReadBack(t *testing.T) {
	ctx := context.Background()
	r, fb := readBackRepo(t, ctx)
	release := make(chan struct{})
	fb.OnLoad = func(backend.Handle, int, int64) { <-release }
	id, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(1, 64<<10), ID{})
	if err != nil {
		t.Fatal(err)
	}
	bh := BlobHandle{ID: id, Type: DataBlob}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := r.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush whose context ends during the read-back: %v", err)
	}
	if listed := listedIn(t, r); len(listed) != 0 {
		t.Fatalf("an index file lists %v before the read-back's verdict", listed)
	}
	close(release)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if in := listedIn(t, r)[bh]; len(in) != 1 {
		t.Errorf("after the next flush, the blob is listed in %v; want its pack", in)
	}
	if err := r.WaitVerified(ctx, []BlobHandle{bh}); err != nil {
		t.Errorf("the blob, relied on by another host: %v", err)
	}
}

// TestSortIndexVerdictArriving: a verdict that comes in while sortIndex
// looks at the pack (storeAgain and the periodic index sort packs whose
// read-back is under way) puts a sound pack in the list or the wait
// list, never in neither: settle empties a sound pack's blob list, then
// closes done, and a second look at done used to find an over, "empty"
// pack that was dropped from the index files for good.
func TestSortIndexVerdictArriving(t *testing.T) {
	r, _ := readBackRepo(t, context.Background())
	rb := r.rb.Load()
	pb := PackedBlob{BlobHandle: BlobHandle{ID: ID{1}, Type: DataBlob}, Length: 10}
	verdicts := make(chan *packCheck)
	defer close(verdicts)
	go func() { // a reader, its verdicts sound
		for c := range verdicts {
			rb.settle(c)
			close(c.done)
		}
	}()
	for i := range 2000 {
		id := ID{byte(i), byte(i >> 8), 1}
		pb.Pack = id
		c := rb.register(id, 100, []PackedBlob{pb}, make([]byte, 16))
		verdicts <- c
		for { // sorted again and again as the verdict comes in
			list, wait, held := r.sortIndex([]PackJSON{packJSON(id, []PackedBlob{pb})}, false)
			if len(list) == 1 && len(wait)+len(held) == 0 {
				break
			}
			if len(wait) != 1 || len(list)+len(held) != 0 {
				t.Fatalf("try %d: a sound pack sorted into list %d, wait %d, held %d; want list or wait", i, len(list), len(wait), len(held))
			}
		}
	}
}

// TestReadBackStoredOnce: a pack that failed in part while the run went
// on has its sound blobs stored again by the next Flush, while its
// writer still runs (storeAgain); when the pack they go into fails in
// part too, it is dropped, not stored again a second time: its sound
// blob leaves the index with the reason. When that pack cannot be
// stored at all, the Flush fails and the blob's error says why it is
// not in the index.
func TestReadBackStoredOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one data pack being filled
	ctx := context.Background()
	t.Run("fails again", func(t *testing.T) {
		r, blobs, damaged := failedInPartDuringRun(t, nil)
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := damaged(); len(got) != 2 {
			t.Fatalf("%d packs damaged, want a, b, c's and a, c's: a is not stored a third time", len(got))
		}
		for name, want := range map[string]string{
			"b": damaged()[0][:8] + ": content does not match its ID",
			"c": damaged()[1][:8] + ": content does not match its ID",
			"a": "its pack " + damaged()[1][:8] + " failed its read-back in part",
		} {
			if err := r.WaitVerified(ctx, []BlobHandle{blobs[name]}); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("blob %s: %v; want %q", name, err, want)
			}
		}
		if err := r.WaitVerified(ctx, []BlobHandle{blobs["filler"]}); err != nil {
			t.Errorf("filler: %v", err)
		}
	})
	t.Run("not stored", func(t *testing.T) {
		// a, b, c's pack is saved first, then the filler's and a, c's, in either order
		r, blobs, damaged := failedInPartDuringRun(t, map[int]bool{2: true, 3: true})
		if err := r.Flush(ctx); err == nil {
			t.Fatal("flush whose pack could not be stored: no error")
		}
		want := "its pack " + damaged()[0][:8] + " failed its read-back, and the flush that stored it again failed"
		if err := r.WaitVerified(ctx, []BlobHandle{blobs["a"]}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("blob a: %v; want %q", err, want)
		}
	})
}

// failedInPartDuringRun stores blobs a, b, c (64 KiB each) into one
// pack, whose read-back then fails for b, and a full-size filler, which
// the next Flush stores; the packs of several small blobs are damaged in
// their second blob. failSave: the pack saves that fail.
func failedInPartDuringRun(t *testing.T, failSave map[int]bool) (*Repository, map[string]BlobHandle, func() []string) {
	t.Helper()
	const size = 64 << 10 // random: stored as it is, size+32 bytes sealed
	r, fb := readBackRepo(t, context.Background())
	fb.FailSave = failSave
	var mu sync.Mutex
	var damaged []string
	fb.Mangle = func(h backend.Handle, b []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if len(b) < 2*(size+32) || len(b) > PackSize { // one small blob, or the filler
			return nil
		}
		damaged = append(damaged, h.Name)
		b[size+32+100] ^= 1 // the second blob
		return b
	}
	blobs := map[string]BlobHandle{}
	for i, name := range []string{"a", "b", "c", "filler"} {
		n := size
		if name == "filler" {
			n = PackSize // closes a, b, c's pack, which is stored and read back
		}
		id, _, err := r.SaveBlob(context.Background(), DataBlob, randomBlob(byte(i), n), ID{})
		if err != nil {
			t.Fatal(err)
		}
		blobs[name] = BlobHandle{ID: id, Type: DataBlob}
	}
	waitReadBacks(t, r, 1)
	return r, blobs, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(damaged)
	}
}

// TestSaveEndedHandingOver: a save whose context ends while it hands a
// full pack to the busy uploaders does not throw that pack away: it
// holds another saver's blob, whose save returned; the pack is stored
// once the uploaders are free, and listed.
func TestSaveEndedHandingOver(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one data pack being filled
	ctx := context.Background()
	r, fb := readBackRepo(t, ctx)
	release := make(chan struct{})
	var once sync.Once
	fb.AfterSave = func(h backend.Handle) {
		if h.Type == backend.PackFile {
			<-release
		}
	}
	defer once.Do(func() { close(release) })
	// four full packs: three uploaders held in their Save, one queued
	for i := range 4 {
		if _, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(byte(i), PackSize), ID{}); err != nil {
			t.Fatal(err)
		}
	}
	// another saver's blob: it closes the fourth pack and is alone in
	// the one being filled
	x, _, err := r.SaveBlob(ctx, DataBlob, randomBlob(9, 1000), ID{})
	if err != nil {
		t.Fatal(err)
	}
	// this save closes x's pack and waits to hand it over; its context
	// ends meanwhile
	short, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := r.SaveBlob(short, DataBlob, randomBlob(10, PackSize), ID{})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	time.Sleep(100 * time.Millisecond)
	once.Do(func() { close(release) })
	<-done
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if in := listedIn(t, r)[BlobHandle{ID: x, Type: DataBlob}]; len(in) != 1 {
		t.Errorf("the other saver's blob is listed in %v; want its pack", in)
	}
}
