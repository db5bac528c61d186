package faulty_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/backendtest"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/mem"
)

// With nothing scheduled the wrapper is transparent.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend { return faulty.New(mem.New()) })
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	h := backend.Handle{Type: backend.PackFile, Name: "abcd"}
	for _, tc := range []struct {
		name  string
		setup func(b *faulty.Backend)
		check func(t *testing.T, b *faulty.Backend, got []byte, loadErr, saveErr error)
	}{
		{"fail save", func(b *faulty.Backend) { b.FailSave[1] = true }, func(t *testing.T, b *faulty.Backend, got []byte, le, se error) {
			if !errors.Is(se, faulty.ErrInjected) || !errors.Is(le, backend.ErrNotExist) {
				t.Errorf("save %v, load %v", se, le)
			}
		}},
		{"fail load", func(b *faulty.Backend) { b.FailLoad[1] = true }, func(t *testing.T, b *faulty.Backend, got []byte, le, se error) {
			if !errors.Is(le, faulty.ErrInjected) {
				t.Errorf("load %v", le)
			}
		}},
		{"truncate", func(b *faulty.Backend) { b.Truncate[1] = 2 }, func(t *testing.T, b *faulty.Backend, got []byte, le, se error) {
			if string(got) != "hel" {
				t.Errorf("got %q", got)
			}
		}},
		{"corrupt", func(b *faulty.Backend) { b.Corrupt[1] = 0 }, func(t *testing.T, b *faulty.Backend, got []byte, le, se error) {
			if string(got) != "iello" {
				t.Errorf("got %q", got)
			}
		}},
		{"mangle", func(b *faulty.Backend) {
			b.Mangle = func(_ backend.Handle, p []byte) []byte { return append(p[:4:4], '!') }
		}, func(t *testing.T, _ *faulty.Backend, got []byte, le, se error) {
			if se != nil || string(got) != "hell!" {
				t.Errorf("save %v, got %q", se, got)
			}
		}},
		{"mangle keeps", func(b *faulty.Backend) {
			b.Mangle = func(backend.Handle, []byte) []byte { return nil }
		}, func(t *testing.T, _ *faulty.Backend, got []byte, le, se error) {
			if se != nil || string(got) != "hello" {
				t.Errorf("save %v, got %q", se, got)
			}
		}},
		{"after save", func(b *faulty.Backend) {
			b.AfterSave = func(h backend.Handle) {
				if h.Name == "abcd" {
					b.Save(ctx, backend.Handle{Type: backend.LockFile, Name: "ef01"}, bytes.NewReader([]byte("x")))
				}
			}
		}, func(t *testing.T, b *faulty.Backend, got []byte, le, se error) {
			if string(got) != "hello" || se != nil {
				t.Errorf("got %q, save %v", got, se)
			}
			if _, err := b.Stat(ctx, backend.Handle{Type: backend.LockFile, Name: "ef01"}); err != nil {
				t.Errorf("the file saved after the save: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := faulty.New(mem.New())
			tc.setup(b)
			se := b.Save(ctx, h, bytes.NewReader([]byte("hello")))
			var got []byte
			rd, le := b.Load(ctx, h, 0, 0)
			if le == nil {
				got, _ = io.ReadAll(rd)
			}
			tc.check(t, b, got, le, se)
		})
	}
}

// OnLoad sees every counted load with its range, and only those.
func TestOnLoad(t *testing.T) {
	ctx := context.Background()
	b := faulty.New(mem.New())
	b.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	type load struct {
		h      backend.Handle
		length int
		offset int64
	}
	var seen []load
	b.OnLoad = func(h backend.Handle, length int, offset int64) { seen = append(seen, load{h, length, offset}) }
	pack := backend.Handle{Type: backend.PackFile, Name: "abcd"}
	idx := backend.Handle{Type: backend.IndexFile, Name: "abcd"}
	for _, h := range []backend.Handle{pack, idx} {
		if err := b.Save(ctx, h, bytes.NewReader([]byte("hello"))); err != nil {
			t.Fatal(err)
		}
		for _, r := range [][2]int{{0, 0}, {2, 1}} {
			rd, err := b.Load(ctx, h, r[0], int64(r[1]))
			if err != nil {
				t.Fatal(err)
			}
			rd.Close()
		}
	}
	want := []load{{pack, 0, 0}, {pack, 2, 1}}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] {
		t.Errorf("OnLoad saw %v, want %v", seen, want)
	}
}
