// Package local is the repository backend for a directory on a local or
// mounted filesystem, in restic's layout (config, keys/, locks/,
// snapshots/, index/, data/00..ff/, tmp/).
//
// Files are written to tmp/ first, fsync'd, hard-linked into place (which,
// unlike rename, refuses to replace an existing name) and the folder is
// fsync'd, so a crash leaves either the whole file or none, and any
// leftover temporary file only in tmp/.
//
// It must never import the repository (backup/repo) or anything above
// backup.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/internal/atomicfile"
)

// Local is a repository in a directory.
type Local struct {
	dir string
}

var _ backend.Backend = (*Local)(nil)

// Open returns a backend for an existing repository directory.
func Open(dir string) (*Local, error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("repository %s does not exist: %w", dir, backend.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("repository %s: not a directory", dir)
	}
	return &Local{dir: dir}, nil
}

// Create makes the folder layout of a new repository in dir, which must
// not exist or be empty, and returns a backend for it.
func Create(dir string) (*Local, error) {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("create repository %s: directory exists and is not empty", dir)
	}
	dirs := []string{dir, filepath.Join(dir, "tmp")}
	for _, t := range backend.AllTypes {
		if t != backend.ConfigFile {
			dirs = append(dirs, filepath.Join(dir, t.Dir()))
		}
	}
	for i := 0; i < 256; i++ {
		dirs = append(dirs, filepath.Join(dir, "data", fmt.Sprintf("%02x", i)))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create repository %s: %w", dir, err)
		}
	}
	for _, d := range []string{filepath.Join(dir, "data"), dir, filepath.Dir(filepath.Clean(dir))} {
		if err := atomicfile.SyncDir(d); err != nil {
			return nil, fmt.Errorf("create repository %s: %w", dir, err)
		}
	}
	return &Local{dir: dir}, nil
}

// Path is the repository directory.
func (b *Local) Path() string { return b.dir }

// Filename is where h lives.
func (b *Local) Filename(h backend.Handle) string {
	switch h.Type {
	case backend.ConfigFile:
		return filepath.Join(b.dir, "config")
	case backend.PackFile:
		return filepath.Join(b.dir, "data", h.Name[:2], h.Name)
	}
	return filepath.Join(b.dir, h.Type.Dir(), h.Name)
}

// TempFile implements backend.TempFiler: a new file in tmp/.
func (b *Local) TempFile() (*os.File, error) {
	f, err := os.CreateTemp(filepath.Join(b.dir, "tmp"), "pack-")
	if errors.Is(err, os.ErrNotExist) {
		if mkErr := os.MkdirAll(filepath.Join(b.dir, "tmp"), 0o700); mkErr == nil {
			f, err = os.CreateTemp(filepath.Join(b.dir, "tmp"), "pack-")
		}
	}
	return f, err
}

// CleanTemp removes temporary files in tmp/ not modified for longer than
// age — what a killed writer left behind — and returns how many. A
// writer that is alive touches its temporary file while it fills it, so
// an age above the lock staleness (30 minutes) never removes live work.
func (b *Local) CleanTemp(age time.Duration) (int, error) {
	dir := filepath.Join(b.dir, "tmp")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("clean tmp/: %w", err)
	}
	n := 0
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || time.Since(fi.ModTime()) < age {
			continue
		}
		if os.Remove(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n, nil
}

// Save implements backend.Backend.
func (b *Local) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker) (err error) {
	if err := h.Valid(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	final := b.Filename(h)
	if _, err := os.Lstat(final); err == nil {
		return fmt.Errorf("save %v: %w", h, backend.ErrExist)
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if f, ok := rd.(*os.File); ok && filepath.Dir(f.Name()) == filepath.Join(b.dir, "tmp") {
		return b.adopt(h, f, final)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(b.dir, "tmp", filepath.Base(final)+"-tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		// repositories made by restic have no tmp/ until something needs it
		if mkErr := os.MkdirAll(filepath.Dir(tmp), 0o700); mkErr == nil {
			f, err = os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		}
	}
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
	}()
	if _, err := io.Copy(f, ctxReader{ctx, rd}); err != nil {
		return fmt.Errorf("save %v: write %s: %w", h, tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save %v: fsync %s: %w", h, tmp, err)
	}
	if err := f.Chmod(0o400); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return fmt.Errorf("save %v: close %s: %w", h, tmp, err)
	}
	f = nil
	dir := filepath.Dir(final)
	err = os.Link(tmp, final)
	if errors.Is(err, os.ErrNotExist) {
		// a data/xx folder removed by hand, or a repository made by a tool
		// that creates them lazily
		if mkErr := os.MkdirAll(dir, 0o700); mkErr == nil {
			err = os.Link(tmp, final)
		}
	}
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("save %v: %w", h, backend.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("save %v: fsync folder: %w", h, err)
	}
	return nil
}

// adopt links a finished file from tmp/ into place instead of copying
// it: fsync the file, link, fsync the folder.
func (b *Local) adopt(h backend.Handle, f *os.File, final string) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save %v: fsync %s: %w", h, f.Name(), err)
	}
	if err := f.Chmod(0o400); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	dir := filepath.Dir(final)
	err := os.Link(f.Name(), final)
	if errors.Is(err, os.ErrNotExist) {
		if mkErr := os.MkdirAll(dir, 0o700); mkErr == nil {
			err = os.Link(f.Name(), final)
		}
	}
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("save %v: %w", h, backend.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("save %v: fsync folder: %w", h, err)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Load implements backend.Backend.
func (b *Local) Load(ctx context.Context, h backend.Handle, length int, offset int64) (io.ReadCloser, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if length < 0 || offset < 0 {
		return nil, fmt.Errorf("load %v: invalid range %d+%d", h, offset, length)
	}
	f, err := os.Open(b.Filename(h))
	if err != nil {
		return nil, fmt.Errorf("load %v: %w", h, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load %v: %w", h, err)
	}
	if offset > fi.Size() || (length > 0 && offset+int64(length) > fi.Size()) {
		f.Close()
		return nil, fmt.Errorf("load %v: range %d+%d beyond the file's %d bytes: %w", h, offset, length, fi.Size(), io.ErrUnexpectedEOF)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("load %v: %w", h, err)
		}
	}
	n := fi.Size() - offset
	if length > 0 {
		n = int64(length)
	}
	return backend.LimitedReadCloser(f, n), nil
}

// Stat implements backend.Backend.
func (b *Local) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := os.Stat(b.Filename(h))
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	name := h.Name
	if h.Type == backend.ConfigFile {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: fi.Size()}, nil
}

// List implements backend.Backend.
func (b *Local) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.ConfigFile {
		fi, err := b.Stat(ctx, backend.Handle{Type: t})
		if backend.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	dirs := []string{filepath.Join(b.dir, t.Dir())}
	if t == backend.PackFile {
		ents, err := os.ReadDir(dirs[0])
		if err != nil {
			return fmt.Errorf("list %v: %w", t, err)
		}
		dirs = dirs[:0]
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) == 2 {
				dirs = append(dirs, filepath.Join(b.dir, "data", e.Name()))
			}
		}
	}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("list %v: %w", t, err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !e.Type().IsRegular() || (backend.Handle{Type: t, Name: e.Name()}).Valid() != nil {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, os.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				return fmt.Errorf("list %v: %w", t, err)
			}
			if err := fn(backend.FileInfo{Name: e.Name(), Size: fi.Size()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Remove implements backend.Backend.
func (b *Local) Remove(ctx context.Context, h backend.Handle) error {
	if err := h.Valid(); err != nil {
		return err
	}
	fn := b.Filename(h)
	if err := os.Remove(fn); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	return atomicfile.SyncDir(filepath.Dir(fn))
}
