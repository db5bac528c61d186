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
