package repo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
)

func TestKeysAndPasswords(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := repo.Init(ctx, be, "one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, be, "again"); err == nil {
		t.Fatal("Init over an existing repository succeeded")
	}
	second, err := r.AddKey(ctx, "two", "ops", "vault")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pw   string
		want error
	}{{"one", nil}, {"two", nil}, {"three", repo.ErrWrongPassword}, {"", repo.ErrWrongPassword}} {
		_, err := repo.Open(ctx, be, tc.pw)
		if !errors.Is(err, tc.want) {
			t.Errorf("open with %q: %v, want %v", tc.pw, err, tc.want)
		}
	}
	keys, err := r.ListKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("list keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		if k.N < 1<<15 || k.R != 8 || k.P < 1 {
			t.Errorf("key %s has weak scrypt parameters N=%d r=%d p=%d", k.Name[:8], k.N, k.R, k.P)
		}
	}
	if err := r.RemoveKey(ctx, r.KeyName()); err == nil {
		t.Error("removing the key in use succeeded")
	}
	if err := r.RemoveKey(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, be, "two"); !errors.Is(err, repo.ErrWrongPassword) {
		t.Errorf("removed key still opens: %v", err)
	}
	if _, err := repo.Open(ctx, mem.New(), "one"); !errors.Is(err, repo.ErrNoRepository) {
		t.Errorf("open of an empty backend: %v", err)
	}
}

func TestBlobsRoundTrip(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var ids []repo.ID
	var datas [][]byte
	for _, tc := range []struct {
		size  int
		zeros bool
	}{{0, false}, {1, false}, {1000, true}, {1 << 20, false}, {8 << 20, true}, {3 << 20, false}} {
		b := make([]byte, tc.size)
		if !tc.zeros {
			_, _ = rand.Read(b)
		}
		id, known, err := r.SaveBlob(ctx, repo.DataBlob, b, repo.ID{})
		if err != nil || known {
			t.Fatalf("save %d: %v known=%v", tc.size, err, known)
		}
		if _, known, _ := r.SaveBlob(ctx, repo.DataBlob, b, id); !known {
			t.Errorf("second save of the same blob was not deduplicated")
		}
		ids, datas = append(ids, id), append(datas, b)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2, err := repo.Open(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		got, err := r2.LoadBlob(ctx, repo.DataBlob, id, nil)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Errorf("blob %d: %v", i, err)
		}
	}
	// every pack's header agrees with the index
	n := 0
	err = be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, _ := repo.ParseID(fi.Name)
		blobs, err := r2.LoadPackHeader(ctx, id, fi.Size)
		if err != nil {
			return err
		}
		for _, b := range blobs {
			pb, ok := r2.Index().Lookup(b.BlobHandle)
			if !ok || pb != b {
				t.Errorf("header entry %+v, index %+v", b, pb)
			}
			n++
		}
		return nil
	})
	if err != nil || n != len(ids) {
		t.Fatalf("pack headers list %d blobs (%v), want %d", n, err, len(ids))
	}
}

func TestFlushFailureLeavesNoIndex(t *testing.T) {
	ctx := context.Background()
	mb := mem.New()
	_, err := repo.Init(ctx, mb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	fb := faulty.New(mb)
	fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	fb.FailSave[1] = true
	r2, err := repo.Open(ctx, fb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r2.SaveBlob(ctx, repo.DataBlob, []byte("x"), repo.ID{}); err != nil {
		t.Fatal(err)
	}
	if err := r2.Flush(ctx); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("flush with a failing pack save: %v", err)
	}
	n := 0
	_ = mb.List(ctx, backend.IndexFile, func(backend.FileInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("an index was written for a pack that was never stored")
	}
}

// TestTreeJSON pins the bytes of a tree blob: restic finds trees by the
// hash of exactly these bytes, so any drift breaks deduplication with it.
func TestTreeJSON(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"plain", `"name":"plain"`},
		{`back\slash`, `"name":"back\\\\slash"`},
		{`quo"te`, `"name":"quo\\\"te"`},
		{"new\nline", `"name":"new\\nline"`},
		{"bad\xff", `"name":"bad\\xff"`},
		{"ü", `"name":"ü"`},
		{"<&>", `"name":"\u003c\u0026\u003e"`},
	} {
		tr := &repo.Tree{}
		if err := tr.Insert(&repo.Node{Name: tc.name, Type: "file", Content: []repo.ID{}}); err != nil {
			t.Fatal(err)
		}
		b, err := tr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tc.want) || !strings.HasSuffix(string(b), "}]}\n") {
			t.Errorf("%q encodes as %s, want it to contain %s", tc.name, b, tc.want)
		}
		var back repo.Tree
		if err := json.Unmarshal(b, &back); err != nil || back.Nodes[0].Name != tc.name {
			t.Errorf("%q does not round-trip: %v %q", tc.name, err, back.Nodes[0].Name)
		}
	}
	tr := &repo.Tree{}
	for _, n := range []string{"b", "a", "c"} {
		if err := tr.Insert(&repo.Node{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Insert(&repo.Node{Name: "a"}); err == nil {
		t.Error("duplicate name accepted")
	}
	if tr.Nodes[0].Name != "a" || tr.Nodes[2].Name != "c" || tr.Find("b") == nil {
		t.Error("tree not sorted")
	}
	raw, _ := json.Marshal(&repo.Node{Name: "l", Type: "symlink", LinkTarget: "x\xffy"})
	if !strings.Contains(string(raw), `"linktarget_raw":"eP95"`) {
		t.Errorf("non-UTF-8 link target: %s", raw)
	}
}

// TestTreeCodecOnePass: Encode and DecodeTree (one Marshal or Unmarshal
// for the whole tree) give exactly what encoding/json gives through
// Node's own MarshalJSON and UnmarshalJSON, for nodes with every field
// set: the bytes restic hashes, and the nodes read back.
func TestTreeCodecOnePass(t *testing.T) {
	at := time.Date(2026, 12, 6, 8, 0, 0, 123456789, time.FixedZone("x", 3600))
	sub := repo.Hash([]byte("subtree"))
	tr := &repo.Tree{}
	for _, n := range []*repo.Node{
		{Name: "plain", Type: "file", Mode: 0o644, ModTime: at, AccessTime: at.Add(time.Second), ChangeTime: at.UTC(), UID: 1000, GID: 1000,
			User: "ops", Group: "ops", Inode: 42, DeviceID: 7, Size: 5, Links: 2, Content: []repo.ID{repo.Hash([]byte("a")), repo.Hash([]byte("b"))},
			ExtendedAttributes: []repo.ExtendedAttribute{{Name: "user.x", Value: []byte{0, 1, 0xff}}}},
		{Name: "dir <&>", Type: "dir", Mode: os.ModeDir | 0o755, ModTime: time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), Subtree: &sub},
		{Name: "bad\xff\n\"q\\", Type: "symlink", Mode: os.ModeSymlink | 0o777, LinkTarget: "x\xffy", ModTime: time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Name: "ü-dev", Type: "chardev", Mode: os.ModeDevice | os.ModeCharDevice | 0o600, Device: 0x0501, Error: "read: EIO"},
		{Name: "empty", Type: "file", Content: []repo.ID{}},
	} {
		if err := tr.Insert(n); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tr.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(struct {
		Nodes []*repo.Node `json:"nodes"`
	}{tr.Nodes})
	if err != nil {
		t.Fatal(err)
	}
	if want = append(want, '\n'); !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n%s\nnode by node:\n%s", got, want)
	}
	for _, n := range tr.Nodes {
		// a node alone (a walk's entry on the wire), and back
		nj := n.JSON()
		one, err := json.Marshal(nj)
		if err != nil {
			t.Fatal(err)
		}
		if viaMethod, _ := json.Marshal(n); !bytes.Equal(one, viaMethod) {
			t.Errorf("NodeJSON of %q: %s, MarshalJSON: %s", n.Name, one, viaMethod)
		}
		var back repo.NodeJSON
		if err := json.Unmarshal(one, &back); err != nil {
			t.Fatal(err)
		}
		bn, err := back.Node()
		if err != nil || bn.Name != n.Name || bn.LinkTarget != n.LinkTarget {
			t.Fatalf("NodeJSON of %q comes back as %+v, %v", n.Name, bn, err)
		}
		if again, _ := json.Marshal(bn); !bytes.Equal(again, one) {
			t.Errorf("NodeJSON of %q does not come back: %s, then %s", n.Name, one, again)
		}
	}
	var slow repo.Tree
	if err := json.Unmarshal(got, &slow); err != nil {
		t.Fatal(err)
	}
	fast, err := repo.DecodeTree(got, repo.Hash(got))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fast, &slow) {
		t.Errorf("DecodeTree:\n%+v\nnode by node:\n%+v", fast.Nodes, slow.Nodes)
	}
	if l := fast.Find("bad\xff\n\"q\\"); l == nil || l.LinkTarget != "x\xffy" || l.LinkTargetRaw != nil {
		t.Errorf("name or link target not restored: %+v", l)
	}
	for _, bad := range []string{`{"nodes":[null]}`, `{"nodes":[{"name":"a\\"}]}`, `{"nodes":{}}`} {
		if _, err := repo.DecodeTree([]byte(bad), repo.ID{}); err == nil {
			t.Errorf("DecodeTree(%s) accepted", bad)
		}
	}
}

// TestConcurrentSaveBlob: blobs saved from many goroutines at once fill
// several packs side by side; every pack is whole (its hash is its name,
// its header agrees with the index, it stays near the pack size) and
// every blob comes back.
func TestConcurrentSaveBlob(t *testing.T) {
	// several data packers whatever the machine's cores (their number
	// follows GOMAXPROCS when the writer starts)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	ctx := context.Background()
	be := mem.New()
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	const workers, each, size = 8, 25, 300 << 10
	datas := make([][][]byte, workers)
	ids := make([][]repo.ID, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b := make([]byte, size)
				_, _ = rand.Read(b)
				if i%3 == 0 {
					copy(b, bytes.Repeat([]byte("compressible "), size/13)) // mostly text
				}
				id, _, err := r.SaveBlob(ctx, repo.DataBlob, b, repo.ID{})
				if err != nil {
					t.Error(err)
					return
				}
				datas[w], ids[w] = append(datas[w], b), append(ids[w], id)
			}
		}()
	}
	wg.Wait()
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2, err := repo.Open(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for w := range workers {
		for i, id := range ids[w] {
			got, err := r2.LoadBlob(ctx, repo.DataBlob, id, nil)
			if err != nil || !bytes.Equal(got, datas[w][i]) {
				t.Fatalf("blob %d of worker %d: %v", i, w, err)
			}
		}
	}
	n, packs := 0, 0
	err = be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		packs++
		if fi.Size > repo.PackSize+size+64 {
			t.Errorf("pack %s has %d bytes", fi.Name[:8], fi.Size)
		}
		buf, err := backend.ReadAll(ctx, be, backend.Handle{Type: backend.PackFile, Name: fi.Name})
		if err != nil {
			return err
		}
		if repo.Hash(buf).String() != fi.Name {
			t.Errorf("pack %s: contents hash to another name", fi.Name[:8])
		}
		id, _ := repo.ParseID(fi.Name)
		blobs, err := r2.LoadPackHeader(ctx, id, fi.Size)
		if err != nil {
			return err
		}
		for _, b := range blobs {
			if pb, ok := r2.Index().Lookup(b.BlobHandle); !ok || pb != b {
				t.Errorf("header entry %+v, index %+v", b, pb)
			}
			n++
		}
		return nil
	})
	if err != nil || n != workers*each {
		t.Fatalf("pack headers list %d blobs (%v), want %d", n, err, workers*each)
	}
	if packs < 2 {
		t.Errorf("%d packs for %d MiB", packs, workers*each*size>>20)
	}
}

// BenchmarkTreeCodec: a tree of 100 files (two chunks each), encoded
// and decoded in one pass (Encode, DecodeTree) and node by node
// (encoding/json through Node's MarshalJSON and UnmarshalJSON).
func BenchmarkTreeCodec(b *testing.B) {
	at := time.Date(2026, 12, 6, 8, 0, 0, 123456789, time.UTC)
	tr := &repo.Tree{}
	for i := range 100 {
		n := &repo.Node{Name: fmt.Sprintf("f%03d.conf", i), Type: "file", Mode: 0o644, ModTime: at, AccessTime: at, ChangeTime: at,
			UID: 1000, GID: 1000, User: "ops", Group: "ops", Inode: uint64(1000 + i), DeviceID: 7, Size: 4096, Links: 1,
			Content: []repo.ID{repo.Hash([]byte{byte(i), 0}), repo.Hash([]byte{byte(i), 1})}}
		if err := tr.Insert(n); err != nil {
			b.Fatal(err)
		}
	}
	blob, err := tr.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := tr.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalNodeByNode", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(struct {
				Nodes []*repo.Node `json:"nodes"`
			}{tr.Nodes}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeTree", func(b *testing.B) {
		for b.Loop() {
			if _, err := repo.DecodeTree(blob, repo.ID{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UnmarshalNodeByNode", func(b *testing.B) {
		for b.Loop() {
			var t repo.Tree
			if err := json.Unmarshal(blob, &t); err != nil {
				b.Fatal(err)
			}
		}
	})
}
