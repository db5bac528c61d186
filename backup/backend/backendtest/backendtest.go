// Package backendtest is the one conformance suite every repository
// backend passes: Run(t, newBackend) checks the contract written on
// backend.Backend.
//
// It must never import the repository (backup/repo) or anything above
// backup.
package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend"
)

func randomFile(t testing.TB, n int) ([]byte, string) {
	t.Helper()
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf)
	return buf, hex.EncodeToString(sum[:])
}

// Run runs the suite; newBackend returns a fresh, empty backend for each
// subtest.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	ctx := context.Background()

	t.Run("SaveLoadStat", func(t *testing.T) {
		be := newBackend(t)
		for _, tc := range []struct {
			typ  backend.FileType
			size int
		}{
			{backend.ConfigFile, 150},
			{backend.KeyFile, 400},
			{backend.LockFile, 0},
			{backend.SnapshotFile, 300},
			{backend.IndexFile, 5000},
			{backend.PackFile, 1 << 20},
		} {
			buf, name := randomFile(t, tc.size)
			h := backend.Handle{Type: tc.typ, Name: name}
			if err := be.Save(ctx, h, bytes.NewReader(buf)); err != nil {
				t.Fatalf("save %v: %v", h, err)
			}
			fi, err := be.Stat(ctx, h)
			if err != nil || fi.Size != int64(tc.size) {
				t.Fatalf("stat %v = %+v, %v; want size %d", h, fi, err, tc.size)
			}
			got, err := backend.ReadAll(ctx, be, h)
			if err != nil || !bytes.Equal(got, buf) {
				t.Fatalf("load %v: %v, equal=%v", h, err, bytes.Equal(got, buf))
			}
		}
	})

	t.Run("LoadRange", func(t *testing.T) {
		be := newBackend(t)
		buf, name := randomFile(t, 10000)
		h := backend.Handle{Type: backend.PackFile, Name: name}
		if err := be.Save(ctx, h, bytes.NewReader(buf)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			length int
			offset int64
			ok     bool
		}{
			{0, 0, true}, {1, 0, true}, {100, 9900, true}, {0, 9999, true}, {0, 10000, true},
			{10000, 0, true}, {4, 9996, true}, {101, 9900, false}, {1, 10000, false}, {0, 10001, false},
		} {
			name := fmt.Sprintf("%d+%d", tc.offset, tc.length)
			rd, err := be.Load(ctx, h, tc.length, tc.offset)
			var got []byte
			if err == nil {
				got, err = io.ReadAll(rd)
				rd.Close()
			}
			if !tc.ok {
				if err == nil {
					t.Errorf("%s: want an error for a range beyond the end, got %d bytes", name, len(got))
				}
				continue
			}
			want := buf[tc.offset:]
			if tc.length > 0 {
				want = want[:tc.length]
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %v, %d bytes, want %d", name, err, len(got), len(want))
			}
		}
	})

	t.Run("NotExist", func(t *testing.T) {
		be := newBackend(t)
		_, name := randomFile(t, 1)
		h := backend.Handle{Type: backend.SnapshotFile, Name: name}
		if _, err := be.Load(ctx, h, 0, 0); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("load of a missing file: %v, want ErrNotExist", err)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("stat of a missing file: %v, want ErrNotExist", err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("remove of a missing file: %v, want ErrNotExist", err)
		}
		if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("stat of a missing config: %v, want ErrNotExist", err)
		}
	})

	t.Run("WriteOnce", func(t *testing.T) {
		be := newBackend(t)
		buf, name := randomFile(t, 100)
		h := backend.Handle{Type: backend.IndexFile, Name: name}
		if err := be.Save(ctx, h, bytes.NewReader(buf)); err != nil {
			t.Fatal(err)
		}
		if err := be.Save(ctx, h, bytes.NewReader([]byte("other"))); !errors.Is(err, backend.ErrExist) {
			t.Errorf("second save: %v, want ErrExist", err)
		}
		got, err := backend.ReadAll(ctx, be, h)
		if err != nil || !bytes.Equal(got, buf) {
			t.Errorf("the first file was changed by a second save")
		}
	})

	t.Run("InvalidNames", func(t *testing.T) {
		be := newBackend(t)
		for _, name := range []string{"", "a", "../config", "ABCD", "xx/yy", "12 34"} {
			h := backend.Handle{Type: backend.SnapshotFile, Name: name}
			if err := be.Save(ctx, h, bytes.NewReader(nil)); err == nil {
				t.Errorf("save of %q succeeded", name)
			}
		}
	})

	t.Run("ListRemove", func(t *testing.T) {
		be := newBackend(t)
		want := map[backend.FileType][]string{}
		for _, typ := range []backend.FileType{backend.PackFile, backend.SnapshotFile, backend.IndexFile} {
			for i := 0; i < 20; i++ {
				buf, name := randomFile(t, i*10)
				if err := be.Save(ctx, backend.Handle{Type: typ, Name: name}, bytes.NewReader(buf)); err != nil {
					t.Fatal(err)
				}
				want[typ] = append(want[typ], name)
			}
		}
		list := func(typ backend.FileType) []string {
			var got []string
			if err := be.List(ctx, typ, func(fi backend.FileInfo) error {
				got = append(got, fi.Name)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			return got
		}
		for typ, names := range want {
			sort.Strings(names)
			if got := list(typ); fmt.Sprint(got) != fmt.Sprint(names) {
				t.Errorf("list %v: got %d names, want %d", typ, len(got), len(names))
			}
		}
		if got := list(backend.LockFile); len(got) != 0 {
			t.Errorf("list of an empty type: %v", got)
		}
		stop := errors.New("stop")
		n := 0
		err := be.List(ctx, backend.PackFile, func(backend.FileInfo) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("list did not stop at fn's error: %v after %d calls", err, n)
		}
		for _, name := range want[backend.PackFile][:10] {
			if err := be.Remove(ctx, backend.Handle{Type: backend.PackFile, Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		if got := list(backend.PackFile); fmt.Sprint(got) != fmt.Sprint(want[backend.PackFile][10:]) {
			t.Errorf("after remove: %d names, want %d", len(got), 10)
		}
	})

	t.Run("ConcurrentSaveSameName", func(t *testing.T) {
		be := newBackend(t)
		buf, name := randomFile(t, 1<<16)
		h := backend.Handle{Type: backend.PackFile, Name: name}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := be.Save(ctx, h, bytes.NewReader(buf))
				if err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, backend.ErrExist) {
					t.Errorf("concurrent save: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d concurrent saves of one name succeeded, want exactly 1", ok)
		}
		got, err := backend.ReadAll(ctx, be, h)
		if err != nil || !bytes.Equal(got, buf) {
			t.Errorf("file after concurrent saves: %v", err)
		}
	})

	t.Run("SaveRereads", func(t *testing.T) {
		// A reader positioned at its end must still be saved whole: Save
		// seeks to the start (that is what makes retries possible).
		be := newBackend(t)
		buf, name := randomFile(t, 1000)
		rd := bytes.NewReader(buf)
		_, _ = io.Copy(io.Discard, rd)
		h := backend.Handle{Type: backend.SnapshotFile, Name: name}
		if err := be.Save(ctx, h, rd); err != nil {
			t.Fatal(err)
		}
		if fi, err := be.Stat(ctx, h); err != nil || fi.Size != 1000 {
			t.Errorf("stat after save of a consumed reader: %+v %v", fi, err)
		}
	})

	t.Run("Canceled", func(t *testing.T) {
		be := newBackend(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		buf, name := randomFile(t, 100)
		h := backend.Handle{Type: backend.SnapshotFile, Name: name}
		if err := be.Save(cctx, h, bytes.NewReader(buf)); err == nil {
			t.Errorf("save with a canceled context succeeded")
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("a canceled save left a file: %v", err)
		}
	})
}
